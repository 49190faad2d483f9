#!/usr/bin/env python3
"""Time from the first byte of a weight update to the first token generated with the new weights,
on a synthetic Qwen3-0.6B-shaped checkpoint, for the paths a trainer uses:

  in-process  engine.update_weights(tensors) in the trainer's own process (zero-copy torch tensors)
  socket      qswap.client.push(tensors, address) from a second process into engine.listen(...)
              over a unix socket, with and without per-frame CRC-32

beside the memcpy floor measured in the same run (the update's bf16 bytes copied once, numpy, one
thread: what any path must at least do to bring the bytes into the engine).

    python3 bench/update_latency.py [--quant fp8] [--modes transactional,in-place] [--reps 3]

The clock is CLOCK_MONOTONIC (time.monotonic), shared by both processes of the socket path. Each
value is the best of --reps. Needs the installed package (scripts/install_python.sh) and the CLI
(build/cli/qswap) to write the synthetic checkpoints.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

import qswap

REPO = Path(__file__).resolve().parents[1]

SENDER = textwrap.dedent("""
    import json, pathlib, sys, time
    from safetensors.torch import load_file
    import qswap.client
    ckpt, address, checksum = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    tensors = {}
    for shard in sorted(pathlib.Path(ckpt).glob("*.safetensors")):
        tensors.update(load_file(shard))
    for t in tensors.values():  # resident before timing, as a trainer's weights are
        t.view(-1)[::4096].sum()
    print("ready", flush=True)
    sys.stdin.readline()
    t0 = time.monotonic()
    reply = qswap.client.push(tensors, address, checksum=checksum)
    print(json.dumps({"t0": t0, "reply": reply}), flush=True)
""")


def checkpoint(bench_dir: Path, seed: int) -> Path:
    path = bench_dir / f"qwen3-0.6b-seed{seed}"
    if not (path / "config.json").exists():
        subprocess.run([str(REPO / "build" / "cli" / "qswap"), "synth", "--arch", "qwen3", "--preset", "0.6b",
                        "--seed", str(seed), str(path)], check=True, stdout=subprocess.DEVNULL)
    return path


def load_tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    tensors = {}
    for shard in sorted(path.glob("*.safetensors")):
        tensors.update(load_file(shard))
    return tensors


def memcpy_seconds(nbytes: int, reps: int) -> float:
    src = np.ones(nbytes, dtype=np.uint8)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return best


def first_token(engine: qswap.Engine) -> None:
    engine.generate([1, 2, 3], max_tokens=1, ignore_eos=True)


def in_process(engine: qswap.Engine, sources: list[dict], mode: str, reps: int) -> float:
    best = float("inf")
    for r in range(reps):
        tensors = sources[r % 2]
        t0 = time.monotonic()
        engine.update_weights(tensors.items(), mode=mode)
        first_token(engine)
        best = min(best, time.monotonic() - t0)
    return best


def over_socket(engine: qswap.Engine, ckpts: list[Path], mode: str, checksum: bool, reps: int, tmp: Path) -> float:
    best = float("inf")
    with engine.listen(f"unix:{tmp}/bench.sock") as listener:
        for r in range(reps):
            done = listener.stats()["updates"]
            sender = subprocess.Popen([sys.executable, "-c", SENDER, str(ckpts[r % 2]), listener.address,
                                       "1" if checksum else "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      text=True)
            assert sender.stdout.readline().strip() == "ready"
            sender.stdin.write("go\n")
            sender.stdin.flush()
            while listener.stats()["updates"] == done:  # committed: the next request sees it
                time.sleep(0.0005)
            first_token(engine)
            t1 = time.monotonic()
            out = json.loads(sender.stdout.readline())
            sender.wait(timeout=60)
            assert out["reply"]["ok"], out
            best = min(best, t1 - out["t0"])
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quant", default="fp8")
    parser.add_argument("--modes", default="transactional,in-place")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--dir", default="/tmp/qswap-bench")
    args = parser.parse_args()

    bench_dir = Path(args.dir)
    bench_dir.mkdir(parents=True, exist_ok=True)
    ckpts = [checkpoint(bench_dir, 2), checkpoint(bench_dir, 1)]
    engine = qswap.Engine(ckpts[1], quant=args.quant, threads=args.threads)
    sources = [load_tensors(c) for c in ckpts]
    nbytes = sum(t.numel() * t.element_size() for t in sources[0].values())
    floor = memcpy_seconds(nbytes, args.reps)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.modes.split(","):
            rows.append(("in-process", mode, in_process(engine, sources, mode, args.reps)))
            for checksum in (True, False):
                path = "unix socket" + (" + crc32" if checksum else "")
                rows.append((path, mode, over_socket(engine, ckpts, mode, checksum, args.reps, Path(tmp))))

    print(f"\nQwen3-0.6B-shaped, quant {args.quant}, {nbytes / 1e9:.2f} GB bf16 per update, "
          f"threads {args.threads or os.cpu_count()}, best of {args.reps}")
    print(f"memcpy floor: {floor:.3f} s ({nbytes / floor / 1e9:.1f} GB/s, numpy, 1 thread)\n")
    print("| path | mode | first byte -> first token s | / memcpy floor |")
    print("|---|---|---|---|")
    for path, mode, seconds in rows:
        print(f"| {path} | {mode} | {seconds:.3f} | {seconds / floor:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
