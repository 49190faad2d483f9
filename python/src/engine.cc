// qswap._core.Engine and qswap._core.WeightUpdate: qswap::Engine as Python sees it. Every call
// that runs the model or moves weights releases the GIL. The friendly API (dataclasses, the
// context manager, str prompts) is python/qswap/engine.py.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "bindings.h"
#include "qswap/engine/engine.h"

namespace qswap::python {
namespace {

std::optional<UpdateMode> parse_mode(const std::optional<std::string>& mode) {
  if (!mode) return std::nullopt;
  return value_or_throw(parse_update_mode(*mode));
}

nb::dict stats_dict(const UpdateStats& s) {
  nb::dict d;
  d["version"] = s.version;
  d["mode"] = std::string(update_mode_name(s.mode));
  d["tensors"] = s.tensors;
  d["bytes_in"] = s.bytes_in;
  d["seconds"] = s.seconds;
  d["peak_staging_bytes"] = s.peak_staging_bytes;
  d["max_units_staging"] = s.max_units_staging;
  d["units_completed"] = s.units_completed;
  d["peak_rss_bytes"] = s.peak_rss_bytes;
  d["warnings"] = s.warnings;
  return d;
}

// One update in progress, on the Python side. Ends (committed or aborted) at most once; the
// WeightUpdate is released when it ends, so its loader's memory goes with it. update_ is read and
// written only under the engine's update_mutex (two Python threads may share one update).
class PyUpdate {
 public:
  PyUpdate(PyEngine& engine, std::unique_ptr<WeightUpdate> update) : engine_(engine), update_(std::move(update)) {}
  PyUpdate(const PyUpdate&) = delete;
  PyUpdate& operator=(const PyUpdate&) = delete;
  ~PyUpdate() {
    // Abandoned without commit: ~WeightUpdate aborts it. The mutex holder never waits for the GIL.
    std::lock_guard<std::mutex> lock(engine_.update_mutex());
    update_.reset();
  }

  bool active() {
    nb::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(engine_.update_mutex());
    return update_ != nullptr;
  }

  void add(const std::string& name, nb::handle tensor) {
    nb::object holder;
    Result<BorrowedTensor> borrowed = borrow_tensor(name, tensor, holder);
    Status status;
    {
      nb::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(engine_.update_mutex());
      if (!update_) {
        status = ended();
      } else if (!borrowed.ok()) {
        // A tensor qswap cannot read fails the update like one the engine rejects.
        status = borrowed.status();
        update_->abort(status);
        update_.reset();
      } else {
        status = update_->add(borrowed->incoming);
        if (!status.ok()) update_.reset();  // the engine has aborted it
      }
    }
    throw_if_error(status);  // `borrowed` is released after this, with the GIL held
  }

  nb::dict commit() {
    std::optional<Result<UpdateStats>> stats;
    {
      nb::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(engine_.update_mutex());
      if (update_) {
        stats.emplace(update_->commit());
        update_.reset();
      } else {
        stats.emplace(ended());
      }
    }
    return stats_dict(value_or_throw(std::move(*stats)));
  }

  void abort(const std::string& reason) {
    nb::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(engine_.update_mutex());
    if (update_) update_->abort(aborted("{}", reason));
    update_.reset();
  }

  // Progress so far (tensors and bytes taken, staging in use).
  nb::dict progress() {
    std::optional<LoadStats> s;
    {
      nb::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(engine_.update_mutex());
      if (update_) s = update_->stats();
    }
    if (!s) throw StatusError(ended());
    nb::dict d;
    d["tensors"] = s->tensors;
    d["bytes_in"] = s->bytes_in;
    d["units_completed"] = s->units_completed;
    d["staging_bytes"] = s->staging_bytes;
    d["peak_staging_bytes"] = s->peak_staging_bytes;
    return d;
  }

 private:
  static Status ended() { return failed_precondition("this weight update has already ended (committed or aborted)"); }

