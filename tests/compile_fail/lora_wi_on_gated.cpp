// FLAN-T5 feed-forwards are gated: wi_0 and wi_1, no wi.
// expect: has no 'wi' projection
#include <genner/model/policies.hpp>
namespace gm = genner::model;
using E = gm::ExperimentType<genner::t5::FlanT5Base, gm::Lora<8, 16, gm::lora::Q, gm::lora::Wi>>;
auto spec = E::spec();
