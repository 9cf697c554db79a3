# Small helpers that keep target boilerplate out of the per-folder CMakeLists.

# Warnings for dagd's own code (never for generated code).
function(dagd_warnings target)
  # Designated initializers may leave members at their defaults (-Wmissing-field-initializers).
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter
                                           -Wno-missing-field-initializers)
endfunction()

# dagd_library(NAME SOURCES a.cc b.cc DEPS lib1 lib2)
#   A static library whose include root is the repository root, so includes read
#   "engine/workflow.h".
function(dagd_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  dagd_warnings(${name})
endfunction()

# dagd_test(NAME SOURCES a_test.cc DEPS lib1)
#   One GoogleTest binary, its cases registered with CTest through gtest_discover_tests.
function(dagd_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    DAGD_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    DAGD_BINARY_DIR="${PROJECT_BINARY_DIR}")
  dagd_warnings(${name})
  include(GoogleTest)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 300)
endfunction()
