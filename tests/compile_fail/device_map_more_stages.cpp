// t5-small has 6 + 6 blocks; 13 stages cannot all get one.
// expect: more stages than the backbone has blocks
#include <genner/model/policies.hpp>
namespace gm = genner::model;
using E = gm::ExperimentType<genner::t5::T5Small, gm::DeviceMap<gm::Balanced<13>>>;
auto spec = E::spec();
