// Writes a small random T5 (v1.1 flavour) as a Hugging Face checkpoint folder, for the consumer
// test and the drivers' --model DIR tests. Usage: genner_make_checkpoint DIR [VOCAB_SIZE [D_MODEL]]
// The default shape is genner::t5::T5Tiny (d_model 32); D_MODEL gives another (d_ff = 2 d_model).
#include <genner/t5.hpp>

#include <iostream>
#include <string>

int main(int argc, char** argv) {
  if (argc < 2 || argc > 4) {
    std::cerr << "usage: genner_make_checkpoint DIR [VOCAB_SIZE [D_MODEL]]\n";
    return 2;
  }
  genner::t5::T5Config c;
  c.vocab_size = argc >= 3 ? std::stoll(argv[2]) : 64;
  c.d_model = argc == 4 ? std::stoll(argv[3]) : 32;
  c.d_ff = 2 * c.d_model;
  c.d_kv = c.d_model / 4;
  c.num_heads = 4;
  c.num_layers = 2;
  c.num_decoder_layers = 2;
  c.feed_forward = genner::t5::FeedForward::gated_gelu;
  c.tie_word_embeddings = false;
  genner::t5::T5 model(c);
  genner::t5::save_pretrained(*model, argv[1]);
  return 0;
}
