// genner/app.hpp: the command-line application as a library layer — option table, train / plan /
// evaluate / predict commands, run records, the published experiments. A downstream executable is
// one alias and one call:
//
//   #include <genner/app.hpp>
//   using Experiment = genner::model::FullFineTuning<genner::t5::DynamicBackbone>;
//   int main(int argc, char** argv) {
//     return genner::app::run<Experiment>({"my_ner", genner::app::Family::flat, "scratch", {"my.json"}}, argc, argv);
//   }
//
// It includes the library (genner/genner.hpp) and the built-in sample corpora (genner/data/sample.hpp)
// that the application's default data set is written from.
#pragma once
#include <genner/genner.hpp>
#include <genner/data/sample.hpp>
#include <genner/app/family.hpp>
#include <genner/app/options.hpp>
#include <genner/app/sample_settings.hpp>
#include <genner/app/splits.hpp>
#include <genner/app/report.hpp>
#include <genner/app/structure.hpp>
#include <genner/app/experiments.hpp>
#include <genner/app/serve_options.hpp>
#include <genner/app/serve.hpp>
#include <genner/app/commands.hpp>
#include <genner/app/main.hpp>
