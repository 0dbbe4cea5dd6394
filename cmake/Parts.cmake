# The optional parts — executor (LibTorch), its CUDA/NCCL compile check, GUI (Qt6) — build when their
# dependencies are found. With PARAPLAN_REQUIRE_ALL=ON (what scripts/test and CI use) a part that cannot
# build stops the configure with the reason and the Debian package to install, instead of a status line
# that a green test run would hide.
option(PARAPLAN_REQUIRE_ALL "Fail the configure when the executor, its CUDA compile check or the GUI cannot build" OFF)

function(paraplan_part_skipped part reason)
  if(PARAPLAN_REQUIRE_ALL)
    message(FATAL_ERROR "paraplan: the ${part} cannot build — ${reason}. "
                        "PARAPLAN_REQUIRE_ALL=ON (scripts/test) needs every part; configure with "
                        "-DPARAPLAN_REQUIRE_ALL=OFF to build without it.")
  endif()
  message(STATUS "paraplan: ${part} skipped — ${reason}")
endfunction()
