// A downstream driver built against the installed genner: one experiment alias (adapters on the
// static T5Tiny backbone, no encoder MLP) and the library's command-line application.
#include <genner/app.hpp>

using Experiment =
    genner::model::ExperimentType<genner::t5::T5Tiny, genner::model::Adapters<16>,
                                  genner::model::Trainable<genner::model::AddedModules>, genner::model::NoEncoderMlp>;

int main(int argc, char** argv) {
  genner::app::Program program;
  program.name = "consumer_driver";
  program.family = genner::app::Family::flat;
  program.model = "scratch";
  return genner::app::run<Experiment>(program, argc, argv);
}
