#!/usr/bin/env python3
# Golden values for the f32 <-> bf16/f16/e4m3/e5m2/e8m0 conversions (src/qswap/tensor/convert.h),
# taken from PyTorch 2.13.0 (CPU), the independent reference.
#
# Command (from the repository root; deterministic, rewrites tests/data/dtype/*.bin):
#   python3 scripts/goldens/make_dtype_goldens.py --out tests/data/dtype
#
# Files (all little-endian):
#   decode_<fmt>.bin   for fmt in e4m3, e5m2, e8m0 (256 codes) and bf16, f16 (65536 codes):
#                      u32 f32-bits[code], i.e. torch's `codes.view(dtype).float()`.
#   encode_<fmt>.bin   u32 n; u32 f32-bits[n] (inputs); then n outputs, u8 (e4m3, e5m2, e8m0) or
#                      u16 (bf16, f16): torch's `inputs.to(dtype)` viewed as raw codes.
#
# Saturation: qswap's e4m3 and e5m2 encoders saturate (finite overflow and +-inf give +-max; DESIGN.md)
# while torch's plain cast does not always (e5m2 overflows to inf). The e4m3/e5m2 goldens are
# therefore torch's cast of `where(isnan(x), x, clamp(x, -max, max))`: clamped first, NaN left alone.
#
# Cross-check: every bf16/f16/e4m3/e5m2 golden is also recomputed here with exact rational
# arithmetic (fractions.Fraction, round half to even) and the script fails if torch disagrees,
# so a bug in one reference cannot slip into the goldens. e8m0 has no IEEE rounding rule: torch's
# cast is the definition (see f32_to_e8m0 in convert.h), checked against a bit-level model below.
import argparse
import math
import os
import struct
import sys
from fractions import Fraction

import numpy as np
import torch

SEED = 20260511

# name -> (torch dtype, mantissa bits, exponent bias, max finite, saturating, code bytes)
FORMATS = {
    "bf16": (torch.bfloat16, 7, 127, None, False, 2),
    "f16": (torch.float16, 10, 15, None, False, 2),
    "e4m3": (torch.float8_e4m3fn, 3, 7, 448.0, True, 1),
    "e5m2": (torch.float8_e5m2, 2, 15, 57344.0, True, 1),
    "e8m0": (torch.float8_e8m0fnu, None, None, None, False, 1),
}

NAN_BITS = [0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7FBFFFFF, 0xFFBFFFFF, 0x7FFFFFFF,
            0xFFFFFFFF, 0x7FA00000, 0x7FC00001, 0x7F802000, 0xFFE00000]
SPECIAL_BITS = [0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x00000001, 0x80000001,
                0x007FFFFF, 0x807FFFFF, 0x00800000, 0x80800000, 0x7F7FFFFF, 0xFF7FFFFF,
                0x3F800000, 0xBF800000] + NAN_BITS


def f32_bits(values):
    return np.asarray(values, dtype=np.float64).astype(np.float32).view(np.uint32)


def from_bits(bits):
    return np.asarray(bits, dtype=np.uint32).view(np.float32)


def neighbours(bits):
    """bits, and the f32 one ulp below and above in magnitude (same sign)."""
    bits = np.asarray(bits, dtype=np.uint32)
    mag = bits & 0x7FFFFFFF
    sign = bits & 0x80000000
    out = [bits]
    up = mag + 1
    out.append(sign | np.where(up <= 0x7F800000, up, mag).astype(np.uint32))
    down = np.where(mag > 0, mag - 1, mag).astype(np.uint32)
    out.append(sign | down)
    return np.concatenate(out)


def with_both_signs(bits):
    bits = np.asarray(bits, dtype=np.uint32)
    return np.concatenate([bits & 0x7FFFFFFF, (bits & 0x7FFFFFFF) | 0x80000000])


def torch_decode(name):
    dtype = FORMATS[name][0]
    n = 256 if FORMATS[name][5] == 1 else 65536
    if n == 256:
        codes = torch.arange(256, dtype=torch.uint8)
    else:
        codes = torch.from_numpy(np.arange(n, dtype=np.uint16).view(np.int16))
    return codes.view(dtype).float().numpy().view(np.uint32).copy()


