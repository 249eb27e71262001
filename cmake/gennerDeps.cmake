# Finds genner's dependencies and attaches them to a target; shared by the
# build tree and by the installed package (gennerConfig.cmake includes it).
include_guard(GLOBAL)
find_package(Torch REQUIRED)
# oneDNN (Debian: libdnnl-dev; the library LibTorch itself links): packed bf16/int8 products for
# inference on CPUs (genner/core/onednn.hpp). Found by hand: Debian's dnnl-config.cmake demands
# OpenCL; dnnl.hpp sits in the default include path. GENNER_ONEDNN=OFF builds without it (a CUDA
# LibTorch from pip ships no dnnl.hpp): bf16 inference then runs on LibTorch's own products and
# int8 inference is refused with a sentence saying so.
option(GENNER_ONEDNN "packed bf16/int8 CPU inference through oneDNN (libdnnl-dev)" ON)
if(GENNER_ONEDNN)
  find_path(GENNER_DNNL_INCLUDE dnnl.hpp)
  find_library(GENNER_DNNL_LIBRARY dnnl)
  if(NOT GENNER_DNNL_INCLUDE OR NOT GENNER_DNNL_LIBRARY)
    message(FATAL_ERROR "genner: oneDNN not found (dnnl.hpp: ${GENNER_DNNL_INCLUDE}, libdnnl: "
      "${GENNER_DNNL_LIBRARY}); install libdnnl-dev, or configure with -DGENNER_ONEDNN=OFF to build "
      "without packed CPU inference (int8 inference is then refused)")
  endif()
  set(GENNER_ONEDNN_DEFINITION GENNER_WITH_ONEDNN=1)
else()
  set(GENNER_DNNL_LIBRARY "")
  set(GENNER_ONEDNN_DEFINITION GENNER_WITH_ONEDNN=0)
endif()
find_package(nlohmann_json 3 REQUIRED)
# zlib (Debian: zlib1g-dev): deflate for the training-curve PNGs (genner/train/plot.hpp).
find_package(ZLIB REQUIRED)
find_path(GENNER_RANGE_V3_INCLUDE range/v3/all.hpp REQUIRED)
find_path(GENNER_HANA_INCLUDE boost/hana.hpp REQUIRED)
# Gloo's headers (Debian: libgloo-dev): LibTorch's c10d ProcessGroupGloo header includes them.
find_path(GENNER_GLOO_INCLUDE gloo/algorithm.h REQUIRED)
# cpp-httplib (Debian: libcpp-httplib-dev) for the serve command (genner/app/serve.hpp). Debian ships
# it compiled (declarations in httplib.h, code in libcpp-httplib.so); pkg-config gives the feature
# macros the library was built with, which the header must see too.
find_package(PkgConfig REQUIRED)
pkg_check_modules(GENNER_HTTPLIB REQUIRED IMPORTED_TARGET GLOBAL cpp-httplib)

# tcmalloc (Debian: libtcmalloc-minimal4) for the programs that train and decode: LibTorch frees and
# allocates tensors of tens of MiB every step (an embedding table's gradient is 64 MiB at t5-small),
# which glibc's malloc serves with fresh mmap()s, so every step pays page faults on them again;
# tcmalloc keeps such blocks. genner_use_tcmalloc(target) links it into one executable (the
# examples and benchmarks do; the test binary does not: its [deepbind] cases open libsentencepiece
# with RTLD_DEEPBIND, where two allocators would meet). GENNER_TCMALLOC=OFF links none (sanitizer
# builds: ASan brings its own allocator).
option(GENNER_TCMALLOC "link tcmalloc into genner's executables (genner_use_tcmalloc)" ON)
if(GENNER_TCMALLOC)
  find_library(GENNER_TCMALLOC_LIBRARY NAMES tcmalloc_minimal libtcmalloc_minimal.so.4)
  if(NOT GENNER_TCMALLOC_LIBRARY)
    message(FATAL_ERROR "genner: tcmalloc not found; install libtcmalloc-minimal4, or configure with "
      "-DGENNER_TCMALLOC=OFF to keep the C library's malloc (training steps then pay page faults on "
      "large tensors)")
  endif()
endif()
function(genner_use_tcmalloc target)
  if(GENNER_TCMALLOC)
    target_link_libraries(${target} PRIVATE ${GENNER_TCMALLOC_LIBRARY})
  endif()
endfunction()

function(genner_link_dependencies target)
  # SentencePiece is neither linked nor included: it embeds its own protobuf,
  # which clashes with the one libtorch uses. genner encodes with its own unigram
  # reader and trains through the spm_train program; only the tests open the
  # library, in isolation (tests/sentencepiece.hpp, set up in tests/CMakeLists.txt).
  target_link_libraries(${target} INTERFACE ${TORCH_LIBRARIES} ${GENNER_DNNL_LIBRARY} nlohmann_json::nlohmann_json PkgConfig::GENNER_HTTPLIB ZLIB::ZLIB)
  target_include_directories(${target} SYSTEM INTERFACE
    ${GENNER_RANGE_V3_INCLUDE} ${GENNER_HANA_INCLUDE} ${GENNER_GLOO_INCLUDE})
  target_compile_options(${target} INTERFACE ${TORCH_CXX_FLAGS})
  target_compile_definitions(${target} INTERFACE ${GENNER_ONEDNN_DEFINITION})
endfunction()
