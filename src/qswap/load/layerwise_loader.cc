#include "qswap/load/layerwise_loader.h"

#include <cmath>
#include <cstring>
#include <mutex>

#include <fmt/ranges.h>

#include "qswap/base/cpu.h"
#include "qswap/base/log.h"
#include "qswap/quant/row_ops_avx512.h"
#include "qswap/tensor/convert.h"

namespace qswap {
namespace {

bool is_source_dtype(DType d) { return d == DType::kBF16 || d == DType::kF16 || d == DType::kF32; }

constexpr size_t kMaxNamesInError = 8;

// Per-tensor FP8 stages the shards of a fused parameter. A staging buffer holds the parameter's
// rows and, after them, one float: the max |x| of the rows staged so far, measured while copying
// them (NaN: not measured), so the scheme need not read them again before its scale is known.
size_t staging_bytes(int64_t rows, size_t row_bytes) { return static_cast<size_t>(rows) * row_bytes + sizeof(float); }
float read_staged_amax(const Buffer& b) {
  float v;
  std::memcpy(&v, b.data() + b.size() - sizeof(float), sizeof(v));
  return v;
}
void write_staged_amax(Buffer& b, float v) { std::memcpy(b.data() + b.size() - sizeof(float), &v, sizeof(v)); }

// Copies `rows` rows of `row_bytes` from src to dst on the pool. Returns max |x| over them for bf16
// and f32 on the fast path (the same value the scheme's own pass would find: max is exact), NaN
// otherwise or if a value is not finite (the scheme then reads the rows itself and names the row).
float stage_rows(const QuantContext& ctx, DType dtype, const std::byte* src, std::byte* dst, int64_t rows,
                 size_t row_bytes) {
  const bool measure = !ctx.reference && (dtype == DType::kBF16 || dtype == DType::kF32);
  const size_t elems_per_row = row_bytes / dtype_size(dtype);
  std::mutex mutex;
  float total = measure ? 0.0f : NAN;
  // Shared out by rows: a fused parameter's shards are megabytes, and staging is on the reload path.
  const bool avx512 = measure && dtype == DType::kBF16 && cpu_features().avx512;
  Status s = quant::for_each_row_block(ctx, rows, 64, [&](int64_t begin, int64_t end) -> Status {
    const size_t offset = static_cast<size_t>(begin) * row_bytes, bytes = static_cast<size_t>(end - begin) * row_bytes;
    const size_t n = static_cast<size_t>(end - begin) * elems_per_row;
    float m;
    if (avx512) {  // one pass
      m = quant::avx512::copy_amax_bf16(reinterpret_cast<const uint16_t*>(src + offset),
                                        reinterpret_cast<uint16_t*>(dst + offset), static_cast<int64_t>(n));
    } else {
      std::memcpy(dst + offset, src + offset, bytes);
      if (!measure) return {};
      // The chunk is in cache now.
      m = dtype == DType::kBF16 ? amax_bf16(reinterpret_cast<const uint16_t*>(src + offset), n)
                                : amax_f32(reinterpret_cast<const float*>(src + offset), n);
    }
    std::lock_guard<std::mutex> lock(mutex);
    total = std::isfinite(m) && !std::isnan(total) ? std::max(total, m) : NAN;
    return {};
  });
  return s.ok() ? total : NAN;
}

}  // namespace

LayerwiseLoader::LayerwiseLoader(const WeightMap& map, const QuantScheme& scheme, KernelStore& target,
                                 LoaderOptions options)
    : map_(map),
      scheme_(scheme),
      target_(target),
      options_(options),
      seen_(map.tensors().size(), 0),
      params_(map.params().size()),
      unit_missing_(static_cast<size_t>(map.num_units()), 0),
      unit_staging_groups_(static_cast<size_t>(map.num_units()), 0) {
  for (const CheckpointTensor& t : map.tensors()) {
    if (!t.required) continue;
    ++unit_missing_[static_cast<size_t>(map.unit_of(t.param))];
  }
}

Status LayerwiseLoader::add(const IncomingTensor& in) {
  const CheckpointTensor* t = map_.find(in.name);
  if (t == nullptr) {
    NameKind kind = map_.classify(in.name);
    if (kind == NameKind::kIgnored) return {};
    if (!options_.allow_unknown) {
      return invalid_argument("tensor '{}' is not a weight of {} (use --allow-unknown to skip unknown tensors)",
                              in.name, arch_name(map_.config().arch));
    }
    stats_.warnings.push_back(fmt::format("skipped unknown tensor '{}'", in.name));
    QSWAP_LOG_WARN("load skipped_unknown_tensor={}", in.name);
    return {};
  }
  const size_t index = static_cast<size_t>(t - map_.tensors().data());
  if (seen_[index]) return invalid_argument("tensor '{}' arrived twice in one update", in.name);
  if (!is_source_dtype(in.dtype)) {
    return invalid_argument("tensor '{}' has dtype {}; expected bf16, f16 or f32", in.name, dtype_name(in.dtype));
  }
  if (!std::equal(in.shape.begin(), in.shape.end(), t->shape.begin(), t->shape.end())) {
    return invalid_argument("tensor '{}' has wrong shape; expected {}, got {}", in.name, format_shape(t->shape),
                            format_shape(in.shape));
  }
  const size_t expected_bytes = static_cast<size_t>(num_elements(t->shape)) * dtype_size(in.dtype);
  if (in.data.size() != expected_bytes) {
    return data_loss("tensor '{}' has {} bytes of data; {} {} needs {}", in.name, in.data.size(),
                     dtype_name(in.dtype), format_shape(t->shape), expected_bytes);
  }
  target_.ensure_allocated(t->param);
  const ParamSpec& param = map_.params()[static_cast<size_t>(t->param)];
  Status status = param.is_linear ? add_linear(*t, in) : add_passthrough(*t, in);
  if (!status.ok()) return std::move(status).with_context(fmt::format("tensor '{}'", in.name));
  seen_[index] = 1;
  ++stats_.tensors;
  stats_.bytes_in += static_cast<int64_t>(in.data.size());
  finish_tensor(*t);
  return {};
}

Status LayerwiseLoader::add_passthrough(const CheckpointTensor& t, const IncomingTensor& in) {
  const int64_t rows = t.shape[0];
  const int64_t cols = num_elements(t.shape) / std::max<int64_t>(rows, 1);
  uint16_t* dst = target_.views(t.param)[0].as<uint16_t>() + t.row_offset * cols;
  const size_t row_bytes = static_cast<size_t>(cols) * dtype_size(in.dtype);
  // Embeddings are the largest tensors of all; share them out by rows.
  return quant::for_each_row_block(options_.quant, rows, 256, [&](int64_t begin, int64_t end) -> Status {
    Status s = copy_to_bf16(in.dtype, in.data.data() + static_cast<size_t>(begin) * row_bytes, dst + begin * cols,
                            (end - begin) * cols, options_.quant.reference);
    if (!s.ok()) return data_loss("rows {}..{} hold a NaN or Inf value", begin, end);
    return {};
  });
}

Status LayerwiseLoader::add_linear(const CheckpointTensor& t, const IncomingTensor& in) {
  const ParamSpec& param = map_.params()[static_cast<size_t>(t.param)];
  ParamState& st = params_[static_cast<size_t>(t.param)];
  if (st.any_shard && st.dtype != in.dtype) {
    return invalid_argument("dtype {} differs from the {} of the other tensors of fused parameter '{}'",
                            dtype_name(in.dtype), dtype_name(st.dtype), param.name);
  }
  st.any_shard = true;
  st.dtype = in.dtype;
  const int64_t n = param.shape[0];

  if (!scheme_.scale_spans_shards() || param.shard_rows.size() == 1) {
    // Every row group lies inside this tensor: quantize it whole, straight from its bytes.
    const int64_t group = scheme_.row_group();
    int64_t group0 = 0;
    for (int s = 0; s < t.shard; ++s) group0 += (param.shard_rows[static_cast<size_t>(s)] + group - 1) / group;
    return quantize_rows(t.param, in.dtype, in.data.data(), t.row_offset, t.shape[0], group0);
  }

  // One scale over the fused parameter: stage shards until the last one arrives.
  const size_t row_bytes = static_cast<size_t>(param.shape[1]) * dtype_size(in.dtype);
  const int unit = map_.unit_of(t.param);
  Staging& staging = st.staging;
  if (staging.buffer.size() == 0) {
    staging.buffer = take_staging(staging_bytes(n, row_bytes));
    staging.rows_present = 0;
    write_staged_amax(staging.buffer, 0.0f);
    update_staging_stats(static_cast<std::ptrdiff_t>(staging.buffer.size()), unit);
  }
  if (staging.rows_present + t.shape[0] < n) {
    const size_t offset = static_cast<size_t>(t.row_offset) * row_bytes;
    const float m = stage_rows(options_.quant, in.dtype, in.data.data(), staging.buffer.data() + offset, t.shape[0],
                               row_bytes);
    const float staged = read_staged_amax(staging.buffer);
    write_staged_amax(staging.buffer, std::isnan(staged) || std::isnan(m) ? NAN : std::max(staged, m));
    staging.rows_present += t.shape[0];
    return {};
  }
  // The last shard completes the parameter: its rows are read in place, only the others were staged.
  SourceRows src{st.dtype, staging.buffer.data(), 0, n, param.shape[1], 0, in.data.data(), t.row_offset, t.shape[0]};
  const float staged = read_staged_amax(staging.buffer);
  src.staged_amax = std::isnan(staged) ? -1.0f : staged;
  Status s = scheme_.quantize(src, target_.views(t.param), options_.quant);
  if (!s.ok()) {
    s = data_loss("{} of '{}' (from {}): {}", scheme_.name(), param.name, tensors_in_rows(t.param, 0, n), s.message());
  }
  update_staging_stats(-static_cast<std::ptrdiff_t>(staging.buffer.size()), unit);
  spare_staging_.push_back(std::move(staging.buffer));
  staging.buffer = Buffer();
  return s;
}

// Layers repeat the same shapes: a freed buffer of the right size saves an allocation and the
// page faults of touching fresh memory, which cost as much as the quantization itself.
Buffer LayerwiseLoader::take_staging(size_t bytes) {
  for (size_t i = 0; i < spare_staging_.size(); ++i) {
    if (spare_staging_[i].size() == bytes) {
      Buffer b = std::move(spare_staging_[i]);
      spare_staging_.erase(spare_staging_.begin() + static_cast<std::ptrdiff_t>(i));
      return b;
    }
  }
  return Buffer::uninitialized(bytes);
}

Status LayerwiseLoader::quantize_rows(int param, DType dtype, const std::byte* data, int64_t row0, int64_t rows,
                                      int64_t group0) {
  const ParamSpec& p = map_.params()[static_cast<size_t>(param)];
  SourceRows src{dtype, data, row0, rows, p.shape[1], group0};
  Status s = scheme_.quantize(src, target_.views(param), options_.quant);
  if (s.ok()) return s;
  return data_loss("{} of '{}' (from {}): {}", scheme_.name(), p.name, tensors_in_rows(param, row0, row0 + rows),
                   s.message());
}

std::string LayerwiseLoader::tensors_in_rows(int param, int64_t row0, int64_t row1) const {
  std::vector<std::string_view> names;
  for (const CheckpointTensor& t : map_.tensors()) {
    if (t.param == param && t.row_offset < row1 && t.row_offset + t.shape[0] > row0) names.push_back(t.name);
  }
  return fmt::format("{}", fmt::join(names, ", "));
}

void LayerwiseLoader::finish_tensor(const CheckpointTensor& t) {
  const int unit = map_.unit_of(t.param);
  if (--unit_missing_[static_cast<size_t>(unit)] == 0) {
    ++stats_.units_completed;
    if (unit_done_) unit_done_(unit);
  }
}

void LayerwiseLoader::update_staging_stats(std::ptrdiff_t delta, int unit) {
  stats_.staging_bytes = static_cast<size_t>(static_cast<std::ptrdiff_t>(stats_.staging_bytes) + delta);
  stats_.peak_staging_bytes = std::max(stats_.peak_staging_bytes, stats_.staging_bytes);
  int& groups = unit_staging_groups_[static_cast<size_t>(unit)];
  if (delta > 0 && groups++ == 0) {
    ++units_staging_;
    stats_.max_units_staging = std::max(stats_.max_units_staging, units_staging_);
    if (units_staging_ > 1 && !warned_out_of_order_) {
      warned_out_of_order_ = true;
      std::vector<std::string> in_flight;
      for (int u = 0; u < map_.num_units(); ++u) {
        if (unit_staging_groups_[static_cast<size_t>(u)] > 0) in_flight.push_back(map_.unit_name(u));
      }
      std::string msg = fmt::format("out-of-order arrival: {} units hold staging at once ({}); peak staging grows "
                                    "with the units in flight", in_flight.size(), fmt::join(in_flight, ", "));
      QSWAP_LOG_WARN("load {}", msg);
      stats_.warnings.push_back(std::move(msg));
    }
  } else if (delta < 0 && --groups == 0) {
    --units_staging_;
  }
}

Status LayerwiseLoader::finalize() {
  std::vector<std::string_view> missing;
  size_t count = 0;
  for (size_t i = 0; i < seen_.size(); ++i) {
    if (seen_[i] || !map_.tensors()[i].required) continue;
    if (++count <= kMaxNamesInError) missing.push_back(map_.tensors()[i].name);
  }
  for (ParamState& st : params_) st.staging.buffer = Buffer();
  spare_staging_.clear();
  stats_.staging_bytes = 0;
  if (count == 0) return {};
  return not_found("update incomplete: {} required tensor(s) never arrived: {}{}", count, fmt::join(missing, ", "),
                   count > missing.size() ? fmt::format(", and {} more", count - missing.size()) : "");
}

}  // namespace qswap
