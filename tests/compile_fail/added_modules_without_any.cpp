// Training only the added modules when nothing is added trains nothing.
// expect: it adds no adapters, soft prompt, LoRA or encoder MLP
#include <genner/model/policies.hpp>
namespace gm = genner::model;
using E = gm::ExperimentType<genner::t5::T5Small, gm::Trainable<gm::AddedModules>, gm::NoEncoderMlp>;
auto spec = E::spec();
