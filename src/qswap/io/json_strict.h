// Strict JSON parsing for untrusted headers and index files. nlohmann's default parser keeps the
// last of two equal keys silently and nests as deep as the input asks; here a repeated key, invalid
// UTF-8 or nesting deeper than `max_depth` is an error.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

#include "qswap/base/status.h"

namespace qswap {

inline constexpr size_t kDefaultMaxJsonDepth = 64;

// Offset of the first byte that is not part of well-formed UTF-8 (overlong forms, surrogates and
// code points past U+10FFFF are ill-formed, as in Rust's str::from_utf8), or nullopt.
std::optional<size_t> find_invalid_utf8(std::string_view text);

// "integer", "number" (non-integral), "string", "object", ... for messages about untrusted JSON.
std::string_view json_type_name(const nlohmann::json& value);

// Parses one JSON value (whitespace around it allowed, nothing else). Errors are kDataLoss with
// a message that names the problem but not the file: callers add that context.
Result<nlohmann::json> parse_json_strict(std::string_view text,
                                         size_t max_depth = kDefaultMaxJsonDepth);

}  // namespace qswap
