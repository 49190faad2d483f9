#!/usr/bin/env python3
"""Golden safetensors files for qswap's io tests, made by the reference implementation.

Writes
  tests/data/safetensors/      valid files written by the reference `safetensors` library (and a
                               sharded checkpoint by huggingface_hub), plus manifest.json: every
                               tensor's name, dtype, shape and bytes (hex, from torch, not from the
                               file), each file's metadata and storage order.
  tests/data/malformed/        one file (or model directory) per kind of corruption, plus
                               expected_errors.json: the substring qswap's error must contain, and
                               whether the reference library rejects the same file.
and checks tests/data/safetensors/written_by_qswap.safetensors, a file made by qswap's writer
(tests/io/safetensors_writer_test.cc keeps it byte-identical to the writer's output), against the
reference reader.

Pinned reference versions (any other version is refused):
  python3 -m venv --system-site-packages .venv
  .venv/bin/pip install safetensors==0.8.0 huggingface_hub==2.4.0   # torch 2.13.0 CPU is system-wide
  .venv/bin/python scripts/goldens/make_safetensors_corpus.py
  .venv/bin/python scripts/goldens/make_safetensors_corpus.py --check-only   # verify, write nothing
"""

import argparse
import json
import os
import shutil
import struct
import sys
from pathlib import Path

import huggingface_hub
import safetensors
import torch
from huggingface_hub import save_torch_state_dict, split_torch_state_dict_into_shards
from safetensors import deserialize, safe_open
from safetensors.torch import save_file

PINS = {"safetensors": "0.8.0", "huggingface_hub": "2.4.0", "torch": "2.13.0"}
ROOT = Path(__file__).resolve().parents[2]
VALID = ROOT / "tests/data/safetensors"
MALFORMED = ROOT / "tests/data/malformed"


def check_versions():
    found = {
        "safetensors": safetensors.__version__,
        "huggingface_hub": huggingface_hub.__version__,
        "torch": torch.__version__.split("+")[0],
    }
    if found != PINS:
        sys.exit(f"reference versions {found} differ from the pinned {PINS}")


def raw_bytes(t: torch.Tensor) -> bytes:
    """The little-endian bytes of a tensor, from torch itself (independent of safetensors)."""
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


DTYPE_NAMES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.float8_e4m3fn: "F8_E4M3", torch.float8_e5m2: "F8_E5M2", torch.float8_e8m0fnu: "F8_E8M0",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint64: "U64", torch.uint32: "U32", torch.uint16: "U16", torch.uint8: "U8",
    torch.bool: "BOOL",
}


def describe(tensors: dict) -> dict:
    return {
        name: {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape), "hex": raw_bytes(t).hex()}
        for name, t in tensors.items()
    }


def storage_order(path: Path) -> list:
    """Tensor names of a file sorted by data offset, read from the header with Python's json."""
    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    return sorted(header, key=lambda k: tuple(header[k]["data_offsets"]) + (k,))


# ----------------------------------------------------------------------------- valid files

