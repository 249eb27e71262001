# Every public header must compile on its own: one generated translation unit
# per header, compiled without optimization. Built on demand (it is slow on small
# machines) by the CTest test `header_check`. The heavy third-party headers
# (header_check_pch.hpp: LibTorch, nlohmann/json, cpp-httplib) are precompiled, so
# the check is that each header brings every genner header it uses (standard
# headers mostly come with LibTorch's anyway) (measured for t5/layers.hpp: 29 s on its own, 10 s this way). An
# umbrella header (one that holds nothing but includes of other genner headers) is
# self-contained when each of those is, so it is checked for that shape instead of
# being compiled again.
file(GLOB_RECURSE GENNER_PUBLIC_HEADERS RELATIVE ${PROJECT_SOURCE_DIR}/include
  CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/include/genner/*.hpp)
set(GENNER_HEADER_CHECK_SOURCES)
set(GENNER_UMBRELLA_HEADERS)
foreach(header IN LISTS GENNER_PUBLIC_HEADERS)
  file(READ ${PROJECT_SOURCE_DIR}/include/${header} text)
  string(REGEX REPLACE "//[^\n]*" "" text "${text}")
  string(REGEX MATCHALL "#include <genner/[^>]+>" includes "${text}")
  list(TRANSFORM includes REPLACE "#include <(genner/[^>]+)>" "\\1")
  string(REGEX REPLACE "#include <genner/[^>]+>|#pragma once|[ \t\r\n]" "" rest "${text}")
  set(umbrella FALSE)
  if(rest STREQUAL "")
    set(umbrella TRUE)
  endif()
  if(umbrella AND includes)
    foreach(included IN LISTS includes)
      if(NOT included IN_LIST GENNER_PUBLIC_HEADERS)
        message(FATAL_ERROR "${header} includes <${included}>, which is not a header of include/genner")
      endif()
    endforeach()
    list(APPEND GENNER_UMBRELLA_HEADERS ${header})
    continue()
  endif()
  string(MAKE_C_IDENTIFIER ${header} stem)
  set(source ${CMAKE_CURRENT_BINARY_DIR}/header_check/${stem}.cpp)
  file(CONFIGURE OUTPUT ${source} CONTENT "#include <${header}>\n#include <${header}>\n")
  list(APPEND GENNER_HEADER_CHECK_SOURCES ${source})
endforeach()
list(LENGTH GENNER_HEADER_CHECK_SOURCES compiled)
list(LENGTH GENNER_UMBRELLA_HEADERS umbrellas)
message(STATUS "header_check: ${compiled} headers compiled on their own, ${umbrellas} umbrella headers of includes only")
add_library(genner_header_check OBJECT EXCLUDE_FROM_ALL ${GENNER_HEADER_CHECK_SOURCES})
target_link_libraries(genner_header_check PRIVATE genner::genner)
target_compile_options(genner_header_check PRIVATE -O0)
target_precompile_headers(genner_header_check PRIVATE header_check_pch.hpp)
add_test(NAME header_check
  COMMAND ${CMAKE_COMMAND} --build ${PROJECT_BINARY_DIR} --target genner_header_check)
