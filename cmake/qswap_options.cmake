# Project-wide compile options: warnings, sanitizers, and per-ISA source flags.

add_library(qswap_warnings INTERFACE)
target_compile_options(qswap_warnings INTERFACE
  -Wall -Wextra -Wpedantic $<$<CXX_COMPILER_ID:GNU>:-Wshadow=local> -Wnon-virtual-dtor -Wimplicit-fallthrough
  -Wmissing-declarations)
if(QSWAP_WERROR)
  target_compile_options(qswap_warnings INTERFACE -Werror)
endif()

if(QSWAP_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=address,undefined)
endif()

# Sources compiled for one ISA; the code inside is reached only through run-time dispatch
# (qswap/base/cpu.h), so the rest of the binary stays baseline x86-64.
# Rule for such files: include only intrinsics, <cstdint>-like headers and headers written for
# them. An inline function of a shared header (std::span, fmt, qswap's own) compiled here can be
# emitted as a weak symbol with ISA instructions, and the linker may pick that copy program-wide.
set(QSWAP_AVX2_FLAGS -mavx2 -mfma -mf16c)
# GCC 12's AVX-512 intrinsics start from _mm512_undefined_*() and trip -Wmaybe-uninitialized
# (GCC bug 105593): off for these files only, so their sources need no pragmas.
set(QSWAP_AVX512_FLAGS -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512dq
    -mavx512bf16 -mavx512vnni -Wno-maybe-uninitialized -Wno-uninitialized)

function(qswap_isa_sources isa)
  if(NOT CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
    return()
  endif()
  set(flags ${QSWAP_${isa}_FLAGS})
  set_source_files_properties(${ARGN} PROPERTIES COMPILE_OPTIONS "${flags}")
endfunction()
