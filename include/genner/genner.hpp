// genner/genner.hpp: the umbrella header — everything genner offers.
//   io/       safetensors, checkpoint folders, atomic writes
//   t5/       the T5 backbone (numerically Hugging Face's) and its presets
//   text/     T5's SentencePiece tokenizer
//   data/     loaders, pointer targets, batching, sample data
//   model/    experiment policies, the pointer-head NER model, PEFT, device maps
//   generate/ greedy and beam search, pointer decoding, constraints
//   train/    metric, trainer, checkpoints, configs, progress, logs, plots
//   recognize/ Recognizer: raw text in, entities with character offsets out; predict
#pragma once
#include <genner/core/error.hpp>
#include <genner/core/threading.hpp>
#include <genner/compat.hpp>
#include <genner/core/utf8.hpp>
#include <genner/data.hpp>
#include <genner/generate.hpp>
#include <genner/io.hpp>
#include <genner/model.hpp>
#include <genner/recognize.hpp>
#include <genner/t5.hpp>
#include <genner/text.hpp>
#include <genner/train.hpp>
