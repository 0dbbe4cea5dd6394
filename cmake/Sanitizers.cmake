# PARAPLAN_SANITIZE=ON: every target built with AddressSanitizer (LeakSanitizer included) and
# UndefinedBehaviorSanitizer, every report fatal. PARAPLAN_FUZZ=ON (clang only) adds libFuzzer's coverage
# instrumentation and the fuzz targets of tests/fuzz. scripts/test builds both in build-fuzz beside the
# Release build (docs/reliability.md, "Sanitizers" and "Fuzzing").
option(PARAPLAN_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
option(PARAPLAN_FUZZ "Build the libFuzzer targets of tests/fuzz (clang; implies PARAPLAN_SANITIZE)" OFF)
set(PARAPLAN_FUZZ_SECONDS 60 CACHE STRING "Seconds each fuzz target runs under ctest (label fuzz)")

if(PARAPLAN_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "paraplan: PARAPLAN_FUZZ needs clang (-fsanitize=fuzzer); Debian: apt-get install "
                        "clang-14 libclang-rt-14-dev, then configure with -DCMAKE_CXX_COMPILER=clang++-14")
  endif()
  set(PARAPLAN_SANITIZE ON)
endif()
if(PARAPLAN_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
  message(STATUS "paraplan: AddressSanitizer + UndefinedBehaviorSanitizer build")
endif()
if(PARAPLAN_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link)  # coverage feedback from the libraries under test
endif()
