target_sources(qswap PRIVATE
  qswap/io/json_strict.cc
  qswap/io/model_config.cc
  qswap/io/safetensors.cc
  qswap/io/safetensors_index.cc
  qswap/io/safetensors_writer.cc
  qswap/io/tensor_source.cc)
