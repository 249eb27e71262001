// discontinuous_ner: discontinuous NER (CADEC, ShARe 2013/2014, or genner's own sample) by full
// fine-tuning of a T5 of any shape. An entity is a list of word fragments ("muscle ... pain").
//
//   discontinuous_ner                            the built-in default: sample data, a small T5 from scratch
//   discontinuous_ner --config configs/cadec.json --model t5-base
#include <genner/app.hpp>

// Full fine-tuning with a backbone shape read at run time, encoder MLP and avg_feature head.
// (ShARe 2013 was published without the encoder MLP: add genner::model::NoEncoderMlp, or use the
// share13_t5_base executable.)
using Experiment = genner::model::FullFineTuning<genner::t5::DynamicBackbone>;

int main(int argc, char** argv) {
  genner::app::Program program;
  program.name = "discontinuous_ner";
  program.family = genner::app::Family::discontinuous;
  program.model = "scratch";  // --model: where the weights come from
  // No config files named: without --config the program runs with the built-in settings of the
  // discontinuous sample (genner/app/sample_settings.hpp).
  return genner::app::run<Experiment>(program, argc, argv);
}
