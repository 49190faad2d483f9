"""Shared fixtures for the tests of the installed `qswap` package (pip install . first).

Expected values come from independent references: transformers' Qwen3ForCausalLM run on the same
checkpoint (logits -> log_softmax in float64), the `tokenizers` library, and the arith fixtures'
known answers ("3 4 =" -> " 12" for arith-mul, " 7" for arith-add; tests/data/README.md).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest
import torch

try:
    import qswap
except ImportError as e:  # the tests exercise the installed package, not the source tree
    raise ImportError("the qswap package is not installed: run `pip install --no-build-isolation .` "
                      "in the repository first") from e

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("QSWAP_TEST_DATA_DIR", REPO / "tests" / "data"))

MUL_ANSWER = " 12"  # "3 4 =" on arith-mul
ADD_ANSWER = " 7"  # "3 4 =" on arith-add


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@functools.lru_cache(maxsize=None)
def _hf_model(name: str):
    from transformers import Qwen3ForCausalLM

    # As the fixture scripts do: the bf16 checkpoint, computed in float32.
    model = Qwen3ForCausalLM.from_pretrained(str(DATA / name), dtype=torch.bfloat16, attn_implementation="eager")
    return model.float().eval()


@pytest.fixture(scope="session")
def hf_model():
    """hf_model(name): transformers' model of a fixture (shared: do not modify it)."""
    torch.set_num_threads(2)
    return _hf_model


@functools.lru_cache(maxsize=None)
def _state_dict(name: str) -> dict:
    from safetensors.torch import load_file

    tensors = {}
    for path in sorted((DATA / name).glob("*.safetensors")):
        tensors.update(load_file(str(path)))
    return tensors


@pytest.fixture(scope="session")
def state_dict():
    """state_dict(name): the fixture's checkpoint tensors as torch bf16 tensors (shared: copy before
    modifying), all shards merged."""
    return _state_dict


@pytest.fixture(scope="session")
def tokenizer():
    """The arith fixtures' tokenizer, through the `tokenizers` library."""
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(DATA / "arith-mul" / "tokenizer.json"))


@pytest.fixture
def mul_engine():
    """arith-mul, fp8, transactional updates."""
    return qswap.Engine(DATA / "arith-mul", quant="fp8")


@torch.no_grad()
def reference_logprobs(model, prompt: list[int], tokens: list[int]) -> list[float]:
    """log p(tokens[i] | prompt + tokens[:i]) from transformers' logits, in float64."""
    ids = torch.tensor([prompt + tokens])
    logp = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1)
    return [logp[len(prompt) - 1 + i, t].item() for i, t in enumerate(tokens)]


def answer(engine: qswap.Engine, prompt: str = "3 4 =") -> str:
    return engine.generate(prompt, max_tokens=6).text
