// genner/genner.hpp: the umbrella header of the library. Opt-in headers beside it:
// genner/data/sample.hpp (the built-in sample corpora), genner/app.hpp (the command-line
// application: option table, train / plan / evaluate / predict, the published experiments) and
// genner/compat.hpp (the original system's checkpoints, label initialisation and greedy loop).
//   io/       safetensors, checkpoint folders, atomic writes
//   t5/       the T5 backbone (numerically Hugging Face's) and its presets
//   text/     T5's SentencePiece tokenizer
//   data/     loaders, pointer targets, batching
//   model/    experiment policies, the pointer-head NER model, PEFT, device maps
//   generate/ greedy and beam search, pointer decoding, constraints
//   report/   the terminal progress bar and the training-curve chart (PNG)
//   train/    metric, trainer, callbacks (log, early stopping, progress, curve.png), checkpoints, configs
//   recognize/ Recognizer: raw text in, entities with character offsets out; predict
#pragma once
#include <genner/core/error.hpp>
#include <genner/core/json.hpp>
#include <genner/core/threading.hpp>
#include <genner/core/utf8.hpp>
#include <genner/data.hpp>
#include <genner/generate.hpp>
#include <genner/io.hpp>
#include <genner/model.hpp>
#include <genner/recognize.hpp>
#include <genner/report.hpp>
#include <genner/t5.hpp>
#include <genner/text.hpp>
#include <genner/train.hpp>
