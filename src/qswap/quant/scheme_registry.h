// Factories of the schemes, one per file (internal to the quant layer).
#pragma once

#include <memory>

#include "qswap/quant/scheme.h"

namespace qswap::quant {

std::unique_ptr<QuantScheme> make_none_scheme();
std::unique_ptr<QuantScheme> make_fp8_tensor_scheme();
std::unique_ptr<QuantScheme> make_fp8_channel_scheme();
std::unique_ptr<QuantScheme> make_fp8_block_scheme();
std::unique_ptr<QuantScheme> make_mxfp8_scheme();
std::unique_ptr<QuantScheme> make_int8_channel_scheme();

}  // namespace qswap::quant
