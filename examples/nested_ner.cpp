// nested_ner: nested NER (ACE 2004/2005, GENIA, or genner's own sample) by full fine-tuning of a
// T5 of any shape. Nested entities may overlap; the decoder points at each one's start and end.
//
//   nested_ner                                  the built-in default: sample data, a small T5 from scratch
//   nested_ner --config configs/genia.json --model t5-base
#include <genner/app.hpp>

// Full fine-tuning with a backbone shape read at run time, encoder MLP and avg_feature head.
using Experiment = genner::model::FullFineTuning<genner::t5::DynamicBackbone>;

int main(int argc, char** argv) {
  genner::app::Program program;
  program.name = "nested_ner";
  program.family = genner::app::Family::nested;
  program.model = "scratch";  // --model: where the weights come from
  // No config files named: without --config the program runs with the built-in settings of the
  // nested sample (genner/app/sample_settings.hpp).
  return genner::app::run<Experiment>(program, argc, argv);
}
