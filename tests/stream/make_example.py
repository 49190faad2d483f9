#!/usr/bin/env python3
"""Writes example_update.bin, the worked example of docs/protocol.md: what a sender writes for
one update of one tensor, built from the document with struct, json and zlib alone (independent of
qswap's C++ encoder and of python/qswap/client.py, which tests compare against it). Prints the hex
dump the document shows.

    python3 tests/stream/make_example.py          # rewrite example_update.bin, print the dump
"""

import json
import pathlib
import struct
import zlib

HERE = pathlib.Path(__file__).resolve().parent
HELLO, BEGIN, TENSOR, COMMIT = 1, 2, 3, 4


def frame(frame_type: int, header: dict, payload: bytes = b"") -> bytes:
    # Compact JSON with sorted keys: the canonical form qswap's own senders write.
    text = json.dumps(header, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode("utf-8")
    return struct.pack("<4sHHIQ", b"QSWP", 1, frame_type, len(text), len(payload)) + text + payload


def main() -> None:
    # Tensor "w", BF16, shape [2], values [1.0, -2.0]: bf16 bits 0x3F80, 0xC000, little endian.
    payload = struct.pack("<HH", 0x3F80, 0xC000)
    frames = [
        frame(HELLO, {"client": "example", "token": "s3cret"}),
        frame(BEGIN, {"tag": 7}),
        frame(TENSOR, {"name": "w", "dtype": "BF16", "shape": [2], "nbytes": len(payload),
                       "crc32": zlib.crc32(payload)}, payload),
        frame(COMMIT, {"tensors": 1}),
    ]
    data = b"".join(frames)
    (HERE / "example_update.bin").write_bytes(data)
    offset = 0
    for f in frames:
        for i in range(0, len(f), 16):
            chunk = f[i:i + 16]
            text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
            print(f"{offset + i:04x}  {chunk.hex(' '):<47}  {text}")
        offset += len(f)
        print()
    print(f"crc32 of the payload: 0x{zlib.crc32(payload):08x}")


if __name__ == "__main__":
    main()
