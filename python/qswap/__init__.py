"""qswap: an LLM inference engine for RL rollouts whose weights are quantized online as they
arrive and can be replaced in place at any time.

    import qswap
    engine = qswap.Engine("tests/data/arith-mul", quant="fp8")
    engine.generate("3 4 =", max_tokens=4).text          # ' 12'
    engine.update_weights(model.named_parameters())      # torch tensors, zero-copy
"""

from __future__ import annotations

from . import errors
from ._core import quant_schemes as _quant_schemes
from .engine import Engine, GenerateResult, Listener, PerplexityResult, UpdateStats, WeightUpdate
from .errors import *  # noqa: F401,F403  (QswapError and its subclasses; errors.__all__)

__version__ = "0.1.0"

QUANT_SCHEMES: tuple[str, ...] = tuple(_quant_schemes())  # "none", "fp8", ...

__all__ = [
    "Engine",
    "WeightUpdate",
    "Listener",
    "GenerateResult",
    "PerplexityResult",
    "UpdateStats",
    "QUANT_SCHEMES",
    "errors",
    *errors.__all__,
]


def __getattr__(name: str):
    # qswap.client (the sender, which needs numpy) is imported on first use, not with the package.
    if name == "client":
        import importlib

        return importlib.import_module(".client", __name__)
    raise AttributeError(f"module 'qswap' has no attribute {name!r}")
