// A downstream program built against the installed genner:
//  1. load a Hugging Face T5 folder, encode, decode, get logits and the loss;
//  2. train a tiny NER model on genner's built-in sample data and run Recognizer on raw
//     sentences with punctuation: every entity's byte span must give back the entity's text.
#include <genner/genner.hpp>
#include <genner/data/sample.hpp>

#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

namespace {

int t5_part(const std::filesystem::path& checkpoint) {
  auto t5 = genner::t5::load_pretrained(checkpoint);  // config.json + model.safetensors
  t5->eval();
  auto ids = torch::tensor({{37, 8, 1}, {42, 1, 0}});
  auto mask = (ids != 0).to(torch::kLong);
  auto labels = torch::tensor({{5, 6, 1}, {7, 1, -100}});
  auto encoded = t5->encode(ids, mask).last_hidden_state;                               // [2, 3, d]
  auto decoded = t5->decode(t5->shift_right(labels), encoded, mask).last_hidden_state;  // [2, 3, d]
  auto logits = t5->lm_logits(decoded);                                                 // [2, 3, vocab]
  auto loss = genner::t5::T5Impl::loss(logits, labels);
  std::cout << "logits " << logits.sizes() << " loss " << loss.item<float>() << "\n";
  return std::isfinite(loss.item<float>()) ? 0 : 1;
}

int recognizer_part(const std::filesystem::path& dir) {
  namespace gd = genner::data;
  namespace gm = genner::model;
  using Experiment = gm::ExperimentType<genner::t5::DynamicBackbone, gm::Trainable<gm::Everything>>;
  gd::sample::Options o;
  o.seed = 3;
  o.sizes = {400, 40, 10};
  const auto files = gd::sample::write_flat(dir / "data", o);
  const auto train = gd::load_conll(files.train);
  const auto dev = gd::load_conll(files.dev);
  std::vector<std::string> corpus;
  for (const auto& s : train.sentences) corpus.push_back(gd::join_words(s.words));
  genner::text::TrainOptions to;
  to.vocab_size = 300;
  auto tokenizer = genner::text::Tokenizer::train(corpus, dir / "spiece.model", to);
  auto labels = gd::LabelSpace::make(train.types, tokenizer);
  const auto train_ex = gd::encode_dataset(train, tokenizer, labels, gd::TargetType::word);
  const auto dev_ex = gd::encode_dataset(dev, tokenizer, labels, gd::TargetType::word);
  genner::t5::T5Config c;
  c.vocab_size = tokenizer.piece_count() + genner::text::Tokenizer::kNumExtraIds;
  c.d_model = 32;
  c.d_ff = 64;
  c.num_heads = 4;
  c.d_kv = 8;
  c.num_layers = 1;
  c.num_decoder_layers = 1;
  c.feed_forward = genner::t5::FeedForward::gated_gelu;
  c.tie_word_embeddings = false;
  torch::manual_seed(1);
  auto model = std::make_shared<gm::NerModelImpl<Experiment>>(gm::NerOptions{}.types(labels.size()).with_config(c));
  genner::train::TrainerOptions t;
  t.epochs = 2;
  t.lr = 3e-3;
  t.warmup = 0.05;
  t.max_tokens = 1500;
  t.output_dir = dir / "run";
  t.show_progress = false;
  t.decode.constrained = true;
  t.decode.contiguous = true;
  t.decode.flat = true;
  genner::train::Trainer(*model, labels, train_ex, dev_ex, t).fit();

  genner::recognize::RecognizerOptions ro;
  ro.flat = true;
  ro.decode = t.decode;
  genner::recognize::Recognizer recognizer(model, std::move(tokenizer), labels, ro);
  const std::vector<std::string> texts = {
      "Shares in Acme Corp. fell 3% to 120 pence in London trading.",
      "\"We won't stop,\" Smith told reporters in Paris, France.",
      "The U.S. government's plan (announced on Monday) was rejected by Germany.",
      "Zürich beat Lyon 2-1 in the UEFA Cup on Wednesday!",
      "",
      "John Smith, the British minister, said on Friday that talks with the UN would continue.",
  };
  const auto results = recognizer.predict(texts);
  size_t entities = 0, bad = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    for (const auto& e : results[i].entities) {
      ++entities;
      const auto span = texts[i].substr(e.byte_begin, e.byte_end - e.byte_begin);
      std::cout << "  [" << e.text << "]/" << e.type << " characters [" << e.begin << ", " << e.end << ") score "
                << e.score << "\n";
      if (span != e.text) {
        ++bad;
        std::cerr << "text " << i << ": bytes [" << e.byte_begin << ", " << e.byte_end << ") are '" << span
                  << "' but the entity's text is '" << e.text << "'\n";
      }
    }
  }
  std::cout << "recognizer: " << entities << " entities in " << texts.size() << " texts\n";
  if (entities == 0) {
    std::cerr << "the trained model found no entity at all; nothing was checked\n";
    return 1;
  }
  return bad == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: consumer CHECKPOINT_DIR WORK_DIR\n";
    return 2;
  }
  try {
    if (t5_part(argv[1]) != 0) return 1;
    return recognizer_part(argv[2]);
  } catch (const std::exception& e) {
    std::cerr << "consumer: " << e.what() << "\n";
    return 1;
  }
}
