"""Push new weights from a trainer to a running qswap engine (the weight-stream protocol,
docs/protocol.md). Standard library + numpy; torch tensors are taken if torch is loaded.

    from qswap.client import push, PushError
    reply = push(model.named_parameters(), "unix:/run/qswap.sock", token=secret, version=step)
    reply["version"]  # the engine's weight version now serving

Each tensor is sent as it is produced by the iterable (a generator that gathers shards one at a
time keeps one tensor in memory), without copying its bytes where the layout allows: bf16 goes as
its raw bits. Small tensors are packed into one send to save system calls.
"""

from __future__ import annotations

import json
import select
import socket
import struct
import sys
import zlib
from typing import Any, Iterable, Optional, Tuple, Union

import numpy as np

PROTOCOL_VERSION = 1
MAGIC = b"QSWP"
HELLO, BEGIN, TENSOR, COMMIT, ABORT, REPLY = 1, 2, 3, 4, 5, 6
_HEADER = struct.Struct("<4sHHIQ")  # magic, version, type, JSON length, payload length
HEADER_BYTES = _HEADER.size  # 20
_MAX_REPLY_JSON = 1 << 20
_CLIENT = f"qswap.client/{PROTOCOL_VERSION} python/{sys.version_info[0]}.{sys.version_info[1]}"

__all__ = ["push", "PushError", "frame_bytes", "wire_tensor"]


class PushError(Exception):
    """The receiver refused or failed the update; `reply` is its REPLY (empty if none came)."""

    def __init__(self, message: str, reply: Optional[dict] = None):
        super().__init__(message)
        self.reply = reply or {}


