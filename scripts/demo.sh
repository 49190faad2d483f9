#!/usr/bin/env bash
# The main job on a demo model: write a small synthetic checkpoint pair, inspect one, then load it
# with FP8 and reload the other into the same kernel tensors.
set -euo pipefail
cd "$(dirname "$0")/.."
qswap=build/cli/qswap
demo=${QSWAP_DEMO_DIR:-build/demo}
[ -f "$demo/a/config.json" ] || $qswap synth --arch qwen3 --preset tiny --seed 1 "$demo/a"
[ -f "$demo/b/config.json" ] || $qswap synth --arch qwen3 --preset tiny --seed 2 "$demo/b"
$qswap inspect "$demo/a"
echo
$qswap reload "$demo/a" --from "$demo/b" --quant fp8 --times 3
