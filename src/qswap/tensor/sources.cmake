target_sources(qswap PRIVATE
  qswap/tensor/dtype.cc
  qswap/tensor/tensor.cc)
