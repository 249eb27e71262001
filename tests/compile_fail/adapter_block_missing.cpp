// t5-small has blocks 0..5; block 6 does not exist.
// expect: a listed block does not exist in the backbone
#include <genner/model/policies.hpp>
namespace gm = genner::model;
using E = gm::ExperimentType<genner::t5::T5Small, gm::Adapters<64, gm::AllSites, gm::BlockList<0, 6>>>;
auto spec = E::spec();
