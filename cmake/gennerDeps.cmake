# Finds genner's dependencies and attaches them to a target; shared by the
# build tree and by the installed package (gennerConfig.cmake includes it).
include_guard(GLOBAL)
find_package(Torch REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_path(GENNER_SPM_INCLUDE sentencepiece_processor.h REQUIRED)
find_library(GENNER_SPM_LIBRARY NAMES libsentencepiece.so.0 sentencepiece REQUIRED)
find_path(GENNER_RANGE_V3_INCLUDE range/v3/all.hpp REQUIRED)
find_path(GENNER_HANA_INCLUDE boost/hana.hpp REQUIRED)
# Gloo's headers (Debian: libgloo-dev): LibTorch's c10d ProcessGroupGloo header includes them.
find_path(GENNER_GLOO_INCLUDE gloo/algorithm.h REQUIRED)

function(genner_link_dependencies target)
  # SentencePiece is deliberately not linked: it embeds its own protobuf, which
  # clashes with the one libtorch uses, so genner opens it at run time in
  # isolation (see include/genner/text/sentencepiece.hpp). Only its headers and
  # the dynamic loader are needed here.
  target_link_libraries(${target} INTERFACE ${TORCH_LIBRARIES} nlohmann_json::nlohmann_json ${CMAKE_DL_LIBS})
  target_include_directories(${target} SYSTEM INTERFACE
    ${GENNER_SPM_INCLUDE} ${GENNER_RANGE_V3_INCLUDE} ${GENNER_HANA_INCLUDE} ${GENNER_GLOO_INCLUDE})
  target_compile_options(${target} INTERFACE ${TORCH_CXX_FLAGS})
endfunction()