def torch_encode(name, bits):
    dtype, _, _, max_finite, saturating, size = FORMATS[name]
    x = torch.from_numpy(from_bits(bits).copy())
    if saturating:
        x = torch.where(x.isnan(), x, x.clamp(-max_finite, max_finite))
    y = x.to(dtype)
    if size == 1:
        return y.view(torch.uint8).numpy().copy()
    return y.view(torch.int16).numpy().view(np.uint16).copy()


def random_bits(rng, count, min_exp, max_exp):
    """f32 bits with a biased exponent uniform in [min_exp, max_exp] and a random mantissa/sign."""
    exps = rng.integers(min_exp, max_exp + 1, size=count, dtype=np.uint32)
    mants = rng.integers(0, 1 << 23, size=count, dtype=np.uint32)
    signs = rng.integers(0, 2, size=count, dtype=np.uint32) << 31
    return (signs | (exps << 23) | mants).astype(np.uint32)


def boundary_inputs(name, decoded, code_sample):
    """Values of codes, midpoints between adjacent codes, each +-1 ulp, both signs."""
    vals = from_bits(decoded).astype(np.float64)
    finite = np.sort(np.unique(np.abs(vals[np.isfinite(vals)])))
    pos = finite[code_sample] if code_sample is not None else finite
    idx = np.searchsorted(finite, pos)
    has_next = idx + 1 < len(finite)
    mids = (pos[has_next] + finite[idx[has_next] + 1]) / 2
    mids32 = mids.astype(np.float32)
    assert np.all(mids32.astype(np.float64) == mids), f"{name}: midpoint not exact in f32"
    # The midpoint past the largest finite value (overflow / saturation threshold): max + q/2.
    top = finite[-1]
    quantum = top - finite[-2]
    extra = [top + quantum / 2, top + quantum, 2 * top, top * 1.5]
    parts = [f32_bits(pos), mids32.view(np.uint32), f32_bits(extra)]
    return with_both_signs(neighbours(np.concatenate(parts)))


def e8m0_inputs(rng):
    k = np.arange(-149, 128)
    pow2 = f32_bits(np.ldexp(1.0, k))
    ties = f32_bits(np.ldexp(1.5, k[k <= 126]))  # exact midpoints in the mantissa
    three_q = f32_bits(np.ldexp(1.75, k[k <= 126]))
    sub = np.array([0x400000, 0x400001, 0x3FFFFF, 0x600000, 0x200000, 0x7FFFFF, 0x1, 0x2, 0x500000],
                   dtype=np.uint32)
    top = np.array([0x7F000000, 0x7F3FFFFF, 0x7F400000, 0x7F400001, 0x7F7FFFFF, 0x7E800000, 0x7EC00000,
                    0x7EBFFFFF], dtype=np.uint32)
    base = np.concatenate([pow2, ties, three_q, sub, top])
    return np.concatenate([with_both_signs(neighbours(base)),
                           rng.integers(0, 1 << 32, size=3000, dtype=np.uint32)])


def build_inputs(name, decoded, rng):
    if name == "e8m0":
        bits = e8m0_inputs(rng)
    else:
        _, mant, bias, _, _, size = FORMATS[name]
        sample = None
        if size == 2:
            # All codes near zero (subnormals), the first normal binade and the top binade, plus a
            # random sample of the rest: the rounding rule is the same in every other binade.
            per_binade = 1 << mant
            count = int(np.count_nonzero(np.isfinite(from_bits(decoded)))) // 2
            low = np.arange(0, min(3 * per_binade, count))
            high = np.arange(max(count - per_binade - 1, 0), count)
            mid = rng.integers(0, count, size=2000)
            sample = np.unique(np.concatenate([low, high, mid]))
        bits = boundary_inputs(name, decoded, sample)
        min_exp = max(1, 127 - bias - mant - 4)
        max_exp = min(254, 127 + (bias + 2))
        bits = np.concatenate([bits, random_bits(rng, 4000, min_exp, max_exp),
                               random_bits(rng, 1000, 1, 254),
                               rng.integers(0, 1 << 32, size=1000, dtype=np.uint32)])
        # Below half the smallest subnormal, and the tie at exactly half of it.
        min_sub = math.ldexp(1.0, 1 - bias - mant)
        bits = np.concatenate([bits, with_both_signs(neighbours(f32_bits([min_sub / 2, min_sub / 4,
                                                                          min_sub * 0.75])))])
    bits = np.concatenate([bits, np.array(SPECIAL_BITS, dtype=np.uint32)])
    _, first = np.unique(bits, return_index=True)
    return bits[np.sort(first)].astype(np.uint32)