  PyEngine& engine_;
  std::unique_ptr<WeightUpdate> update_;
};

nb::dict config_dict(const Engine& e) {
  const ModelConfig& c = e.config();
  nb::dict d;
  d["architecture"] = std::string(arch_name(c.arch));
  d["hidden_size"] = c.hidden_size;
  d["num_hidden_layers"] = c.num_hidden_layers;
  d["num_attention_heads"] = c.num_attention_heads;
  d["num_key_value_heads"] = c.num_key_value_heads;
  d["head_dim"] = c.head_dim;
  d["intermediate_size"] = c.intermediate_size;
  d["vocab_size"] = c.vocab_size;
  d["max_position_embeddings"] = c.max_position_embeddings;
  d["rope_theta"] = c.rope_theta;
  d["rms_norm_eps"] = c.rms_norm_eps;
  d["tie_word_embeddings"] = c.tie_word_embeddings;
  d["eos_token_ids"] = c.eos_token_ids;
  d["bos_token_id"] = c.bos_token_id;
  d["torch_dtype"] = std::string(dtype_name(c.torch_dtype));
  d["quant"] = e.options().quant;
  d["update_mode"] = std::string(update_mode_name(e.options().update_mode));
  return d;
}

void init_engine(PyEngine* self, const std::string& model_dir, const std::string& quant, const std::string& update_mode,
                 int threads, bool allow_unknown) {
  EngineOptions options;
  options.quant = quant;
  options.update_mode = value_or_throw(parse_update_mode(update_mode));
  if (threads < 0) throw StatusError(invalid_argument("threads must be >= 0 (0: all hardware threads), got {}", threads));
  options.threads = threads;
  options.allow_unknown = allow_unknown;
  std::optional<Result<std::unique_ptr<Engine>>> engine;
  {
    nb::gil_scoped_release release;
    engine.emplace(Engine::load(model_dir, options));
  }
  new (self) PyEngine(value_or_throw(std::move(*engine)));
}

std::unique_ptr<PyUpdate> begin_update(PyEngine& self, const std::optional<std::string>& mode) {
  const std::optional<UpdateMode> m = parse_mode(mode);
  std::optional<Result<std::unique_ptr<WeightUpdate>>> update;
  {
    nb::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(self.update_mutex());
    update.emplace(self.engine().begin_update(m));
  }
  return std::make_unique<PyUpdate>(self, value_or_throw(std::move(*update)));
}

nb::dict update_from_disk(PyEngine& self, const std::string& path, const std::optional<std::string>& mode) {
  const std::optional<UpdateMode> m = parse_mode(mode);
  std::optional<Result<UpdateStats>> stats;
  {
    nb::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(self.update_mutex());
    stats.emplace(self.engine().update_weights_from_disk(path, m));
  }
  return stats_dict(value_or_throw(std::move(*stats)));
}

nb::object last_update(PyEngine& self) {
  std::optional<UpdateStats> stats;
  {
    nb::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(self.update_mutex());
    stats = self.engine().last_update();
  }
  if (!stats) return nb::none();
  return stats_dict(*stats);
}

nb::dict generate(PyEngine& self, std::vector<int32_t> prompt, int64_t max_tokens, float temperature, int64_t top_k,
                  float top_p, uint64_t seed, std::vector<std::string> stop, bool ignore_eos) {
  GenerateRequest request;
  request.prompt = std::move(prompt);
  request.sampling = SamplingParams{max_tokens, temperature, top_k, top_p, seed};
  request.stop = std::move(stop);
  request.ignore_eos = ignore_eos;
  std::optional<Result<GenerateResult>> result;
  {
    nb::gil_scoped_release release;
    result.emplace(self.engine().generate(request));
  }
  GenerateResult r = value_or_throw(std::move(*result));
  nb::dict d;
  d["text"] = std::move(r.text);
  d["token_ids"] = std::move(r.tokens);
  d["logprobs"] = std::move(r.logprobs);
  d["finish_reason"] = std::move(r.finish_reason);
  d["weight_version"] = r.weight_version;
  d["prompt_tokens"] = r.prompt_tokens;
  d["prefill_seconds"] = r.prefill_seconds;
  d["decode_seconds"] = r.decode_seconds;
  return d;
}

nb::dict perplexity(PyEngine& self, std::vector<int32_t> tokens, int64_t context, int64_t stride) {
  std::optional<Result<PerplexityResult>> result;
  {
    nb::gil_scoped_release release;
    result.emplace(self.engine().perplexity(tokens, context, stride));
  }
  const PerplexityResult r = value_or_throw(std::move(*result));
  nb::dict d;
  d["perplexity"] = r.perplexity;
  d["nll_sum"] = r.nll_sum;
  d["tokens_scored"] = r.tokens_scored;
  d["weight_version"] = r.weight_version;
  d["seconds"] = r.seconds;
  return d;
}

std::vector<int32_t> tokenize(PyEngine& self, const std::string& text) {
  std::optional<Result<std::vector<int32_t>>> ids;
  {
    nb::gil_scoped_release release;
    ids.emplace(self.engine().tokenize(text));
  }
  return value_or_throw(std::move(*ids));
}

std::string decode(PyEngine& self, const std::vector<int32_t>& ids, bool skip_special_tokens) {
  const Tokenizer* tokenizer = self.engine().tokenizer();
  if (!tokenizer) throw StatusError(failed_precondition("the model directory has no tokenizer.json"));
  for (int32_t id : ids) {
    if (id < 0 || id >= tokenizer->vocab_size()) {
      throw StatusError(out_of_range("token id {} is outside the tokenizer's vocabulary of {}", id,
                                     tokenizer->vocab_size()));
    }
  }
  nb::gil_scoped_release release;
  return tokenizer->decode(ids, skip_special_tokens);
}

}  // namespace

void bind_engine(nb::module_& m) {
  nb::class_<PyUpdate>(m, "WeightUpdate",
                       "One weight update in progress (Engine.begin_update): add tensors in any order, then "
                       "commit() or abort().")
      .def("add", &PyUpdate::add, nb::arg("name"), nb::arg("tensor"),
           "Quantizes one checkpoint tensor into the update, reading its memory in place (GIL released). "
           "A rejected tensor aborts the update.")
      .def("commit", &PyUpdate::commit, "Completes the update; returns its stats as a dict.")
      .def("abort", &PyUpdate::abort, nb::arg("reason") = "aborted by the caller")
      .def("progress", &PyUpdate::progress)
      .def_prop_ro("active", &PyUpdate::active);

  nb::class_<PyEngine>(m, "Engine")
      .def("__init__", &init_engine, nb::arg("model_dir"), nb::arg("quant"), nb::arg("update_mode"),
           nb::arg("threads"), nb::arg("allow_unknown"))
      .def("begin_update", &begin_update, nb::arg("mode").none() = nb::none(), nb::keep_alive<0, 1>())
      .def("update_weights_from_disk", &update_from_disk, nb::arg("path"), nb::arg("mode").none() = nb::none())
      .def("last_update", &last_update)
      .def("generate", &generate, nb::arg("prompt"), nb::arg("max_tokens"), nb::arg("temperature"),
           nb::arg("top_k"), nb::arg("top_p"), nb::arg("seed"), nb::arg("stop"), nb::arg("ignore_eos"))
      .def("perplexity", &perplexity, nb::arg("tokens"), nb::arg("context"), nb::arg("stride"))
      .def("tokenize", &tokenize, nb::arg("text"))
      .def("decode", &decode, nb::arg("ids"), nb::arg("skip_special_tokens") = false)
      .def_prop_ro("weight_version", [](PyEngine& self) { return self.engine().weight_version(); })
      .def_prop_ro("config", [](PyEngine& self) { return config_dict(self.engine()); });
}

}  // namespace qswap::python
