// genner/text.hpp: umbrella for the text layer (SentencePiece access and T5's tokenizer).
#pragma once

#include <genner/text/sentencepiece.hpp>
#include <genner/text/unigram.hpp>
#include <genner/text/tokenizer.hpp>
#include <genner/text/pretokenize.hpp>
