// Two soft prompts: which one?
// expect: a slot is given twice
#include <genner/model/policies.hpp>
namespace gm = genner::model;
using E = gm::ExperimentType<genner::t5::T5Small, gm::SoftPrompt<10>, gm::SoftPrompt<20>>;
auto spec = E::spec();
