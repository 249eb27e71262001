# The C++ blocks of README.md compile as written: each becomes a translation unit
# (tests/readme_snippets.awk: fragments inside a function, whole programs as they are) compiled at
# -O0 against the library by the CTest test `readme_snippets`. Compiler messages name README.md's lines.
set(GENNER_README ${PROJECT_SOURCE_DIR}/README.md)
set(GENNER_SNIPPET_DIR ${CMAKE_CURRENT_BINARY_DIR}/readme_snippets)
file(REMOVE_RECURSE ${GENNER_SNIPPET_DIR})
file(MAKE_DIRECTORY ${GENNER_SNIPPET_DIR})
execute_process(COMMAND awk -v out=${GENNER_SNIPPET_DIR} -f ${CMAKE_CURRENT_SOURCE_DIR}/readme_snippets.awk ${GENNER_README}
  OUTPUT_VARIABLE snippet_count OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE awk_status)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${GENNER_README} ${CMAKE_CURRENT_SOURCE_DIR}/readme_snippets.awk)
if(NOT awk_status EQUAL 0 OR snippet_count LESS 1)
  message(FATAL_ERROR "readme_snippets: no C++ block found in ${GENNER_README} (awk: ${awk_status})")
endif()
file(GLOB GENNER_SNIPPETS ${GENNER_SNIPPET_DIR}/snippet_*.cpp)
message(STATUS "readme_snippets: ${snippet_count} C++ blocks of README.md")
add_library(genner_readme_snippets OBJECT EXCLUDE_FROM_ALL ${GENNER_SNIPPETS})
target_link_libraries(genner_readme_snippets PRIVATE genner::genner)
target_compile_options(genner_readme_snippets PRIVATE -O0)
target_precompile_headers(genner_readme_snippets REUSE_FROM genner_header_check)
add_test(NAME readme_snippets
  COMMAND ${CMAKE_COMMAND} --build ${PROJECT_BINARY_DIR} --target genner_readme_snippets)
# Two builds in one build folder at once (ctest -j) would race on ninja's log: the tests that build
# in it take turns.
set_tests_properties(header_check readme_snippets PROPERTIES RESOURCE_LOCK genner_build_tree)
