// genner/compat.hpp: umbrella for compatibility with the original system (checkpoint import, its label
// initialisation, its greedy decoding); its numerics are the SeedCompat policy of
// genner/model/policies.hpp, its learning-rate schedule train::ScheduleConvention::original.
#pragma once

#include <genner/compat/seed_checkpoint.hpp>
#include <genner/compat/seed_greedy.hpp>
#include <genner/compat/seed_label_init.hpp>
