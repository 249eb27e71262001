// An adapter with a bottleneck of 0 is no adapter: NoAdapters says that.
// expect: the bottleneck size must be at least 1
#include <genner/model/policies.hpp>
using E = genner::model::ExperimentType<genner::t5::T5Base, genner::model::Adapters<0>>;
auto spec = E::spec();