def all_dtypes() -> dict:
    g = torch.Generator().manual_seed(1234)
    f = torch.randn(64, generator=g) * 3
    return {
        "f64": (torch.arange(6, dtype=torch.float64) * 0.5 - 1).reshape(2, 3),
        "f32": f[:12].reshape(3, 4).clone(),
        "f16": f[12:17].to(torch.float16),
        "bf16": f[17:29].to(torch.bfloat16).reshape(2, 2, 3),
        # Saturating values and NaN included: the bytes are what matters.
        "f8_e4m3": torch.tensor([0.0, -0.0, 1.0, -1.5, 448.0, -448.0, 0.001953125, float("nan")])
        .to(torch.float8_e4m3fn).reshape(2, 4),
        "f8_e5m2": torch.tensor([0.0, 1.0, -2.0, 57344.0, float("inf"), float("-inf"), 1e-5, 3.0])
        .to(torch.float8_e5m2),
        "f8_e8m0": torch.tensor([1.0, 2.0, 0.5, 2.0**-127, 2.0**127, 1024.0]).to(torch.float8_e8m0fnu),
        "i64": torch.tensor([-(2**63), 2**63 - 1, -1], dtype=torch.int64),
        "i32": torch.tensor([[-(2**31), 2**31 - 1], [7, -7]], dtype=torch.int32),
        "i16": torch.tensor([-32768, 32767, 0, 12345], dtype=torch.int16),
        "i8": torch.tensor([-128, 127, 0, -1, 1], dtype=torch.int8),
        "u64": torch.tensor([0, 2**64 - 1], dtype=torch.uint64),
        "u32": torch.tensor([0, 2**32 - 1, 77], dtype=torch.uint32),
        "u16": torch.tensor([0, 65535, 4242], dtype=torch.uint16),
        "u8": torch.arange(250, 257, dtype=torch.int64).remainder(256).to(torch.uint8),
        "bool": torch.tensor([True, False, False, True, True, False]),
    }


def special_shapes() -> dict:
    return {
        "scalar.f32": torch.tensor(3.25, dtype=torch.float32),
        "scalar.bf16": torch.tensor(-2.0, dtype=torch.bfloat16),
        "empty.f32": torch.zeros(0, dtype=torch.float32),
        "empty.3x0x2.bf16": torch.zeros(3, 0, 2, dtype=torch.bfloat16),
        "ones.1x1x1x1.i8": torch.ones(1, 1, 1, 1, dtype=torch.int8),
        "model.layers.0.名前.ü": torch.tensor([1.0, 2.0], dtype=torch.float16),
        'we"ird\\name /with spaces': torch.tensor([5], dtype=torch.uint8),
    }


def byte_exact() -> dict:
    """At most one metadata key, so the file's bytes do not depend on Rust's hash order: the C++
    writer must reproduce them exactly."""
    return {
        "b.bf16": torch.tensor([[1.0, -2.5], [3.0, 0.125]], dtype=torch.bfloat16),
        "a.f32": torch.tensor([0.5, -1.0, 2.0], dtype=torch.float32),
        'name "quoted" \\ back\tslash/ünï': torch.tensor([7, 8, 9], dtype=torch.uint8),
        "scalar": torch.tensor(1.5, dtype=torch.float16),
        "i64": torch.tensor([-1, 1], dtype=torch.int64),
        "zero": torch.zeros(2, 0, dtype=torch.float32),
    }


def quirks_file() -> bytes:
    """Valid per the reference, though no writer makes it: leading whitespace, entries out of
    offset order, unknown fields, `"__metadata__": null`, long whitespace padding."""
    a = struct.pack("<2f", 1.0, -2.0)
    b = struct.pack("<3h", 1, -2, 3)
    header = (
        '  {"b": {"shape": [3], "data_offsets": [8, 14], "dtype": "I16", "extra": {"x": [1, 2]}},'
        ' "__metadata__": null,'
        ' "a": {"dtype": "F32", "unknown": null, "shape": [2], "data_offsets": [0, 8]}}' + " " * 21
    ).encode()
    return struct.pack("<Q", len(header)) + header + a + b


def hf_sharded_state_dict() -> dict:
    g = torch.Generator().manual_seed(99)
    return {
        "model.embed_tokens.weight": torch.randn(16, 8, generator=g).to(torch.bfloat16),  # 256 B
        "model.layers.0.input_layernorm.weight": torch.ones(8, dtype=torch.bfloat16),  # 16 B
        "model.layers.0.self_attn.q_proj.weight": torch.randn(8, 8, generator=g).to(torch.bfloat16),
        "model.layers.0.mlp.down_proj.weight": torch.randn(40, 8, generator=g).to(torch.bfloat16),  # 640 B
        "model.layers.0.mlp.up_proj.weight": torch.randn(8, 16, generator=g).to(torch.bfloat16),
        "model.layers.1.self_attn.q_proj.weight": torch.randn(8, 8, generator=g).to(torch.float32),
        "model.norm.weight": torch.ones(8, dtype=torch.float32),
        "lm_head.weight": torch.randn(4, 8, generator=g).to(torch.float8_e4m3fn),
    }


