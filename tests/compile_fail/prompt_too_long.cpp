// The prompt is initialised from the 100 <extra_id_*> rows.
// expect: N may be at most 100
#include <genner/model/policies.hpp>
namespace gm = genner::model;
using E = gm::ExperimentType<genner::t5::T5Base, gm::SoftPrompt<101>>;
auto spec = E::spec();
