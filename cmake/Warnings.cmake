# Warnings for the project's own targets (not for third-party headers).
function(paraplan_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion-null
                         -Wnon-virtual-dtor -Wno-unused-parameter)
endfunction()
