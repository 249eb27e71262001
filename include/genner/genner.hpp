// genner/genner.hpp: the umbrella header — everything genner offers.
#pragma once
#include <genner/io.hpp>
#include <genner/t5.hpp>
#include <genner/text/sentencepiece.hpp>
