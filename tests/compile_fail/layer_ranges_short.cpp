// t5-base has 12 encoder blocks; the ranges stop at 6.
// expect: the last encoder/decoder range must end at the backbone
#include <genner/model/policies.hpp>
namespace gm = genner::model;
using Map = gm::LayerRanges<gm::EncoderRanges<gm::Range<0, 6, 0>>, gm::DecoderRanges<gm::Range<0, 12, 1>>>;
using E = gm::ExperimentType<genner::t5::T5Base, gm::DeviceMap<Map>>;
auto spec = E::spec();
