#!/usr/bin/env python3
"""Writes tests/kernels/data/ops_golden.json: torch 2.13 (CPU, f32) outputs of the forward pass's
element-wise ops, the way Hugging Face computes them, for tests/kernels/ops_test.cc.

  rms_norm: transformers' Qwen3RMSNorm / LlamaRMSNorm forward with f32 input, bf16 weight:
            weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))
  silu_mul: torch.nn.functional.silu(gate) * up   (Qwen3MLP: act_fn(gate_proj(x)) * up_proj(x))
  softmax:  torch.softmax(x, dim=-1) in f32       (eager attention)
  log_sum_exp: torch.logsumexp of the f32 rows computed in float64 (the sampler's normaliser; an
            accurate value to hold both the reference and the AVX-512 path to)

Run: python3 tests/kernels/make_ops_golden.py
"""
import json
import math
import os

import torch


def floats(t):
    out = []
    for v in t.reshape(-1).tolist():
        out.append(v if math.isfinite(v) else ("inf" if v > 0 else "-inf") if not math.isnan(v) else "nan")
    return out


def main():
    g = torch.Generator().manual_seed(20240607)
    cases = {}

    m, h, eps = 3, 37, 1e-6
    x = torch.randn(m, h, generator=g, dtype=torch.float32) * torch.tensor([[0.01], [1.0], [30.0]])
    w = (torch.randn(h, generator=g) * 0.5 + 1.0).to(torch.bfloat16)
    hs = x.to(torch.float32)
    var = hs.pow(2).mean(-1, keepdim=True)
    out = w * (hs * torch.rsqrt(var + eps)).to(torch.float32)
    cases["rms_norm"] = {
        "m": m, "h": h, "eps": eps, "x": floats(x),
        "weight_bf16": w.view(torch.int16).to(torch.int32).bitwise_and(0xFFFF).tolist(),
        "out": floats(out),
    }

    n = 53
    gate = torch.linspace(-25.0, 25.0, n) + torch.randn(n, generator=g) * 0.1
    up = torch.randn(n, generator=g) * 3.0
    cases["silu_mul"] = {"n": n, "gate": floats(gate), "up": floats(up),
                         "out": floats(torch.nn.functional.silu(gate) * up)}

    n = 45
    s = torch.randn(n, generator=g) * 8.0
    s[[3, 17, 44]] = float("-inf")  # a causal mask's entries
    cases["softmax"] = {"n": n, "x": floats(s), "out": floats(torch.softmax(s, dim=-1))}

    rows = []
    for n, spread in [(37, 1.0), (300, 8.0), (1100, 1000.0)]:
        x = torch.randn(n, generator=g) * spread
        if n >= 300:
            x[torch.randperm(n, generator=g)[: n // 10]] = float("-inf")  # masked logits
        if spread > 100:
            x[::7] = torch.randn(len(x[::7]), generator=g) * 1e-3  # tiny terms beside huge ones
        rows.append({"n": n, "x": floats(x), "lse": torch.logsumexp(x.to(torch.float64), dim=-1).item()})
    cases["log_sum_exp"] = {"rows": rows}

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "ops_golden.json")
    with open(path, "w") as f:
        json.dump({"generator": "tests/kernels/make_ops_golden.py", "torch": torch.__version__, "cases": cases},
                  f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
