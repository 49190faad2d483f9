"""qswap.client.push against `qswap receive` (the C++ receiver) on a unix socket: streamed fixture
fine-tunes change the model's greedy answer; refusals come back as PushError naming the cause.

The receiver binary comes from $QSWAP_BIN (default <repo>/build/cli/qswap).
"""

import importlib.util
import json
import os
import pathlib
import queue
import subprocess
import sys
import threading

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
QSWAP_BIN = os.environ.get("QSWAP_BIN", str(REPO / "build" / "cli" / "qswap"))

sys.path.insert(0, str(REPO / "python"))
try:
    from qswap import client  # python/qswap as a namespace package
except Exception:  # an installed qswap without client.py shadows it: load the file itself
    _spec = importlib.util.spec_from_file_location("qswap_client", REPO / "python" / "qswap" / "client.py")
    client = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(client)

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

pytestmark = pytest.mark.skipif(
    not pathlib.Path(QSWAP_BIN).exists() or not (DATA / "arith-mul" / "config.json").exists(),
    reason="needs the qswap binary and the fixtures",
)


def load_checkpoint(name):
    """A fixture's tensors as torch tensors (bf16), every shard."""
    tensors = {}
    for f in sorted((DATA / name).glob("*.safetensors")):
        tensors.update(safetensors_torch.load_file(str(f)))
    return tensors


class Receiver:
    """`qswap receive` on a unix socket in `tmp`, printing JSON lines."""

    def __init__(self, tmp, token=None, listen=None):
        self.address = None
        listen = listen or f"unix:{tmp / 'qswap.sock'}"
        cmd = [QSWAP_BIN, "receive", str(DATA / "arith-base"), "--quant", "fp8", "--threads", "2",
               "--listen", listen, "-p", "3 4 =", "--max-tokens", "4", "--json"]
        if token is not None:
            cmd += ["--token", token]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.address = self.line(timeout=120)["address"]

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def line(self, timeout=60):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail("qswap receive printed nothing")
        if line is None:
            pytest.fail(f"qswap receive exited: {self.proc.wait()} {self.proc.stderr.read()}")
        return json.loads(line)

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture
def receiver(tmp_path):
    r = Receiver(tmp_path)
    yield r
    r.close()


def test_push_torch_then_numpy_changes_the_answer(receiver):
    mul = load_checkpoint("arith-mul")
    # A trainer's parameters: requires_grad, and one laid out transposed in memory.
    mul["model.norm.weight"] = torch.nn.Parameter(mul["model.norm.weight"].float().to(torch.bfloat16))
    w = mul["model.layers.0.mlp.down_proj.weight"]
    mul["model.layers.0.mlp.down_proj.weight"] = w.t().contiguous().t()
    assert not mul["model.layers.0.mlp.down_proj.weight"].is_contiguous()

    reply = client.push(mul.items(), receiver.address, version="mul")
    assert reply["ok"] is True
    assert reply["version"] == 2
    assert reply["tag"] == "mul"
    assert reply["tensors"] == len(mul)
    assert reply["bytes"] == sum(t.numel() * 2 for t in mul.values())
    line = receiver.line()
    assert line["ok"] is True and line["version"] == 2
    assert line["completion"] == " 12"

    add = {name: t.float().numpy() for name, t in load_checkpoint("arith-add").items()}  # numpy f32
    reply = client.push(add, receiver.address, version=3, bucket_bytes=1 << 16)  # a mapping
    assert reply["version"] == 3
    assert reply["tag"] == 3
    assert reply["bytes"] == sum(a.nbytes for a in add.values())
    line = receiver.line()
    assert line["version"] == 3
    assert line["completion"] == " 7"


def test_wrong_shape_is_refused_naming_the_tensor(receiver):
    mul = load_checkpoint("arith-mul")
    good = dict(mul)
    mul["model.norm.weight"] = torch.zeros(95, dtype=torch.bfloat16)
    with pytest.raises(client.PushError) as err:
        client.push(mul.items(), receiver.address)
    assert "model.norm.weight" in str(err.value)
    assert "wrong shape" in str(err.value)
    assert err.value.reply["tensor"] == "model.norm.weight"
    assert err.value.reply["version"] == 1
    line = receiver.line()
    assert line["ok"] is False and "model.norm.weight" in line["error"]

    reply = client.push(good.items(), receiver.address)  # the receiver takes the next connection
    assert reply["version"] == 2
    assert receiver.line()["completion"] == " 12"


