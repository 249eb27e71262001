// T5 v1.0 feed-forwards have a single wi.
// expect: target lora::Wi instead
#include <genner/model/policies.hpp>
namespace gm = genner::model;
using E = gm::ExperimentType<genner::t5::T5Small, gm::Lora<8, 16, gm::lora::Wi0>>;
auto spec = E::spec();