HF_MAX_SHARD_SIZE = 300

# Byte sizes fed to huggingface_hub's splitter; the C++ planner must split them the same way.
SHARD_PLAN_CASES = [
    ([100, 100, 100], 250),
    ([100, 100, 100], 300),
    ([100, 500, 100, 50], 200),  # the big one gets a shard of its own, placed before the open shard
    ([10, 20, 30, 40, 50], 60),
    ([1000], 10),
    ([5, 5, 5, 5], 10**9),
    ([300, 1, 299, 2], 300),
]


def shard_plans() -> list:
    cases = []
    for sizes, max_size in SHARD_PLAN_CASES:
        sd = {f"t{i}": torch.zeros(s, dtype=torch.uint8) for i, s in enumerate(sizes)}
        split = split_torch_state_dict_into_shards(sd, max_shard_size=max_size)
        plan = [[int(n[1:]) for n in names] for names in split.filename_to_tensors.values()]
        cases.append({"sizes": sizes, "max_shard_bytes": max_size, "plan": plan,
                      "files": list(split.filename_to_tensors)})
    return cases


def make_valid(manifest: dict):
    VALID.mkdir(parents=True, exist_ok=True)
    files = {}

    def save(name, tensors, metadata):
        path = VALID / name
        save_file(tensors, path, metadata=metadata)
        files[name] = {"metadata": metadata or {}, "order": storage_order(path), "tensors": describe(tensors)}

    save("all_dtypes.safetensors", all_dtypes(), {"format": "pt", "origin": "qswap corpus"})
    save("special_shapes.safetensors", special_shapes(),
         {"format": "pt", "note": "ünïcødé \"quoted\"\nnew line"})
    save("byte_exact.safetensors", byte_exact(), {"format": "pt"})
    save("empty.safetensors", {}, None)
    save("metadata_only.safetensors", {}, {"only": "metadata"})

    (VALID / "quirks.safetensors").write_bytes(quirks_file())
    quirks = {"a": torch.tensor([1.0, -2.0]), "b": torch.tensor([1, -2, 3], dtype=torch.int16)}
    files["quirks.safetensors"] = {"metadata": {}, "order": ["a", "b"], "tensors": describe(quirks)}

    # A sharded checkpoint exactly as huggingface_hub (and so transformers) writes one.
    shard_dir = VALID / "sharded_hf"
    shutil.rmtree(shard_dir, ignore_errors=True)
    shard_dir.mkdir()
    sd = hf_sharded_state_dict()
    save_torch_state_dict(sd, shard_dir, max_shard_size=HF_MAX_SHARD_SIZE)
    index = json.loads((shard_dir / "model.safetensors.index.json").read_text())
    shard_files = sorted(set(index["weight_map"].values()))
    order = [n for f in shard_files for n in storage_order(shard_dir / f)]
    files["sharded_hf"] = {
        # qswap's merge rule: the index's metadata (as strings), then the shards' __metadata__.
        "metadata": {**{k: str(v) for k, v in index["metadata"].items()}, "format": "pt"},
        "order": order,
        "tensors": describe(sd),
        "shards": {f: storage_order(shard_dir / f) for f in shard_files},
        "max_shard_bytes": HF_MAX_SHARD_SIZE,
        "declaration_order": list(sd),
    }
    # The index transformers' save_pretrained would write for the same split
    # (modeling_utils.py: json.dumps(index, indent=2, sort_keys=True) + "\n").
    transformers_index = {
        "metadata": {"total_parameters": sum(t.numel() for t in sd.values()),
                     "total_size": index["metadata"]["total_size"]},
        "weight_map": index["weight_map"],
    }
    (VALID / "sharded_hf_transformers_index.json").write_text(
        json.dumps(transformers_index, indent=2, sort_keys=True) + "\n")

    manifest["files"] = files
    manifest["shard_plans"] = shard_plans()


