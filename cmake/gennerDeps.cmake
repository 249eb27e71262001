# Finds genner's dependencies and attaches them to a target; shared by the
# build tree and by the installed package (gennerConfig.cmake includes it).
include_guard(GLOBAL)
find_package(Torch REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(GENNER_SPM REQUIRED IMPORTED_TARGET sentencepiece)
find_path(GENNER_RANGE_V3_INCLUDE range/v3/all.hpp REQUIRED)
find_path(GENNER_HANA_INCLUDE boost/hana.hpp REQUIRED)
find_library(GENNER_PROTOBUF_LIBRARY NAMES protobuf REQUIRED)

function(genner_link_dependencies target)
  # libprotobuf must come first and stay linked: libtorch and libsentencepiece
  # each carry protobuf symbols, and without one shared copy loaded up front the
  # program segfaults while the libraries register their descriptors.
  target_link_libraries(${target} INTERFACE
    "-Wl,--no-as-needed" ${GENNER_PROTOBUF_LIBRARY} "-Wl,--as-needed"
    ${TORCH_LIBRARIES} PkgConfig::GENNER_SPM nlohmann_json::nlohmann_json)
  target_include_directories(${target} SYSTEM INTERFACE ${GENNER_RANGE_V3_INCLUDE} ${GENNER_HANA_INCLUDE})
  target_compile_options(${target} INTERFACE ${TORCH_CXX_FLAGS})
endfunction()