def test_sender_error_aborts_the_update(receiver):
    mul = load_checkpoint("arith-mul")

    def failing():
        for i, item in enumerate(mul.items()):
            if i == 5:
                raise RuntimeError("gather failed")
            yield item

    with pytest.raises(RuntimeError, match="gather failed"):
        client.push(failing(), receiver.address)
    line = receiver.line()
    assert line["ok"] is False and "gather failed" in line["error"] and line["version"] == 1
    assert client.push(mul.items(), receiver.address)["version"] == 2


def test_wrong_token_is_refused(tmp_path):
    r = Receiver(tmp_path, token="s3cret")
    try:
        mul = load_checkpoint("arith-mul")
        for token in ("guess", None):
            with pytest.raises(client.PushError, match="authentication failed"):
                client.push(mul.items(), r.address, token=token)
            assert r.line()["ok"] is False
        assert client.push(mul.items(), r.address, token="s3cret")["version"] == 2
    finally:
        r.close()


def test_refusal_reaches_a_sender_still_streaming_over_tcp(tmp_path):
    """The receiver refuses the first tensor while the sender has 64 MB more to send: the sender
    gets the receiver's message (from its early reply), not a bare broken pipe."""
    r = Receiver(tmp_path, listen="tcp://127.0.0.1:0")
    try:
        assert r.address.startswith("tcp://127.0.0.1:") and not r.address.endswith(":0")
        block = np.zeros(1 << 18, dtype=np.float32)  # 1 MiB

        def tensors():
            yield "not.a.weight", np.zeros(4, dtype=np.float32)
            for i in range(64):
                yield f"filler.{i}", block

        with pytest.raises(client.PushError, match="tensor 'not.a.weight' is not a weight") as err:
            client.push(tensors(), r.address)
        assert err.value.reply["tensor"] == "not.a.weight"
        assert r.line()["ok"] is False
        assert client.push(load_checkpoint("arith-mul"), r.address)["version"] == 2
        assert r.line()["completion"] == " 12"
    finally:
        r.close()


def test_frames_match_the_worked_example():
    """docs/protocol.md's example, as the client encodes it, equals the bytes make_example.py wrote
    with struct/json/zlib."""
    expected = (REPO / "tests" / "stream" / "example_update.bin").read_bytes()
    dtype, shape, data, _owner = client.wire_tensor("w", torch.tensor([1.0, -2.0], dtype=torch.bfloat16))
    assert (dtype, shape, bytes(data)) == ("BF16", [2], b"\x80\x3f\x00\xc0")
    import zlib

    out = (client.frame_bytes(client.HELLO, {"client": "example", "token": "s3cret"})
           + client.frame_bytes(client.BEGIN, {"tag": 7})
           + client.frame_bytes(client.TENSOR, {"name": "w", "dtype": dtype, "shape": shape, "nbytes": data.nbytes,
                                                "crc32": zlib.crc32(data)}, data.nbytes) + bytes(data)
           + client.frame_bytes(client.COMMIT, {"tensors": 1}))
    assert out == expected


def test_wire_tensor_layouts_and_refusals():
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3).t()  # non-contiguous
    dtype, shape, data, _ = client.wire_tensor("t", t)
    assert (dtype, shape) == ("F32", [3, 2])
    assert bytes(data) == np.array([[0, 3], [1, 4], [2, 5]], dtype="<f4").tobytes()  # C order
    dtype, shape, data, _ = client.wire_tensor("h", np.array([[1.0, 2.0]], dtype=">f2"))  # big endian in
    assert (dtype, shape, bytes(data)) == ("F16", [1, 2], np.array([1.0, 2.0], dtype="<f2").tobytes())
    p = torch.nn.Parameter(torch.ones(2, dtype=torch.float16))
    assert client.wire_tensor("p", p)[0] == "F16"
    for bad in (torch.ones(2, dtype=torch.int64), np.ones(2), [1.0, 2.0]):
        with pytest.raises(TypeError):
            client.wire_tensor("bad", bad)