# ------------------------------------------------------ the file written by qswap's writer

def qswap_written_tensors() -> list:
    """Mirror of kWrittenTensors in tests/io/safetensors_writer_test.cc: byte i of tensor k is
    (37 * k + 11 * i + 5) % 256, in declaration order."""
    decls = [
        ("z.first.u8", "U8", [0]),
        ("blk.0.w", "F32", [2, 3]),
        ("blk.0.b", "BF16", [3, 1]),
        ("fp8.e4m3", "F8_E4M3", [5]),
        ("scale.e8m0", "F8_E8M0", [3]),
        ("ids", "I64", [2]),
        ("scalar", "F16", []),
        ("mask", "U8", [4]),
    ]
    size = {"U8": 1, "F32": 4, "BF16": 2, "F8_E4M3": 1, "F8_E8M0": 1, "I64": 8, "F16": 2}
    out = []
    for k, (name, dtype, shape) in enumerate(decls):
        n = size[dtype]
        for d in shape:
            n *= d
        out.append((name, dtype, shape, bytes((37 * k + 11 * i + 5) % 256 for i in range(n))))
    return out


QSWAP_WRITTEN_METADATA = {"format": "pt", "writer": "qswap"}


def check_qswap_written():
    path = VALID / "written_by_qswap.safetensors"
    if not path.exists():
        print(f"note: {path} is missing; run the C++ writer test to produce it, then re-run --check-only")
        return
    data = path.read_bytes()
    got = {name: view for name, view in deserialize(data)}  # the reference's full validation
    want = qswap_written_tensors()
    assert set(got) == {w[0] for w in want}, sorted(got)
    for name, dtype, shape, raw in want:
        view = got[name]
        assert view["dtype"] == dtype and list(view["shape"]) == shape, (name, view["dtype"], view["shape"])
        assert bytes(view["data"]) == raw, name
    with safe_open(path, framework="pt") as f:
        assert f.metadata() == QSWAP_WRITTEN_METADATA, f.metadata()
        assert torch.equal(f.get_tensor("blk.0.w").view(torch.uint8).flatten(),
                           torch.tensor(list(want[1][3]), dtype=torch.uint8))
    print(f"ok: {path.name} loads in safetensors {safetensors.__version__} with the expected content")


# ----------------------------------------------------------------------------- malformed files

def st(header, data=b"", n=None) -> bytes:
    """A safetensors image: `header` is a dict (dumped compactly), str or bytes."""
    if isinstance(header, dict):
        header = json.dumps(header, separators=(",", ":"))
    if isinstance(header, str):
        header = header.encode()
    return struct.pack("<Q", len(header) if n is None else n) + header + data


