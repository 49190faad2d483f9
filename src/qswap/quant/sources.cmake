target_sources(qswap PRIVATE
  qswap/quant/fp8_block.cc
  qswap/quant/fp8_channel.cc
  qswap/quant/fp8_tensor.cc
  qswap/quant/int8_channel.cc
  qswap/quant/mxfp8.cc
  qswap/quant/row_ops.cc
  qswap/quant/row_ops_avx512.cc
  qswap/quant/scheme.cc
  qswap/quant/scheme_none.cc)
qswap_isa_sources(AVX512 qswap/quant/row_ops_avx512.cc)
