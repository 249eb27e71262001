# Script behind the `consumer` test (see consumer.cmake).
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${GENNER_BINARY_DIR} --prefix ${WORK_DIR}/prefix
  RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "cmake --install failed (${rc})")
endif()
# The installed headers must not need SentencePiece's (only the tests open that library).
file(GLOB_RECURSE installed_headers ${WORK_DIR}/prefix/include/genner/*.hpp)
foreach(header IN LISTS installed_headers)
  file(STRINGS ${header} spm_lines REGEX "sentencepiece_processor\\.h")
  if(spm_lines)
    message(FATAL_ERROR "${header}: an installed header includes sentencepiece_processor.h; expected none to")
  endif()
endforeach()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR} -B ${WORK_DIR}/build -G Ninja
  -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Release
  "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -DNDEBUG"  # what is tested is that it builds and runs; -O1 compiles faster
  RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "configuring the consumer against the installed genner failed (${rc})")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/build RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building the consumer failed (${rc})")
endif()
# A checkpoint the consumer loads: written by genner itself, in Hugging Face's layout.
execute_process(COMMAND ${CHECKPOINT_MAKER} ${WORK_DIR}/checkpoint RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "writing a checkpoint for the consumer failed (${rc})")
endif()
execute_process(COMMAND ${WORK_DIR}/build/consumer ${WORK_DIR}/checkpoint ${WORK_DIR}/recognize RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "the consumer program failed (${rc})")
endif()
# The downstream driver: trains on the sample, then refuses a setting its alias contradicts.
set(run ${WORK_DIR}/driver_run)
execute_process(COMMAND ${WORK_DIR}/build/consumer_driver train --dataset sample --sample_size 100 --epochs 1
  --spm_vocab_size 200 --output_dir ${run} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc OR NOT out MATCHES "experiment: static backbone d_model=32" OR NOT EXISTS ${run}/best.safetensors)
  message(FATAL_ERROR "the downstream driver did not train (${rc}):\n${out}\n${err}")
endif()
execute_process(COMMAND ${WORK_DIR}/build/consumer_driver plan --dataset sample --sample_size 100 --encoder_mlp true
  --output_dir ${WORK_DIR}/driver_plan RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 1 OR NOT err MATCHES "--encoder_mlp: encoder_mlp true contradicts the compiled experiment")
  message(FATAL_ERROR "the downstream driver should refuse --encoder_mlp true (${rc}):\n${err}")
endif()