# ---- independent cross-check with exact rationals ----

def exact_round(x, mant, bias, max_finite):
    """Round a finite float to the format; returns the float value (inf on overflow)."""
    if x == 0:
        return x
    sign = -1.0 if x < 0 else 1.0
    if math.isinf(x):
        return sign * (math.inf if max_finite is None else max_finite)
    a = Fraction(abs(x))
    if max_finite is not None and a > Fraction(max_finite):
        a = Fraction(max_finite)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    e = max(e, 1 - bias)
    quantum = Fraction(2) ** (e - mant)
    q = round(a / quantum)  # Fraction.__round__ is half-to-even
    r = q * quantum
    # IEEE-like formats (bias = 2^(E-1) - 1) have a largest exponent of `bias`.
    if max_finite is None and r >= Fraction(2) ** (bias + 1):
        return sign * math.inf
    return sign * float(r)


def cross_check(name, inputs, outputs, decoded):
    _, mant, bias, max_finite, _, _ = FORMATS[name]
    vals = from_bits(decoded)
    xs = from_bits(inputs)
    bad = 0
    for x, code in zip(xs.tolist(), outputs.tolist()):
        got = float(vals[code])
        if math.isnan(x):
            ok = math.isnan(got)
        else:
            want = exact_round(x, mant, bias, max_finite)
            ok = got == want and math.copysign(1, got) == math.copysign(1, want)
        if not ok:
            bad += 1
            if bad < 10:
                print(f"{name}: torch gives {got!r} for {x!r}, exact rounding says otherwise",
                      file=sys.stderr)
    if bad:
        raise SystemExit(f"{name}: {bad} disagreements between torch and exact rounding")


def e8m0_model(bits):
    """torch's f32 -> e8m0 rule, restated: sign ignored; NaN/inf -> 0xFF; the biased exponent, plus
    one when the mantissa is >= half (normal inputs) or > half (subnormal inputs); 254 + 1 = 0xFF."""
    exp = (bits >> 23) & 0xFF
    mant = bits & 0x7FFFFF
    up = np.where(exp > 0, mant >= 0x400000, mant > 0x400000)
    return np.where(exp == 0xFF, 0xFF, exp + up).astype(np.uint8)


def write_decode(out_dir, name, decoded):
    with open(os.path.join(out_dir, f"decode_{name}.bin"), "wb") as f:
        f.write(decoded.astype("<u4").tobytes())


def write_encode(out_dir, name, inputs, outputs):
    with open(os.path.join(out_dir, f"encode_{name}.bin"), "wb") as f:
        f.write(struct.pack("<I", len(inputs)))
        f.write(inputs.astype("<u4").tobytes())
        f.write(outputs.astype("<u1" if FORMATS[name][5] == 1 else "<u2").tobytes())


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                      "tests", "data", "dtype"))
    args = parser.parse_args()
    assert torch.__version__.startswith("2.13."), f"expected torch 2.13, got {torch.__version__}"
    torch.manual_seed(SEED)
    np.seterr(over="ignore", invalid="ignore")  # inf and NaN inputs are made on purpose
    rng = np.random.default_rng(SEED)
    os.makedirs(args.out, exist_ok=True)
    total = 0
    for name in FORMATS:
        decoded = torch_decode(name)
        inputs = build_inputs(name, decoded, rng)
        outputs = torch_encode(name, inputs)
        if name == "e8m0":
            assert np.array_equal(outputs, e8m0_model(inputs)), "e8m0: torch differs from the model"
        else:
            cross_check(name, inputs, outputs, decoded)
        write_decode(args.out, name, decoded)
        write_encode(args.out, name, inputs, outputs)
        size = decoded.nbytes + 4 + inputs.nbytes + outputs.nbytes
        total += size
        print(f"{name}: {len(decoded)} codes decoded, {len(inputs)} inputs encoded, {size} bytes")
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
