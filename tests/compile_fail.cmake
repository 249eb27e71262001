# Illegal experiment aliases must not compile: each tests/compile_fail/*.cpp names
# the static_assert sentence it expects in a `// expect: ...` comment. A CTest
# test syntax-checks the file with genner's flags and passes only when that
# sentence appears in a static-assertion diagnostic. PASS_REGULAR_EXPRESSION
# alone decides the result (the exit code is ignored; WILL_FAIL would invert it),
# so a file that compiles cleanly, or fails for another reason, fails its test.
file(GLOB GENNER_COMPILE_FAIL_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/compile_fail/*.cpp)

# A never-built target that carries genner's usage requirements (include dirs, flags).
file(CONFIGURE OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/compile_fail_flags.cpp CONTENT "int main() {}\n")
add_executable(genner_compile_fail_flags EXCLUDE_FROM_ALL ${CMAKE_CURRENT_BINARY_DIR}/compile_fail_flags.cpp)
target_link_libraries(genner_compile_fail_flags PRIVATE genner::genner)
set(_cf_target genner_compile_fail_flags)
set(_cf_includes "$<TARGET_PROPERTY:${_cf_target},INCLUDE_DIRECTORIES>")
set(_cf_defines "$<TARGET_PROPERTY:${_cf_target},COMPILE_DEFINITIONS>")
set(_cf_options "$<TARGET_PROPERTY:${_cf_target},COMPILE_OPTIONS>")

foreach(source IN LISTS GENNER_COMPILE_FAIL_SOURCES)
  get_filename_component(name ${source} NAME_WE)
  file(STRINGS ${source} expect_line REGEX "^// expect: ")
  if(NOT expect_line)
    message(FATAL_ERROR "${source}: add a '// expect: <part of the static_assert message>' comment")
  endif()
  list(GET expect_line 0 expect_line)
  string(REGEX REPLACE "^// expect: " "" expected "${expect_line}")
  string(REGEX REPLACE "([][+.*()^$?|\\\\{}])" "\\\\\\1" expected_regex "${expected}")
  add_test(NAME compile_fail.${name}
    COMMAND ${CMAKE_CXX_COMPILER} -std=c++20 -fsyntax-only
      "$<$<BOOL:${_cf_includes}>:-I$<JOIN:${_cf_includes},;-I>>"
      "$<$<BOOL:${_cf_defines}>:-D$<JOIN:${_cf_defines},;-D>>"
      "${_cf_options}"
      ${source}
    COMMAND_EXPAND_LISTS)
  # GCC: "static assertion failed: <msg>"; Clang: "static assertion failed[ due to ...]: <msg>".
  set_tests_properties(compile_fail.${name} PROPERTIES
    PASS_REGULAR_EXPRESSION "static[ _]assert(ion)?[^\n]*failed[^\n]*${expected_regex}"
    LABELS compile_fail)
endforeach()
