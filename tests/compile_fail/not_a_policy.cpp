// Experiment slots take policies, not plain types.
// expect: every argument must be a policy
#include <genner/model/policies.hpp>
using E = genner::model::Experiment<genner::t5::T5Small>;
auto spec = E::spec();
