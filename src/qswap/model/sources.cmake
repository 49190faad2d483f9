target_sources(qswap PRIVATE
  qswap/model/weight_map.cc)
