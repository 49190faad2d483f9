target_sources(qswap PRIVATE
  qswap/io/model_config.cc)
