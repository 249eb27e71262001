// genner/recognize.hpp: umbrella for the downstream API — Recognizer (raw text to entities with
// character offsets) and the predict command's line-by-line logic.
#pragma once
#include <genner/recognize/run_record.hpp>
#include <genner/recognize/recognizer.hpp>
#include <genner/recognize/predict.hpp>
