// Writes a small random T5 (v1.1 flavour) as a Hugging Face checkpoint folder, for the consumer
// test and the drivers' --pretrained test. Usage: genner_make_checkpoint DIR [VOCAB_SIZE]
#include <genner/t5.hpp>

#include <iostream>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    std::cerr << "usage: genner_make_checkpoint DIR [VOCAB_SIZE]\n";
    return 2;
  }
  genner::t5::T5Config c;
  c.vocab_size = argc == 3 ? std::stoll(argv[2]) : 64; c.d_model = 32; c.d_ff = 64; c.d_kv = 8; c.num_heads = 4;
  c.num_layers = 2; c.num_decoder_layers = 2;
  c.feed_forward = genner::t5::FeedForward::gated_gelu;
  c.tie_word_embeddings = false;
  genner::t5::T5 model(c);
  genner::t5::save_pretrained(*model, argv[1]);
  return 0;
}
