// genner/data.hpp: umbrella for the data layer (entities, loaders, pointer targets, batching).
#pragma once

#include <genner/data/entity.hpp>
#include <genner/data/conll.hpp>
#include <genner/data/ontonotes.hpp>
#include <genner/data/nested_json.hpp>
#include <genner/data/discontinuous.hpp>
#include <genner/data/target_type.hpp>
#include <genner/data/type_description.hpp>
#include <genner/data/targets.hpp>
#include <genner/data/label_convention.hpp>
#include <genner/data/batching.hpp>
#include <genner/data/family.hpp>
#include <genner/data/splits.hpp>
