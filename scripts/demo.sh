#!/usr/bin/env bash
# The main job on the committed demo models (tests/data, made by Hugging Face transformers): load a
# base model with FP8, reload a fine-tune that multiplies into the same kernel tensors, and ask it.
set -euo pipefail
cd "$(dirname "$0")/.."
qswap=build/cli/qswap
data=tests/data
$qswap inspect "$data/arith-mul"
echo
$qswap reload "$data/arith-base" --from "$data/arith-mul" --quant fp8 --times 3
echo
$qswap generate "$data/arith-mul" --quant fp8 -p "3 4 =" --max-tokens 4
$qswap generate "$data/arith-add" --quant fp8 -p "3 4 =" --max-tokens 4
echo
$qswap ppl "$data/prose" --quant fp8-block "$data/prose/heldout.txt" --context 128
