// genner/recognize.hpp: umbrella for the downstream API — Recognizer (raw text to entities with
// character offsets), the predict command's line-by-line logic and the Batcher that serves requests in batches.
#pragma once
#include <genner/recognize/run_record.hpp>
#include <genner/recognize/recognizer.hpp>
#include <genner/recognize/predict.hpp>
#include <genner/recognize/batcher.hpp>
