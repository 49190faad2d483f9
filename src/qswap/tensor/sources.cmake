target_sources(qswap PRIVATE
  qswap/tensor/convert.cc
  qswap/tensor/convert_avx512.cc
  qswap/tensor/dtype.cc
  qswap/tensor/tensor.cc)
qswap_isa_sources(AVX512 qswap/tensor/convert_avx512.cc)
