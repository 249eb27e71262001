// Precompiled header for the test executable: the heavy third-party headers.
#pragma once
#include <c10/util/Logging.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adamw.h>
#include <torch/serialize.h>
#include <nlohmann/json.hpp>
#include "sentencepiece.hpp"
// c10's logging defines a one-argument CHECK; Catch's variadic one must win in tests.
#undef CHECK
#undef CHECK_EQ
#undef CHECK_NE
#include <catch2/catch.hpp>
