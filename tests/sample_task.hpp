// A task built from genner's own flat sample data for tests: the three splits, a SentencePiece
// model trained on train, the label space, the encoded examples and a small T5 shape.
#pragma once

#include <genner/data.hpp>
#include <genner/data/sample.hpp>
#include <genner/t5/config.hpp>
#include <genner/text.hpp>

#include <array>
#include <filesystem>
#include <string>
#include <vector>

namespace genner::test {

struct SampleTask {
  data::Dataset train, dev, test;
  text::Tokenizer tokenizer;
  data::LabelSpace labels;
  std::vector<data::Example> train_ex, dev_ex, test_ex;

  /// Writes the sample (seed, sizes of train/dev/test) under `dir`, trains a tokenizer of at
  /// most `vocab` pieces on train and encodes every split with word targets.
  static SampleTask make(const std::filesystem::path& dir, uint64_t seed, std::array<size_t, 3> sizes, int vocab) {
    data::sample::Options o;
    o.seed = seed;
    o.sizes = {sizes[0], sizes[1], sizes[2]};
    const auto files = data::sample::write_flat(dir / "data", o);
    auto train = data::load_conll(files.train), dev = data::load_conll(files.dev), test = data::load_conll(files.test);
    std::vector<std::string> corpus;
    for (const auto& s : train.sentences) corpus.push_back(data::join_words(s.words));
    text::TrainOptions to;
    to.vocab_size = vocab;
    auto tok = text::Tokenizer::train(corpus, dir / "spiece.model", to);
    auto labels = data::LabelSpace::make(train.types, tok);
    const auto word = data::TargetType::word;
    auto tr = data::encode_dataset(train, tok, labels, word);
    auto dv = data::encode_dataset(dev, tok, labels, word);
    auto te = data::encode_dataset(test, tok, labels, word);
    return {std::move(train),  std::move(dev), std::move(test), std::move(tok),
            std::move(labels), std::move(tr),  std::move(dv),   std::move(te)};
  }

  /// A gated-gelu, untied T5 of width `d_model` (d_ff = 2 d_model, 4 heads) over this vocabulary.
  [[nodiscard]] t5::T5Config config(int64_t d_model, int64_t layers) const {
    t5::T5Config c;
    c.vocab_size = tokenizer.piece_count() + text::Tokenizer::kNumExtraIds;
    c.d_model = d_model;
    c.d_ff = 2 * d_model;
    c.num_heads = 4;
    c.d_kv = d_model / 4;
    c.num_layers = layers;
    c.num_decoder_layers = layers;
    c.feed_forward = t5::FeedForward::gated_gelu;
    c.tie_word_embeddings = false;
    return c;
  }
};

}  // namespace genner::test
