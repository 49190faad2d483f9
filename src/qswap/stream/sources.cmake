# The weight-stream protocol: a trainer pushes weights to the engine over a socket (docs/protocol.md).
# Frames carry zlib's CRC-32 (the one Python's zlib.crc32 computes).
find_package(ZLIB REQUIRED)
target_link_libraries(qswap PRIVATE ZLIB::ZLIB)
target_sources(qswap PRIVATE
  qswap/stream/frame.cc
  qswap/stream/frame_reader.cc
  qswap/stream/listener.cc
  qswap/stream/receiver.cc
  qswap/stream/socket.cc)
