// genner/text.hpp: umbrella for the text layer (T5's tokenizer, its unigram encoder, pre-tokenization).
#pragma once

#include <genner/text/unigram.hpp>
#include <genner/text/tokenizer.hpp>
#include <genner/text/pretokenize.hpp>
