// genner/model.hpp: umbrella header of genner/model — experiment policies, the
// NER model with its pointer head, checkpoints of what was trained, and numeric precision.
#pragma once

#include <genner/model/encoded_source.hpp>
#include <genner/model/spec.hpp>
#include <genner/model/policies.hpp>
#include <genner/model/ner_model.hpp>
#include <genner/model/label_init.hpp>
#include <genner/model/checkpoint.hpp>
#include <genner/model/precision.hpp>
#include <genner/model/memory_plan.hpp>
