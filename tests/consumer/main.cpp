// A downstream program: load a Hugging Face T5 folder, encode, decode, get logits and the loss.
#include <genner/genner.hpp>

#include <iostream>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: consumer CHECKPOINT_DIR\n";
    return 2;
  }
  auto t5 = genner::t5::load_pretrained(argv[1]);  // config.json + model.safetensors
  t5->eval();
  auto ids = torch::tensor({{37, 8, 1}, {42, 1, 0}});
  auto mask = (ids != 0).to(torch::kLong);
  auto labels = torch::tensor({{5, 6, 1}, {7, 1, -100}});
  auto encoded = t5->encode(ids, mask).last_hidden_state;                          // [2, 3, d]
  auto decoded = t5->decode(t5->shift_right(labels), encoded, mask).last_hidden_state;  // [2, 3, d]
  auto logits = t5->lm_logits(decoded);                                            // [2, 3, vocab]
  auto loss = genner::t5::T5Impl::loss(logits, labels);
  std::cout << "logits " << logits.sizes() << " loss " << loss.item<float>() << "\n";
  return std::isfinite(loss.item<float>()) ? 0 : 1;
}
