// genner/generate.hpp: umbrella for decoding — the StepModel concept, greedy and beam search,
// logits processors, the T5 LM adapter, and pointer NER decoding with its constraints.
#pragma once
#include <genner/generate/step_model.hpp>
#include <genner/generate/logits_processor.hpp>
#include <genner/generate/search.hpp>
#include <genner/generate/generator.hpp>
#include <genner/generate/t5_lm.hpp>
#include <genner/generate/constraints.hpp>
#include <genner/generate/overlaps.hpp>
#include <genner/generate/pointer.hpp>
