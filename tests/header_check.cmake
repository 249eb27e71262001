# Every public header must compile on its own: one generated translation unit
# per header, syntax-checked only. Built on demand (it is slow on small
# machines) by the CTest test `header_check`.
file(GLOB_RECURSE GENNER_PUBLIC_HEADERS RELATIVE ${PROJECT_SOURCE_DIR}/include
  CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/include/genner/*.hpp)
set(GENNER_HEADER_CHECK_SOURCES)
foreach(header IN LISTS GENNER_PUBLIC_HEADERS)
  string(MAKE_C_IDENTIFIER ${header} stem)
  set(source ${CMAKE_CURRENT_BINARY_DIR}/header_check/${stem}.cpp)
  file(CONFIGURE OUTPUT ${source} CONTENT "#include <${header}>\n#include <${header}>\n")
  list(APPEND GENNER_HEADER_CHECK_SOURCES ${source})
endforeach()
add_library(genner_header_check OBJECT EXCLUDE_FROM_ALL ${GENNER_HEADER_CHECK_SOURCES})
target_link_libraries(genner_header_check PRIVATE genner::genner)
target_compile_options(genner_header_check PRIVATE -fsyntax-only)
add_test(NAME header_check
  COMMAND ${CMAKE_COMMAND} --build ${PROJECT_BINARY_DIR} --target genner_header_check)
