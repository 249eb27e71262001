// Precompiled header for the test executable: the heavy third-party headers.
#pragma once
#include <catch2/catch.hpp>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/optim/adamw.h>
#include <nlohmann/json.hpp>