def entry(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


A8 = struct.pack("<2f", 1.0, 2.0)
OK_HEADER = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'


def single_file_cases() -> dict:
    """name -> (bytes, substring of qswap's error)."""
    deep = "[" * 200 + "]" * 200
    return {
        "truncated_empty.safetensors": (b"", "too short for the 8-byte header length"),
        "truncated_7_bytes.safetensors": (b"\x10\x00\x00\x00\x00\x00\x00", "too short for the 8-byte"),
        "header_len_past_eof.safetensors": (st("{}", n=1000), "runs past the end of the 10-byte file"),
        "header_len_absurd.safetensors": (st(OK_HEADER, A8, n=100_000_001), "exceeds the 100000000-byte limit"),
        "header_len_u64_max.safetensors": (st(OK_HEADER, A8, n=2**64 - 1), "exceeds the 100000000-byte limit"),
        "header_len_zero.safetensors": (st(b"", A8), "invalid JSON"),
        "header_len_short.safetensors": (st(OK_HEADER, A8, n=len(OK_HEADER) - 3), "invalid JSON"),
        "header_not_utf8.safetensors": (st(b'{"a\xff":1}'), "not valid UTF-8 (byte 0xff at offset 3)"),
        "header_utf8_surrogate.safetensors": (st(b'{"\xed\xa0\x80":1}'), "not valid UTF-8"),
        "header_utf8_overlong.safetensors": (st(b'{"\xc0\xaf":1}'), "not valid UTF-8"),
        "header_utf8_truncated.safetensors": (st(b'{"a":1}\xe2\x82'), "not valid UTF-8"),
        "header_bom.safetensors": (st(b"\xef\xbb\xbf" + OK_HEADER.encode(), A8), "byte-order mark"),
        "header_not_json.safetensors": (st('{"a": '), "invalid JSON"),
        "header_trailing_garbage.safetensors": (st('{} xyz'), "invalid JSON"),
        "header_nul_padding.safetensors": (st(OK_HEADER + "\0\0\0\0\0\0", A8), "NUL byte at offset 54"),
        "header_nul_then_garbage.safetensors": (st(OK_HEADER + "\0garbage", A8), "NUL byte"),
        "header_lone_surrogate_escape.safetensors": (
            st('{"\\ud800":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', A8), "invalid JSON"),
        "header_control_char.safetensors": (
            st('{"a\x01":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', A8), "invalid JSON"),
        "header_single_quotes.safetensors": (st("{'a': 1}"), "invalid JSON"),
        "header_is_array.safetensors": (st("[]"), "header is a JSON array, not an object"),
        "header_is_string.safetensors": (st('"abc"'), "header is a JSON string, not an object"),
        "header_deep_nesting.safetensors": (
            st('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":' + deep + "}}", A8),
            "nested deeper than 64 levels"),
        "entry_not_object.safetensors": (st('{"a":5}'), "tensor 'a': entry is a JSON integer, not an object"),
        "entry_is_array.safetensors": (st('{"a":["F32",[2],[0,8]]}', A8), "entry is a JSON array"),
        "missing_dtype.safetensors": (st('{"a":{"shape":[2],"data_offsets":[0,8]}}', A8), "missing field 'dtype'"),
        "missing_shape.safetensors": (st('{"a":{"dtype":"F32","data_offsets":[0,8]}}', A8), "missing field 'shape'"),
        "missing_data_offsets.safetensors": (st('{"a":{"dtype":"F32","shape":[2]}}', A8),
                                             "missing field 'data_offsets'"),
        "dtype_not_string.safetensors": (st({"a": entry(dtype=4)}, A8), "dtype is a JSON integer, not a string"),
        "dtype_unknown.safetensors": (st({"a": entry(dtype="F33")}, A8), "unknown dtype 'F33'"),
        "dtype_lowercase.safetensors": (st({"a": entry(dtype="f32")}, A8), "unknown dtype 'f32'"),
        "dtype_unsupported_f4.safetensors": (st({"a": entry(dtype="F4", shape=(4,), offsets=(0, 2))}, b"\x12\x34"),
                                             "dtype F4 is valid safetensors but not supported by qswap"),
        "dtype_unsupported_c64.safetensors": (st({"a": entry(dtype="C64", shape=(1,))}, A8),
                                              "dtype C64 is valid safetensors but not supported"),
        "shape_not_array.safetensors": (st('{"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}}', A8),
                                        "shape is a JSON integer, not an array"),
        "shape_negative_dim.safetensors": (st({"a": entry(shape=(-2,))}, A8), "shape dimension '-2'"),
        "shape_float_dim.safetensors": (st({"a": entry(shape=(2.0,))}, A8), "shape dimension '2.0'"),
        "shape_string_dim.safetensors": (st({"a": entry(shape=("2",))}, A8), "is not an integer in [0, 2^63)"),
        "shape_dim_2pow63.safetensors": (st({"a": entry(shape=(2**63,))}, A8), "is not an integer in [0, 2^63)"),
        "shape_dim_past_u64.safetensors": (st({"a": entry(shape=(2**64,))}, A8), "is not an integer"),
        "shape_numel_overflow.safetensors": (st({"a": entry(shape=(2**32, 2**32, 2))}, A8),
                                             "has more elements than fit in 64 bits"),
        "shape_bytes_overflow.safetensors": (st({"a": entry(shape=(2**62,))}, A8),
                                             "is more bytes than fit in 64 bits"),
        "shape_huge_plausible.safetensors": (st({"a": entry(shape=(2**20, 2**20))}, A8),
                                             "F32 [1048576, 1048576] needs 4398046511104 bytes"),
        "shape_huge_offsets_past_buffer.safetensors": (
            st({"a": entry(shape=(2**20, 2**20), offsets=(0, 2**42))}, A8),
            "data_offsets [0, 4398046511104] run past the end of the 8-byte data buffer"),
        "offsets_not_array.safetensors": (st('{"a":{"dtype":"F32","shape":[2],"data_offsets":8}}', A8),
                                          "data_offsets '8' is not a pair"),
        "offsets_one_element.safetensors": (st({"a": entry(offsets=(8,))}, A8), "is not a pair"),
        "offsets_three_elements.safetensors": (st({"a": entry(offsets=(0, 8, 8))}, A8), "is not a pair"),
        "offsets_negative.safetensors": (st({"a": entry(offsets=(-8, 0))}, A8), "is not a pair of non-negative"),
        "offsets_negative_zero.safetensors": (st('{"a":{"dtype":"F32","shape":[2],"data_offsets":[-0,8]}}', A8),
                                              "is not a pair"),
        "offsets_float.safetensors": (st({"a": entry(offsets=(0, 8.0))}, A8), "is not a pair"),
        "offsets_strings.safetensors": (st({"a": entry(offsets=("0", "8"))}, A8), "is not a pair"),
        "offsets_past_u64.safetensors": (st({"a": entry(offsets=(0, 2**64))}, A8), "is not a pair"),
        "offsets_reversed.safetensors": (st({"a": entry(offsets=(8, 0))}, A8), "data_offsets [8, 0] end before"),
        "offsets_past_buffer.safetensors": (st({"a": entry(shape=(4,), offsets=(0, 16))}, A8),
                                            "data_offsets [0, 16] run past the end of the 8-byte data buffer"),
        "offsets_u64_max.safetensors": (st({"a": entry(shape=(2,), offsets=(2**64 - 8, 2**64 - 1))}, A8),
                                        "run past the end"),
        "offsets_size_mismatch.safetensors": (st({"a": entry(shape=(2, 3), offsets=(0, 20))}, bytes(20)),
                                              "has data_offsets [0, 20] (20 bytes) but F32 [2, 3] needs 24 bytes"),
        "offsets_size_mismatch_zero.safetensors": (st({"a": entry(shape=(0,), offsets=(0, 8))}, A8),
                                                   "needs 0 bytes"),
        "tensors_overlap.safetensors": (st({"a": entry(offsets=(0, 8)), "b": entry(offsets=(4, 12))}, bytes(12)),
                                        "tensor 'b' (data_offsets [4, 12]) overlaps tensor 'a'"),
        "tensors_same_offsets.safetensors": (st({"a": entry(), "b": entry()}, A8), "overlaps"),
        "tensors_hole.safetensors": (st({"a": entry(offsets=(0, 8)), "b": entry(offsets=(12, 20))}, bytes(20)),
                                     "bytes [8, 12) before tensor 'b' belong to no tensor"),
        "tensors_hole_at_start.safetensors": (st({"a": entry(offsets=(4, 12))}, bytes(12)),
                                              "bytes [0, 4) before tensor 'a'"),
        "trailing_bytes.safetensors": (st({"a": entry()}, A8 + b"\0\0\0\0"), "4 trailing bytes"),
        "no_tensors_trailing_bytes.safetensors": (st("{}", b"\0\0\0\0\0\0\0\0\0"), "9 trailing bytes"),
        "duplicate_tensor_name.safetensors": (st(f'{{"a":{json.dumps(entry())},"a":{json.dumps(entry())}}}', A8),
                                              "duplicate key 'a'"),
        "duplicate_field.safetensors": (
            st('{"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}}', A8),
            "duplicate key 'dtype' in '/a'"),
        "duplicate_metadata_key.safetensors": (
            st('{"__metadata__":{"k":"v","k":"w"},' + OK_HEADER[1:], A8), "duplicate key 'k' in '/__metadata__'"),
        "metadata_not_object.safetensors": (st({"__metadata__": 5, "a": entry()}, A8),
                                            "__metadata__ is a JSON integer, not an object of strings"),
        "metadata_is_array.safetensors": (st({"__metadata__": ["a"], "a": entry()}, A8),
                                          "__metadata__ is a JSON array"),
        "metadata_value_integer.safetensors": (st({"__metadata__": {"k": 1}, "a": entry()}, A8),
                                               "__metadata__ value of 'k' is a JSON integer, not a string"),
        "metadata_value_object.safetensors": (st({"__metadata__": {"k": {"x": "y"}}, "a": entry()}, A8),
                                              "__metadata__ value of 'k' is a JSON object"),
        "metadata_value_null.safetensors": (st({"__metadata__": {"k": None}, "a": entry()}, A8),
                                            "__metadata__ value of 'k' is a JSON null"),
        "metadata_as_tensor.safetensors": (st({"__metadata__": entry()}, A8), "__metadata__ value of 'data_offsets'"),
    }


def write_shard(path: Path, tensors: dict):
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, path, metadata={"format": "pt"})


