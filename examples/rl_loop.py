#!/usr/bin/env python3
"""A trainer loop feeding a qswap rollout engine, checked against transformers.

The trainer is transformers' Qwen3ForCausalLM (torch, CPU, float32), started from the
tests/data/arith-base checkpoint and fine-tuned toward multiplication on "{a} {b} = {c}" + EOS with
c = a*b (the text format the arith fixtures were trained on). The rollout engine is a qswap.Engine
built on the same directory. After every optimizer step the trainer pushes
``model.named_parameters()`` into the engine as they are (float32 Parameters, zero-copy; the engine
quantizes them online), then both sample greedily from a set of probe prompts "{a} {b} =":

* qswap:        engine.generate(prompt_ids, temperature=0)
* transformers: model.generate(do_sample=False) on the weights the engine was given, rounded to
                bf16 (the engine stores bf16 for quant "none"; quantized schemes start from it)

and the table shows the fraction of probes whose completions agree token for token, and the largest
difference between the engine's logprob of each of its tokens and transformers' log_softmax for it.
Exits 1 unless the completions agree on 100% of the probes at every step for quant "none", or on
>= 95% of all (step, probe) pairs for the quantized schemes: their weights really differ from the
reference's, and early in training, while the model's logits are nearly flat, a near-tie between
two tokens can go either way.

    python3 examples/rl_loop.py                      # quant none, 8 steps, 32 probes
    python3 examples/rl_loop.py --quant fp8 --steps 30 --probes 169
"""

from __future__ import annotations

import argparse
import copy
import random
import sys
from pathlib import Path

import torch

import qswap

REPO = Path(__file__).resolve().parents[1]
OPERANDS = range(13)  # 0..12, as in the arith fixtures


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=REPO / "tests/data/arith-base", help="HF model directory")
    ap.add_argument("--quant", default="none", choices=qswap.QUANT_SCHEMES, help="the engine's scheme")
    ap.add_argument("--steps", type=int, default=8, help="optimizer steps")
    ap.add_argument("--probes", type=int, default=32, help="probe prompts per step (at most 169)")
    ap.add_argument("--max-tokens", type=int, default=4, help="greedy tokens per probe")
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="engine threads (default: all)")
    return ap.parse_args()


def training_batch(engine: qswap.Engine, eos: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every "{a} {b} = {a*b}" + EOS, right-padded with EOS; labels -100 on the padding."""
    seqs = [engine.tokenize(f"{a} {b} = {a * b}") + [eos] for a in OPERANDS for b in OPERANDS]
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), eos, dtype=torch.long)
    labels = torch.full((len(seqs), width), -100, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        labels[i, : len(s)] = torch.tensor(s)
    return ids, labels


@torch.no_grad()
def sync_reference(reference: torch.nn.Module, model: torch.nn.Module) -> None:
    """The reference gets the trainer's weights rounded to bf16, computed in float32."""
    for (name, dst), (_, src) in zip(reference.named_parameters(), model.named_parameters()):
        dst.copy_(src.detach().to(torch.bfloat16).float())


@torch.no_grad()
def compare(engine: qswap.Engine, reference: torch.nn.Module, probes: list[list[int]], eos: int,
            max_tokens: int) -> tuple[int, float]:
    """(probes whose greedy completions agree, max |engine logprob - transformers log_softmax|).
    transformers runs batched over probes of one length, so no padding changes its inputs."""
    agree, max_dlogp = 0, 0.0
    by_length: dict[int, list[list[int]]] = {}
    for prompt in probes:
        by_length.setdefault(len(prompt), []).append(prompt)
    for n, prompts in by_length.items():
        batch = torch.tensor(prompts)
        out = reference.generate(batch, attention_mask=torch.ones_like(batch), max_new_tokens=max_tokens,
                                 do_sample=False,
                                 eos_token_id=eos, pad_token_id=eos)
        got = [engine.generate(prompt, max_tokens=max_tokens) for prompt in prompts]
        # transformers' log_softmax at every position of prompt + the engine's tokens (right-padded:
        # causal attention keeps the padding out of the positions that are read).
        width = n + max(len(g.token_ids) for g in got)
        ids = torch.full((len(prompts), width), eos, dtype=torch.long)
        for i, (prompt, g) in enumerate(zip(prompts, got)):
            ids[i, : n + len(g.token_ids)] = torch.tensor(prompt + g.token_ids)
        logp = torch.log_softmax(reference(input_ids=ids).logits.double(), dim=-1)
        for i, g in enumerate(got):
            want = out[i, n:].tolist()
            if eos in want:
                want = want[: want.index(eos)]
            agree += g.token_ids == want
            for k, (token, lp) in enumerate(zip(g.token_ids, g.logprobs)):
                max_dlogp = max(max_dlogp, abs(lp - logp[i, n - 1 + k, token].item()))
    return agree, max_dlogp


def main() -> int:
    args = parse_args()
    import transformers
    from transformers import Qwen3ForCausalLM

    transformers.utils.logging.disable_progress_bar()

    torch.manual_seed(args.seed)
    model = Qwen3ForCausalLM.from_pretrained(str(args.model), dtype=torch.bfloat16).float()
    reference = copy.deepcopy(model).eval()
    engine = qswap.Engine(args.model, quant=args.quant, threads=args.threads)
    eos = engine.config["eos_token_ids"][0]

    ids, labels = training_batch(engine, eos)
    pairs = [(a, b) for a in OPERANDS for b in OPERANDS]
    random.Random(args.seed).shuffle(pairs)
    probes = [engine.tokenize(f"{a} {b} =") for a, b in pairs[: args.probes]]
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)

    need = 1.0 if args.quant == "none" else 0.95
    print(f"qswap rl_loop: {args.model.name}, quant {args.quant}, {args.steps} steps, {len(probes)} probes, "
          f"{args.max_tokens} greedy tokens each (pass: agreement >= {need:.0%})")
    print(f"{'step':>4} {'loss':>8} {'weight_version':>14} {'agreement':>11} {'max|dlogp|':>10} "
          f"{'update_s':>9} {'tensors':>7} {'MB_in':>6}")
    agreed = compared = 0
    for step in range(args.steps + 1):
        loss_text = "-"
        if step > 0:  # step 0: the checkpoint as loaded from disk
            model.train()
            loss = model(input_ids=ids, labels=labels).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            model.eval()
            loss_text = f"{loss.item():.4f}"
            stats = engine.update_weights(model.named_parameters())
        else:
            stats = engine.last_update
        sync_reference(reference, model)
        agree, max_dlogp = compare(engine, reference, probes, eos, args.max_tokens)
        agreed += agree
        compared += len(probes)
        print(f"{step:>4} {loss_text:>8} {engine.weight_version:>14} {agree:>4}/{len(probes):<3} "
              f"{agree / len(probes):>3.0%} {max_dlogp:>10.2e} {stats.seconds:>9.4f} {stats.tensors:>7} "
              f"{stats.bytes_in / 1e6:>6.2f}")

    sample = engine.generate("7 8 =", max_tokens=args.max_tokens)
    print(f"after {args.steps} steps: '7 8 =' -> {sample.text!r} (weight_version {sample.weight_version})")
    verdict = f"agreement {agreed}/{compared} = {agreed / compared:.1%} (need >= {need:.0%})"
    if agreed < need * compared:
        print(f"FAIL: {verdict}", file=sys.stderr)
        return 1
    print(f"PASS: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
