target_sources(qswap PRIVATE
  qswap/kernels/attention.cc
  qswap/kernels/attention_avx512.cc
  qswap/kernels/linear.cc
  qswap/kernels/linear_avx512.cc
  qswap/kernels/linear_vbmi.cc
  qswap/kernels/ops.cc
  qswap/kernels/ops_avx512.cc)
qswap_isa_sources(AVX512 qswap/kernels/attention_avx512.cc qswap/kernels/linear_avx512.cc qswap/kernels/linear_vbmi.cc
  qswap/kernels/ops_avx512.cc)
# The e4m3 GEMV decoder also needs VBMI (vpermb) and GFNI (vgf2p8affineqb); reached only when the
# CPU has both.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set_property(SOURCE qswap/kernels/linear_vbmi.cc APPEND PROPERTY COMPILE_OPTIONS -mavx512vbmi -mgfni)
endif()
