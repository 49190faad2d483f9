// The libFuzzer entry point every harness here defines; standalone_main.cc calls it on files.
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
