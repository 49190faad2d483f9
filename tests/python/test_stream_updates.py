"""Weight updates pushed by a second process over the streaming protocol (docs/protocol.md):
into a qswap.Engine listening in this process, and into `qswap serve --listen`, where a sender
killed mid-update must leave the old weights serving and the failure visible in /metrics and the log.

Expected answers are the arith fixtures' ("3 4 =" -> " 12" for arith-mul, " 7" for arith-add);
logprobs are compared with transformers' log_softmax on the pushed checkpoint.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import qswap
from conftest import ADD_ANSWER, DATA, MUL_ANSWER, reference_logprobs
from test_server_openai import Server

# A sender in its own interpreter: pushes a fixture's tensors (torch bf16, or numpy f32) to ADDRESS
# and prints the receiver's reply as JSON.
PUSH = textwrap.dedent("""
    import json, pathlib, sys
    from safetensors.torch import load_file
    import qswap.client
    fixture, address, kind = sys.argv[1:4]
    tensors = {}
    for shard in sorted(pathlib.Path(fixture).glob("*.safetensors")):
        tensors.update(load_file(shard))
    if kind == "numpy":
        tensors = {name: t.float().numpy() for name, t in tensors.items()}
    print(json.dumps(qswap.client.push(tensors, address, version=kind)))
""")

# Pushes half of a fixture's tensors, says so on stdout, then hangs until it is killed.
PUSH_HALF_THEN_HANG = textwrap.dedent("""
    import pathlib, sys, time
    from safetensors.torch import load_file
    import qswap.client
    fixture, address = sys.argv[1:3]
    items = []
    for shard in sorted(pathlib.Path(fixture).glob("*.safetensors")):
        items += load_file(shard).items()
    def tensors():
        yield from items[: len(items) // 2]
        print("half", flush=True)
        time.sleep(3600)
        yield from items[len(items) // 2:]
    qswap.client.push(tensors(), address, bucket_bytes=0)
""")


def push(fixture: str, address: str, kind: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PUSH, str(DATA / fixture), address, kind], check=True,
                         capture_output=True, text=True, timeout=120)
    return json.loads(out.stdout)


def test_second_process_pushes_into_a_listening_engine(tmp_path, hf_model, tokenizer):
    engine = qswap.Engine(DATA / "arith-base", quant="none")
    base_version = engine.weight_version
    with engine.listen(f"unix:{tmp_path}/qswap.sock") as listener:
        reply = push("arith-mul", listener.address, "torch")
        assert reply["ok"] and reply["version"] == base_version + 1 == engine.weight_version
        r = engine.generate("3 4 =", max_tokens=6)
        assert r.text == MUL_ANSWER and r.weight_version == base_version + 1
        # The logprobs are those of the pushed weights, per transformers on the same checkpoint.
        prompt = tokenizer.encode("3 4 =").ids
        expected = reference_logprobs(hf_model("arith-mul"), prompt, r.token_ids)
        assert r.logprobs == pytest.approx(expected, abs=1e-4)

        reply = push("arith-add", listener.address, "numpy")
        assert reply["ok"] and reply["version"] == base_version + 2
        r = engine.generate("3 4 =", max_tokens=6)
        assert r.text == ADD_ANSWER and r.weight_version == base_version + 2
        assert listener.stats() == {"updates": 2, "failures": 0, "last_error": None,
                                    "last_version": base_version + 2}


def test_killed_sender_leaves_the_old_weights_serving(tmp_path):
    sock = tmp_path / "serve.sock"
    server = Server("arith-mul", "--listen", f"unix:{sock}", "--mode", "transactional")
    try:
        before = server.client.completions.create(model="arith-mul", prompt="3 4 =", max_tokens=4, temperature=0)
        assert before.choices[0].text == MUL_ANSWER
        version = before.model_extra["weight_version"]

        sender = subprocess.Popen([sys.executable, "-c", PUSH_HALF_THEN_HANG, str(DATA / "arith-add"), f"unix:{sock}"],
                                  stdout=subprocess.PIPE, text=True)
        assert sender.stdout.readline().strip() == "half"
        sender.send_signal(signal.SIGKILL)
        sender.wait(timeout=30)
        sender.stdout.close()

        # The listener sees the connection drop, aborts the update and reports it.
        deadline = time.monotonic() + 30
        while True:
            metrics = urllib_get(server.base_url + "/metrics")
            failed = re.search(r"^qswap_weight_updates_failed_total (\d+)", metrics, re.M)
            if failed and int(failed.group(1)) == 1:
                break
            assert time.monotonic() < deadline, metrics
            time.sleep(0.05)
        error = re.search(r'^qswap_weight_update_last_error_info\{message="([^"]*)"\} 1', metrics, re.M)
        assert error and "connection" in error.group(1), metrics
        assert re.search(r"^qswap_weight_version (\d+)", metrics, re.M).group(1) == str(version)

        after = server.client.completions.create(model="arith-mul", prompt="3 4 =", max_tokens=4, temperature=0)
        assert after.choices[0].text == MUL_ANSWER
        assert after.model_extra["weight_version"] == version
        server.log.seek(0)
        log = server.log.read()
        assert re.search(r"update aborted .*connection", log), log  # the engine's warning, on stderr
    finally:
        server.stop()


def urllib_get(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read().decode()