def frame_bytes(frame_type: int, header: dict, payload_bytes: int = 0) -> bytes:
    """The fixed header and JSON header of one frame (the payload, if any, follows on the wire)."""
    text = json.dumps(header, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode("utf-8")
    return _HEADER.pack(MAGIC, PROTOCOL_VERSION, frame_type, len(text), payload_bytes) + text


def wire_tensor(name: str, tensor: Any) -> Tuple[str, list, memoryview, Any]:
    """(dtype, shape, bytes, owner) of a torch tensor or numpy array as the stream carries it:
    C order, little endian. `bytes` views `owner`'s memory; keep `owner` alive while using it."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(tensor, torch.Tensor):
        t = tensor.detach()
        dtypes = {torch.bfloat16: "BF16", torch.float16: "F16", torch.float32: "F32"}
        if t.dtype not in dtypes:
            raise TypeError(f"tensor {name!r}: dtype {t.dtype} cannot be pushed (bfloat16, float16 or float32)")
        if t.device.type != "cpu":
            t = t.to("cpu")
        if not t.is_contiguous():
            t = t.contiguous()  # C order, as the receiver reads it
        if sys.byteorder != "little":
            raise TypeError("pushing torch tensors needs a little-endian host")
        # numpy has no bfloat16: send its bits through an int16 view (no conversion, no copy).
        arr = t.view(torch.int16).numpy() if t.dtype == torch.bfloat16 else t.numpy()
        return dtypes[t.dtype], list(t.shape), _byte_view(arr), (t, arr)
    if isinstance(tensor, np.ndarray):
        kind, size = tensor.dtype.kind, tensor.dtype.itemsize  # any byte order
        if tensor.dtype.name == "bfloat16" and size == 2:  # ml_dtypes
            dtype = "BF16"
        elif kind == "f" and size == 4:
            dtype = "F32"
        elif kind == "f" and size == 2:
            dtype = "F16"
        else:
            raise TypeError(f"tensor {name!r}: numpy dtype {tensor.dtype} cannot be pushed (float16 or float32)")
        arr = np.ascontiguousarray(tensor)
        if arr.dtype.byteorder == ">" or (arr.dtype.byteorder == "=" and sys.byteorder != "little"):
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        return dtype, list(arr.shape), _byte_view(arr), arr
    raise TypeError(f"tensor {name!r}: a {type(tensor).__name__} is neither a torch tensor nor a numpy array")


def _byte_view(arr: np.ndarray) -> memoryview:
    return memoryview(arr.reshape(-1).view(np.uint8))


def push(
    named_tensors: Iterable[Tuple[str, Any]],
    address: str,
    *,
    token: Optional[str] = None,
    version: Union[int, str, None] = None,
    mode: Optional[str] = None,
    bucket_bytes: int = 4 << 20,
    timeout: Optional[float] = 300.0,
    checksum: bool = True,
) -> dict:
    """Sends one update and returns the receiver's reply to COMMIT: {"ok", "version", "tensors",
    "bytes", "seconds", "tag"}. Raises PushError with the receiver's message if it refuses.

    named_tensors: (name, tensor) pairs, e.g. model.named_parameters(), or a mapping (a state dict);
      torch tensors (bf16/f16/f32, any device, parameters included) or numpy arrays (f16/f32).
    address: "unix:/path" or "tcp://HOST:PORT".
    token: the receiver's shared secret, if it has one.
    version: a label for this update (e.g. the optimizer step), echoed in the reply as "tag".
    mode: "transactional" or "in-place"; None: the receiver's default.
    bucket_bytes: tensors up to a quarter of this are packed together into one send.
    timeout: seconds any one socket operation may take (None: no limit).
    checksum: send each payload's CRC-32 (zlib.crc32) for the receiver to verify.
    """
    sock = _connect(address, timeout)
    try:
        _sendall(sock, frame_bytes(HELLO, _hello(token)))
        _expect_ok(sock, "HELLO")
        begin: dict = {}
        if version is not None:
            begin["tag"] = version if isinstance(version, int) and version >= 0 else str(version)
        if mode is not None:
            begin["mode"] = mode
        out = _Bucketed(sock, bucket_bytes)
        out.add(frame_bytes(BEGIN, begin))
        count = 0
        items = iter(named_tensors.items() if hasattr(named_tensors, "items") else named_tensors)
        while True:
            try:
                item = next(items, None)
                if item is None:
                    break
                name, tensor = item
                dtype, shape, data, owner = wire_tensor(name, tensor)
            except Exception as exc:  # the caller's data: abandon the update on the receiver too
                _abort(out, f"sender error: {exc!r}")
                raise
            header = {"name": name, "dtype": dtype, "shape": shape, "nbytes": data.nbytes}
            if checksum:
                header["crc32"] = zlib.crc32(data)
            out.add(frame_bytes(TENSOR, header, data.nbytes), data)
            del data, owner  # sent or copied: the tensor may go
            count += 1
        out.add(frame_bytes(COMMIT, {"tensors": count}))
        out.flush()
        return _expect_ok(sock, "COMMIT")
    except (BrokenPipeError, ConnectionResetError) as exc:
        # The receiver ended the connection; its error reply, if it got out, says why.
        reply = _try_read_reply(sock)
        if reply is not None and not reply.get("ok", False):
            raise PushError(reply.get("error", "update refused"), reply) from exc
        raise PushError(f"connection to {address} lost: {exc}") from exc
    finally:
        sock.close()


class _Bucketed:
    """Frames waiting to be sent: small ones are copied together, large payloads go zero-copy."""

    def __init__(self, sock: socket.socket, bucket_bytes: int):
        self.sock = sock
        self.bucket_bytes = max(int(bucket_bytes), 1)
        self.buf = bytearray()

    def add(self, head: bytes, payload: Optional[memoryview] = None) -> None:
        self.buf += head
        if payload is None or payload.nbytes == 0:
            pass
        elif payload.nbytes <= self.bucket_bytes // 4:
            self.buf += payload
        else:
            self.flush()
            _sendall(self.sock, payload)
            return
        if len(self.buf) >= self.bucket_bytes:
            self.flush()

    def flush(self) -> None:
        if self.buf:
            _check_early_reply(self.sock)
            _sendall(self.sock, self.buf)
            self.buf = bytearray()


def _hello(token: Optional[str]) -> dict:
    hello = {"client": _CLIENT}
    if token is not None:
        hello["token"] = token
    return hello


def _abort(out: _Bucketed, reason: str) -> None:
    try:
        out.add(frame_bytes(ABORT, {"reason": reason[:1000]}))
        out.flush()
        _read_reply(out.sock)
    except (OSError, PushError, EOFError):
        pass


def _connect(address: str, timeout: Optional[float]) -> socket.socket:
    if address.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(address[len("unix:"):])
        except OSError:
            sock.close()
            raise
        return sock
    if address.startswith("tcp://"):
        rest = address[len("tcp://"):]
        if rest.startswith("["):
            host, _, port = rest[1:].partition("]:")
        else:
            host, _, port = rest.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"address {address!r}: expected tcp://HOST:PORT")
        sock = socket.create_connection((host, int(port)), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    raise ValueError(f"address {address!r} must be unix:/PATH or tcp://HOST:PORT")


def _sendall(sock: socket.socket, data) -> None:
    sock.sendall(data)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:])
        if k == 0:
            raise EOFError(f"the receiver closed the connection ({got} of {n} bytes read)")
        got += k
    return bytes(buf)


def _read_reply(sock: socket.socket) -> dict:
    magic, version, frame_type, json_len, payload_len = _HEADER.unpack(_recv_exact(sock, HEADER_BYTES))
    if magic != MAGIC or version != PROTOCOL_VERSION or frame_type != REPLY:
        raise PushError(f"unexpected frame from the receiver (magic {magic!r}, version {version}, type {frame_type})")
    if json_len > _MAX_REPLY_JSON or payload_len != 0:
        raise PushError(f"malformed REPLY from the receiver ({json_len} JSON bytes, {payload_len} payload bytes)")
    reply = json.loads(_recv_exact(sock, json_len).decode("utf-8"))
    if not isinstance(reply, dict):
        raise PushError("malformed REPLY from the receiver (not a JSON object)")
    return reply


def _expect_ok(sock: socket.socket, what: str) -> dict:
    try:
        reply = _read_reply(sock)
    except EOFError as exc:
        raise PushError(f"the receiver closed the connection instead of answering {what}") from exc
    if not reply.get("ok", False):
        raise PushError(reply.get("error", f"{what} refused"), reply)
    return reply


def _try_read_reply(sock: socket.socket) -> Optional[dict]:
    try:
        sock.settimeout(2.0)
        return _read_reply(sock)
    except (OSError, EOFError, PushError, ValueError):
        return None


def _check_early_reply(sock: socket.socket) -> None:
    """The receiver speaks before COMMIT only to refuse: raise its error now, not after sending
    the rest of the update."""
    if hasattr(select, "poll"):  # select() fails on descriptors past FD_SETSIZE, common in trainers
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        readable = bool(poller.poll(0))
    else:
        readable = bool(select.select([sock], [], [], 0)[0])
    if readable:
        reply = _try_read_reply(sock)
        if reply is not None and not reply.get("ok", False):
            raise PushError(reply.get("error", "update refused"), reply)
        raise PushError("the receiver closed the connection during the update", reply)
