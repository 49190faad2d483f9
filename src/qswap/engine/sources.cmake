target_sources(qswap PRIVATE
  qswap/engine/engine.cc
  qswap/engine/export.cc
  qswap/engine/generate.cc
  qswap/engine/inspect.cc
  qswap/engine/synth.cc)
