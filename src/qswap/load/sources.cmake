target_sources(qswap PRIVATE
  qswap/load/kernel_store.cc
  qswap/load/layerwise_loader.cc)
