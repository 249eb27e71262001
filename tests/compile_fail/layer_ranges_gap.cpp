// Blocks 3 and 4 of the encoder would live nowhere.
// expect: ranges must start at block 0 and follow each other without gaps
#include <genner/model/policies.hpp>
namespace gm = genner::model;
using Map =
    gm::LayerRanges<gm::EncoderRanges<gm::Range<0, 3, 0>, gm::Range<5, 6, 1>>, gm::DecoderRanges<gm::Range<0, 6, 1>>>;
using E = gm::ExperimentType<genner::t5::T5Small, gm::DeviceMap<Map>>;
auto spec = E::spec();
