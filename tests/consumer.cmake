# `cmake --install` must give a tree a downstream project builds against: install
# into a scratch prefix, build tests/consumer against it, and run it.
add_test(NAME consumer
  COMMAND ${CMAKE_COMMAND}
    -DGENNER_BINARY_DIR=${PROJECT_BINARY_DIR}
    -DCONSUMER_SOURCE_DIR=${CMAKE_CURRENT_SOURCE_DIR}/consumer
    -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/consumer
    -DCXX_COMPILER=${CMAKE_CXX_COMPILER}
    -DCHECKPOINT_MAKER=$<TARGET_FILE:genner_make_checkpoint>
    -P ${CMAKE_CURRENT_SOURCE_DIR}/run_consumer.cmake)
add_executable(genner_make_checkpoint make_checkpoint.cpp)
target_link_libraries(genner_make_checkpoint PRIVATE genner::genner)