def index_cases() -> dict:
    """name -> (function that fills the directory, substring of qswap's error)."""
    a = {"a": torch.tensor([1.0, 2.0])}
    b = {"b": torch.tensor([3, 4], dtype=torch.int32)}
    two_shards = {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}

    def layout(weight_map, shards=None, index_text=None):
        def fill(d: Path):
            for name, tensors in (shards or {"model-00001-of-00002.safetensors": a,
                                             "model-00002-of-00002.safetensors": b}).items():
                write_shard(d / name, tensors)
            text = index_text if index_text is not None else json.dumps(
                {"metadata": {"total_size": 16}, "weight_map": weight_map}, indent=2)
            (d / "model.safetensors.index.json").write_text(text)
        return fill

    def no_safetensors(d: Path):
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.json").write_text("{}\n")

    def glob_duplicate(d: Path):
        write_shard(d / "part-a.safetensors", a)
        write_shard(d / "part-b.safetensors", {"a": torch.tensor([5.0, 6.0]), **b})

    def bad_shard(d: Path):
        layout(two_shards)(d)
        (d / "model-00002-of-00002.safetensors").write_bytes(st("{", b""))

    return {
        "index_not_json": (layout(None, index_text='{"weight_map": {'), "invalid JSON"),
        "index_not_object": (layout(None, index_text="[]"), "index is a JSON array, not an object"),
        "index_missing_weight_map": (layout(None, index_text='{"metadata": {}}'), "no 'weight_map'"),
        "index_weight_map_not_object": (layout(None, index_text='{"weight_map": []}'),
                                        "'weight_map' is a JSON array, not an object"),
        "index_weight_map_value_not_string": (layout({"a": 1, "b": two_shards["b"]}),
                                              "weight_map value of 'a' is a JSON integer"),
        "index_metadata_not_object": (
            layout(None, index_text=json.dumps({"metadata": 3, "weight_map": two_shards})),
            "'metadata' is a JSON integer, not an object"),
        "index_duplicate_tensor": (
            layout(None, index_text='{"weight_map": {"a": "model-00001-of-00002.safetensors", '
                                    '"a": "model-00002-of-00002.safetensors"}}'),
            "duplicate key 'a' in '/weight_map'"),
        "index_shard_missing": (layout({**two_shards, "c": "model-00003-of-00003.safetensors"}),
                                "shard 'model-00003-of-00003.safetensors': cannot open"),
        "index_shard_escapes_dir": (layout({**two_shards, "b": "../model-00002-of-00002.safetensors"}),
                                    "leaves the checkpoint directory"),
        "index_shard_escapes_dir_nested": (layout({**two_shards, "b": "sub/../../x.safetensors"}),
                                           "leaves the checkpoint directory"),
        "index_shard_absolute": (layout({**two_shards, "b": "/etc/hostname"}), "maps to absolute path"),
        "index_shard_empty_name": (layout({**two_shards, "b": ""}), "maps to an empty shard name"),
        "index_tensor_absent_from_shard": (layout({**two_shards, "c": two_shards["b"]}),
                                           "index maps tensor 'c' to shard 'model-00002-of-00002.safetensors', "
                                           "which has no such tensor"),
        "index_tensor_in_other_shard": (layout({"a": two_shards["b"], "b": two_shards["a"]}),
                                        "shard 'model-00001-of-00002.safetensors' holds tensor 'a', "
                                        "but the index maps it to 'model-00002-of-00002.safetensors'"),
        "index_tensor_not_listed": (layout({"a": two_shards["a"]},
                                           shards={"model-00001-of-00002.safetensors": {**a, **b}}),
                                    "holds tensor 'b', which the index does not list"),
        "index_shard_malformed": (bad_shard, "shard 'model-00002-of-00002.safetensors': "),
        "dir_no_safetensors": (no_safetensors, "no model.safetensors.index.json, model.safetensors or "
                                               "*.safetensors file"),
        "dir_glob_duplicate_tensor": (glob_duplicate, "tensor 'a' appears twice (in part-a.safetensors and in "
                                                      "part-b.safetensors)"),
    }


