// genner/io.hpp: file formats — safetensors, checkpoint folders, atomic writes.
#pragma once
#include <genner/io/atomic_file.hpp>
#include <genner/io/checkpoint.hpp>
#include <genner/io/json_file.hpp>
#include <genner/io/safetensors.hpp>
