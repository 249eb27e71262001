// genner/t5.hpp: the T5 backbone — configuration and presets, layers, stacks,
// the full model and checkpoint loading.
#pragma once
#include <genner/t5/config.hpp>
#include <genner/t5/layers.hpp>
#include <genner/t5/model.hpp>
#include <genner/t5/parameter_names.hpp>
#include <genner/t5/pretrained.hpp>
#include <genner/t5/stack.hpp>
#include <genner/t5/structure.hpp>
