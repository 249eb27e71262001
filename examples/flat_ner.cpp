// flat_ner: flat NER (CoNLL-2003, OntoNotes, WNUT-17, or genner's own sample) by full fine-tuning
// of a T5 of any shape: a checkpoint's config.json decides it, or the scratch_* settings when the
// model starts from random weights.
//
//   flat_ner                                   the built-in default: sample data, a small T5 from scratch
//   flat_ner --config configs/conll2003.json --model t5-base
//   flat_ner evaluate --output_dir runs/flat_ner
//   echo "John lives in Paris ." | flat_ner predict --output_dir runs/flat_ner --input -
#include <genner/app.hpp>

// The experiment: what trains and how the model is wired, fixed at compile time.
//   DynamicBackbone            the shape comes from the checkpoint (or the scratch_* settings)
//   FullFineTuning             every parameter trains; the encoder MLP and the avg_feature head are the defaults
using Experiment = genner::model::FullFineTuning<genner::t5::DynamicBackbone>;

int main(int argc, char** argv) {
  genner::app::Program program;
  program.name = "flat_ner";
  program.family = genner::app::Family::flat;
  program.model = "scratch";  // --model: where the weights come from
  // No config files named: without --config the program runs with the built-in settings of the
  // flat sample (genner/app/sample_settings.hpp).
  return genner::app::run<Experiment>(program, argc, argv);
}
