target_sources(qswap PRIVATE
  qswap/model/added_tokens.cc
  qswap/model/bpe.cc
  qswap/model/rope.cc
  qswap/model/sampler.cc
  qswap/model/token_regex.cc
  qswap/model/tokenizer.cc
  qswap/model/tokenizer_json.cc
  qswap/model/transformer.cc
  qswap/model/unicode_text.cc
  qswap/model/weight_map.cc)

# Tokenizer: PCRE2 for the pre-tokenizer regexes, ICU for Unicode normalization (NFC) and
# character properties.
find_package(PkgConfig REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
pkg_check_modules(ICU REQUIRED IMPORTED_TARGET icu-uc)
target_link_libraries(qswap PRIVATE PkgConfig::PCRE2 PkgConfig::ICU)