def reference_verdict(data: bytes) -> str:
    try:
        deserialize(data)
        return "accepts"
    except Exception:  # noqa: BLE001 - any refusal counts
        return "rejects"


def make_malformed():
    expected = {}
    MALFORMED.mkdir(parents=True, exist_ok=True)
    for name, (data, error) in single_file_cases().items():
        (MALFORMED / name).write_bytes(data)
        expected[name] = {"error": error, "reference": reference_verdict(data)}
    for name, (fill, error) in index_cases().items():
        d = MALFORMED / name
        shutil.rmtree(d, ignore_errors=True)
        fill(d)
        expected[name] = {"error": error, "reference": None}
    return expected


# ----------------------------------------------------------------------------- main

def write_json(path: Path, obj):
    path.write_text(json.dumps(obj, indent=1, ensure_ascii=False, sort_keys=True) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check-only", action="store_true", help="verify written_by_qswap.safetensors only")
    args = parser.parse_args()
    check_versions()
    if not args.check_only:
        manifest = {"generator": dict(PINS, script="scripts/goldens/make_safetensors_corpus.py")}
        make_valid(manifest)
        write_json(VALID / "manifest.json", manifest)
        expected = make_malformed()
        write_json(MALFORMED / "expected_errors.json", expected)
        accepted = sorted(k for k, v in expected.items() if v["reference"] == "accepts")
        print(f"wrote {len(manifest['files'])} valid files and {len(expected)} malformed cases; "
              f"the reference accepts {accepted}")
    check_qswap_written()


if __name__ == "__main__":
    main()
