// Precompiled for the header_check target: the heavy third-party headers that nearly every genner
// header includes (LibTorch, nlohmann/json, cpp-httplib). No genner header is in it, so each header
// still has to bring every genner header it uses itself.
#pragma once
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <nlohmann/json.hpp>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/cuda.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adamw.h>
#include <torch/serialize.h>
#include <torch/types.h>
#include <httplib.h>
