target_sources(qswap PRIVATE
  qswap/base/cpu.cc
  qswap/base/log.cc
  qswap/base/mapped_file.cc
  qswap/base/status.cc
  qswap/base/thread_pool.cc
  qswap/base/untrusted.cc)
