"""qswap.Engine: load a Hugging Face model directory, quantize it online, generate from it, and
replace its weights in place from a trainer's tensors.

A thin layer over the C++ engine (``qswap._core``): arguments are normalised here, results become
dataclasses; tensors go to C++ untouched (zero-copy) and every call that runs the model or moves
weights releases the GIL.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from . import _core
from .errors import InvalidArgumentError


@dataclass(frozen=True)
class GenerateResult:
    """One completion. ``logprobs[i]`` is log p(token_ids[i]) under the model's unmodified
    distribution (log-softmax of the logits) with the weights of ``weight_version``, which produced
    every token of this result."""

    text: str
    token_ids: list[int]
    logprobs: Optional[list[float]]
    finish_reason: str  # "stop" (EOS or a stop string) or "length"
    weight_version: int
    prompt_tokens: int
    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0


@dataclass(frozen=True)
class PerplexityResult:
    perplexity: float
    nll_sum: float
    tokens_scored: int
    weight_version: int
    seconds: float = 0.0


@dataclass(frozen=True)
class UpdateStats:
    """What a committed weight update did."""

    version: int  # the engine's weight_version after the update
    mode: str  # "transactional" or "in-place"
    tensors: int
    bytes_in: int  # bytes of checkpoint tensors read
    seconds: float
    peak_staging_bytes: int  # extra memory held for tensors that could not be quantized on arrival
    max_units_staging: int
    units_completed: int
    peak_rss_bytes: int
    warnings: list[str] = field(default_factory=list)


class WeightUpdate:
    """A weight update in progress (``Engine.begin_update``).

    ``add(name, tensor)`` quantizes one checkpoint tensor straight from its memory, in any order;
    ``commit()`` makes the update live and returns :class:`UpdateStats`; ``abort()`` drops it. As a
    context manager it commits when the block ends normally and aborts when it raises::

        with engine.begin_update() as u:
            for name, p in model.named_parameters():
                u.add(name, p)
        print(u.stats.version)
    """

    def __init__(self, core_update: Any):
        self._u = core_update
        self.stats: Optional[UpdateStats] = None

    def add(self, name: str, tensor: Any) -> None:
        """``tensor``: a CPU torch tensor (bf16, f16 or f32; a Parameter is detached, sharing its
        storage), a numpy array, or anything exporting ``__dlpack__`` or the buffer protocol. Must be
        contiguous. Read in place, without a copy, while the GIL is released. A tensor the engine
        rejects raises :class:`~qswap.QswapError` and aborts the update."""
        self._u.add(name, tensor)

    def commit(self) -> UpdateStats:
        self.stats = UpdateStats(**self._u.commit())
        return self.stats

    def abort(self, reason: str = "aborted by the caller") -> None:
        self._u.abort(reason)

    @property
    def active(self) -> bool:
        """True until the update is committed or aborted (a rejected tensor aborts it)."""
        return self._u.active

    def progress(self) -> dict:
        """Tensors and bytes taken so far, and the staging memory in use."""
        return self._u.progress()

    def __enter__(self) -> "WeightUpdate":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            if self.active:
                self.commit()
        else:
            self.abort(f"{exc_type.__name__}: {exc}")
        return False


def _check_sampling(temperature: float, top_k: int, top_p: float) -> None:
    if not (math.isfinite(temperature) and temperature >= 0):
        raise InvalidArgumentError(f"temperature must be a finite number >= 0 (0: greedy), got {temperature}")
    if top_k < 0:
        raise InvalidArgumentError(f"top_k must be >= 0 (0: no limit), got {top_k}")
    if not (0 < top_p <= 1):
        raise InvalidArgumentError(f"top_p must be in (0, 1], got {top_p}")


class Listener:
    """A weight-stream listener (docs/protocol.md) feeding an Engine from another process:
    ``qswap.client.push(model.named_parameters(), listener.address)``. Each pushed update is
    quantized as its frames arrive; stop() (or leaving the ``with`` block) closes it."""

    def __init__(self, core_listener: Any):
        self._core = core_listener

    @property
    def address(self) -> str:
        """The bound address, e.g. "tcp://127.0.0.1:39412" or "unix:/tmp/q.sock"."""
        return self._core.address

    def stats(self) -> dict:
        """{"updates", "failures", "last_error", "last_version"} of the pushes received so far."""
        return self._core.stats()

    def stop(self) -> None:
        self._core.stop()

    def __enter__(self) -> "Listener":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.stop()
        return False


class Engine:
    """A model loaded from a Hugging Face directory (config.json, safetensors, tokenizer.json) and
    quantized online.

    quant: "none" (bf16), "fp8" (per tensor), "fp8-channel", "fp8-block", "mxfp8", "int8-channel".
    update_mode: "transactional" (a failed update leaves the old weights served) or "in-place"
    (no shadow copy; generation is refused until a complete update arrives).
    threads: worker threads (None: all hardware threads).
    allow_unknown: skip checkpoint tensors the architecture does not know, with a warning.
    """

    def __init__(
        self,
        model_dir: Union[str, os.PathLike],
        quant: str = "fp8",
        update_mode: str = "transactional",
        threads: Optional[int] = None,
        allow_unknown: bool = False,
    ):
        self._core = _core.Engine(os.fspath(model_dir), quant, update_mode, 0 if threads is None else threads,
                                  allow_unknown)
        self.model_dir = os.fspath(model_dir)

    # ----------------------------------------------------------------------------------------------
    # weights

    def begin_update(self, mode: Optional[str] = None) -> WeightUpdate:
        """Starts a weight update (``mode`` overrides the engine's update_mode for this one)."""
        return WeightUpdate(self._core.begin_update(mode))

    def update_weights(self, named_tensors: Union[Iterable[tuple[str, Any]], Mapping[str, Any]],
                       mode: Optional[str] = None) -> UpdateStats:
        """Replaces the weights with ``named_tensors``: (checkpoint name, tensor) pairs in any order,
        e.g. ``model.named_parameters()`` or a safetensors state dict. Each tensor is quantized as it
        arrives, read in place. The update commits after the last one; an error from the engine or
        an exception from the iterator aborts it (transactional mode: the old weights stay served)."""
        if isinstance(named_tensors, Mapping):
            named_tensors = named_tensors.items()
        with self.begin_update(mode) as update:
            for name, tensor in named_tensors:
                update.add(name, tensor)
        assert update.stats is not None
        return update.stats

    def update_weights_from_disk(self, path: Union[str, os.PathLike], mode: Optional[str] = None) -> UpdateStats:
        """Replaces the weights with a safetensors checkpoint directory's."""
        return UpdateStats(**self._core.update_weights_from_disk(os.fspath(path), mode))

    def listen(self, address: str = "tcp://127.0.0.1:0", token: Optional[str] = None) -> Listener:
        """Starts accepting weight updates pushed by another process over a unix socket
        ("unix:/path") or TCP ("tcp://127.0.0.1:PORT", port 0: any free one); see
        qswap.client.push and docs/protocol.md. ``token``: a shared secret senders must present."""
        return Listener(_core.listen(self._core, address, token))

    @property
    def weight_version(self) -> int:
        """Incremented by every committed update (1 after the initial load)."""
        return self._core.weight_version

    @property
    def last_update(self) -> Optional[UpdateStats]:
        stats = self._core.last_update()
        return None if stats is None else UpdateStats(**stats)

    @property
    def config(self) -> dict:
        """The model's architecture and dimensions, and the engine's quant and update_mode."""
        return self._core.config

    # ----------------------------------------------------------------------------------------------
    # text

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text``, with the special tokens the tokenizer adds by default."""
        return self._core.tokenize(text)

    def decode(self, token_ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        return self._core.decode(list(token_ids), skip_special_tokens)

    def generate(
        self,
        prompt: Union[str, Iterable[int]],
        max_tokens: int = 16,
        temperature: float = 0.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int = 0,
        stop: Union[None, str, Iterable[str]] = None,
        logprobs: bool = True,
        ignore_eos: bool = False,
    ) -> GenerateResult:
        """Completes ``prompt`` (text, tokenized as ``tokenize`` does, or token ids). Greedy at
        temperature 0; otherwise seeded sampling with top-k / top-p. Stops at EOS (unless
        ``ignore_eos``), at a stop string (excluded from the text) or after ``max_tokens``."""
        _check_sampling(temperature, top_k, top_p)
        ids = self.tokenize(prompt) if isinstance(prompt, str) else [int(t) for t in prompt]
        stops = [] if stop is None else [stop] if isinstance(stop, str) else list(stop)
        r = self._core.generate(ids, max_tokens, temperature, top_k, top_p, seed, stops, ignore_eos)
        if not logprobs:
            r["logprobs"] = None
        return GenerateResult(**r)

    def perplexity(self, text: Union[str, Iterable[int]], context: Optional[int] = None,
                   stride: Optional[int] = None) -> PerplexityResult:
        """Perplexity of ``text`` (or token ids) over windows of ``context`` tokens (default: the
        model's maximum) advancing by ``stride`` (default: ``context``, non-overlapping)."""
        ids = self.tokenize(text) if isinstance(text, str) else [int(t) for t in text]
        if context is None:
            context = self.config["max_position_embeddings"]
        if stride is None:
            stride = context
        return PerplexityResult(**self._core.perplexity(ids, context, stride))

    def __repr__(self) -> str:
        c = self.config
        return (f"qswap.Engine({self.model_dir!r}, {c['architecture']}, quant={c['quant']!r}, "
                f"update_mode={c['update_mode']!r}, weight_version={self.weight_version})")
