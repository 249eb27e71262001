// One executable per listed experiment (genner/app/experiments.hpp): examples/CMakeLists.txt
// compiles this file once per genner_add_experiment() line, with GENNER_EXPERIMENT set to the
// entry's name, e.g. conll2003_t5_3b_adapters. The entry carries the alias, the family, the model
// the run starts from and the default config files.
#include <genner/app.hpp>

int main(int argc, char** argv) {
  return genner::app::run_listed<genner::app::experiments::GENNER_EXPERIMENT>(GENNER_CONFIG_DIR, argc, argv);
}
