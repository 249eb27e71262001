// genner/text.hpp: umbrella for the text layer (T5's SentencePiece tokenizer).
#pragma once

#include <genner/text/tokenizer.hpp>
