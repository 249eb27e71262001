// The smallest complete use of genner: write the built-in flat sample data, train a
// SentencePiece model and a small T5 from scratch on it, then tag a new sentence given as raw text.
//
//   ./build/examples/minimal [output-dir] [epochs]
#include <genner/genner.hpp>
#include <genner/data/sample.hpp>

#include <charconv>
#include <iostream>
#include <string_view>

namespace gm = genner::model;
using Experiment = gm::FullFineTuning<genner::t5::DynamicBackbone>;

// The second argument, else 10.
int64_t epochs_argument(int argc, char** argv) {
  int64_t epochs = 10;
  if (argc > 2) {
    const std::string_view text = argv[2];
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), epochs);
    GENNER_CHECK(ec == std::errc() && end == text.data() + text.size() && epochs >= 1,
                 "epochs (the second argument): expected a positive integer, found '", text, "'");
  }
  return epochs;
}

// A small gated T5 for a vocabulary of `pieces` SentencePiece pieces.
genner::t5::T5Config small_t5(int64_t pieces) {
  genner::t5::T5Config config;
  config.vocab_size = pieces + genner::text::Tokenizer::kNumExtraIds;
  config.d_model = 128;
  config.d_ff = 256;
  config.num_heads = 4;
  config.d_kv = 32;
  config.num_layers = 2;
  config.num_decoder_layers = 2;
  config.feed_forward = genner::t5::FeedForward::gated_gelu;
  config.tie_word_embeddings = false;
  return config;
}

int main(int argc, char** argv) try {
  const std::filesystem::path out = argc > 1 ? argv[1] : "runs/minimal";
  const int64_t epochs = epochs_argument(argc, argv);
  torch::manual_seed(1);

  // Data: genner's own CoNLL-format sample (types PER, LOC, ORG, MISC).
  const auto files = genner::data::sample::write_flat(out / "data", {.sizes = {1500, 200, 200}});
  const auto train = genner::data::load_conll(files.train);
  const auto dev = genner::data::load_conll(files.dev);

  // Tokenizer: a 1000-piece SentencePiece model trained on the training sentences.
  std::vector<std::string> corpus;
  for (const auto& s : train.sentences) corpus.push_back(genner::data::join_words(s.words));
  auto tokenizer = genner::text::Tokenizer::train(corpus, out / "spiece.model", {.vocab_size = 1000});
  const auto labels = genner::data::LabelSpace::make(train.types, tokenizer);

  // Model: a small gated T5 from scratch, wrapped by the experiment's pointer head; each type's
  // label row starts from the pieces of its name ("PER" -> "person").
  gm::NerModel<Experiment> model(
      gm::NerOptions{}.types(static_cast<int64_t>(train.types.size())).with_config(small_t5(tokenizer.piece_count())));
  gm::init_labels_from_names(*model, train.types, tokenizer);

  // Training: AdamW with warm-up and linear decay, dev F1 picks the best epoch.
  const auto type = genner::data::TargetType::word;
  const auto train_ex = genner::data::encode_dataset(train, tokenizer, labels, type);
  const auto dev_ex = genner::data::encode_dataset(dev, tokenizer, labels, type);
  genner::train::TrainerOptions options;
  options.epochs = epochs;
  options.lr = 3e-3;
  options.warmup = 0.05;
  options.clip_norm = 1.0;
  options.max_tokens = 1200;
  options.output_dir = out;
  options.resume = false;
  options.decode.constrained = true;
  options.decode.contiguous = true;
  options.decode.flat = true;  // flat entities never share a word (generate/overlaps.hpp), as flat_ner decodes
  options.callbacks = genner::train::standard_callbacks();  // best weights, checkpoint, log, progress bar, curve.png
  const auto result = genner::train::Trainer(*model, labels, train_ex, dev_ex, options).fit();
  gm::load_trained(*model, result.best_model);
  std::cout << "best dev F1 " << 100 * result.best_dev_f1 << " after " << result.steps << " steps\n";

  // Prediction: raw text in, entities with character offsets out, decoded as in training.
  model->eval();
  genner::recognize::RecognizerOptions recognize;
  recognize.decode = options.decode;
  recognize.flat = true;
  const genner::recognize::Recognizer recognizer(model.ptr(), std::move(tokenizer), labels, recognize);
  const std::string text = "Maria Lopez flew from Madrid to Berlin on Monday.";
  std::cout << text << "\n";
  for (const auto& e : recognizer.predict(text).entities)
    std::cout << "  " << e.type << ": " << e.text << " (characters " << e.begin << "-" << e.end << ")\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "minimal: " << e.what() << "\n";
  return 1;
}
