"""`qswap serve` through the official `openai` client: completions (text, logprobs, usage,
weight_version), streaming, errors, and /update_weights_from_disk changing the answer.

The server binary comes from $QSWAP_BIN (default <repo>/build/cli/qswap). Logprobs are checked
against the transformers logits committed in tests/data/arith-mul/golden (made by
scripts/fixtures/make_fixtures.py), not against qswap itself.
"""

import json
import math
import os
import pathlib
import re
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import numpy as np
import openai
import pytest
import tokenizers
from safetensors.numpy import load_file

REPO = pathlib.Path(__file__).resolve().parents[2]
QSWAP_BIN = pathlib.Path(os.environ.get("QSWAP_BIN", REPO / "build" / "cli" / "qswap"))
DATA = REPO / "tests" / "data"


class Server:
    """`qswap serve DIR --port 0` in a subprocess; the port is read from its startup line."""

    def __init__(self, model, *extra):
        if not QSWAP_BIN.exists():
            pytest.skip(f"no qswap binary at {QSWAP_BIN} (set QSWAP_BIN)")
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [str(QSWAP_BIN), "serve", str(DATA / model), "--quant", "none", "--port", "0", "--threads", "2", *extra],
            stdout=subprocess.DEVNULL, stderr=self.log)
        self.port = None
        deadline = time.monotonic() + 60
        while self.port is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                self.log.seek(0)
                raise RuntimeError(f"qswap serve did not start: {self.log.read()}")
            self.log.seek(0)
            match = re.search(r"on http://127\.0\.0\.1:(\d+)", self.log.read())
            if match:
                self.port = int(match.group(1))
            else:
                time.sleep(0.05)
        self.base_url = f"http://127.0.0.1:{self.port}"
        while self.request("GET", "/health")[0] != 200:  # serving: the weights are loaded
            assert time.monotonic() < deadline, "/health never answered 200"
            time.sleep(0.05)
        self.client = openai.OpenAI(base_url=self.base_url + "/v1", api_key="unused", max_retries=0, timeout=60)

    def request(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")
        except urllib.error.URLError:
            return 0, None

    def stop(self):
        if getattr(self, "client", None) is not None:
            self.client.close()  # else the server's shutdown waits out the keep-alive connection
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: the server stops and exits 0
            assert self.proc.wait(timeout=30) == 0
        self.log.close()


@pytest.fixture(scope="module")
def server():
    s = Server("arith-mul")
    yield s
    s.stop()


def golden_logprobs(model, prompt_len, completion_len):
    """log_softmax of transformers' logits over "11 9 = 99": the logprobs of " 99" after "11 9 =",
    and the top-5 alternatives at each step."""
    golden = json.loads((DATA / model / "golden" / "golden.json").read_text())
    logits = load_file(str(DATA / model / "golden" / golden["logits_file"]))["bf16.all"].astype(np.float64)
    ids = golden["prompt_all"]["ids"]
    assert golden["prompt_all"]["text"] == "11 9 = 99" and len(ids) == prompt_len + completion_len
    steps = []
    for t in range(prompt_len, prompt_len + completion_len):
        row = logits[t - 1]
        logp = row - row.max() - math.log(np.exp(row - row.max()).sum())
        steps.append((ids[t], logp))
    return steps


def test_completion_text_logprobs_usage_and_weight_version(server):
    r = server.client.completions.create(model="arith-mul", prompt="11 9 =", max_tokens=5, temperature=0,
                                         logprobs=3)
    assert r.object == "text_completion"
    assert r.model == "arith-mul"
    assert r.model_extra["weight_version"] == 1
    choice = r.choices[0]
    assert choice.text == " 99"
    assert choice.finish_reason == "stop"
    assert choice.model_extra["weight_version"] == 1
    # "11 9 =" is 5 tokens with the arith tokenizer (single bytes and the one merge "Ġ="); " 99" is 3.
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (5, 3, 8)

    lp = choice.logprobs
    assert lp.tokens == [" ", "9", "9"]
    assert lp.text_offset == [0, 1, 2]
    steps = golden_logprobs("arith-mul", prompt_len=5, completion_len=3)
    tokenizer = tokenizers.Tokenizer.from_file(str(DATA / "arith-mul" / "tokenizer.json"))
    for i, (token_id, logp) in enumerate(steps):
        assert lp.token_logprobs[i] == pytest.approx(logp[token_id], abs=1e-4)
        assert lp.token_logprobs[i] <= 0
        top = lp.top_logprobs[i]
        assert top[lp.tokens[i]] == lp.token_logprobs[i]
        # The 3 most likely tokens by transformers' logits (the greedy token among them).
        want = np.argsort(-logp, kind="stable")[:3]
        assert len(top) == 3
        for token in want:
            text = tokenizer.decode([int(token)], skip_special_tokens=False)
            assert top[text] == pytest.approx(logp[token], abs=1e-3), (i, text)


def test_prompt_forms_and_several_choices(server):
    ids = [16, 16, 220, 24, 256]  # "11 9 =" (golden.json)
    r = server.client.completions.create(model="anything", prompt=ids, max_tokens=4, temperature=0)
    assert r.choices[0].text == " 99"
    r = server.client.completions.create(model="arith-mul", prompt=["3 4 =", "5 6 ="], n=2, max_tokens=4,
                                         temperature=0)
    assert [c.index for c in r.choices] == [0, 1, 2, 3]
    assert [c.text for c in r.choices] == [" 12", " 12", " 30", " 30"]


def test_seeded_sampling_is_reproducible(server):
    kwargs = dict(model="arith-mul", prompt="3 4 =", max_tokens=6, temperature=1.0, seed=7, n=3,
                  extra_body={"ignore_eos": True})
    a = server.client.completions.create(**kwargs)
    b = server.client.completions.create(**kwargs)
    assert [c.text for c in a.choices] == [c.text for c in b.choices]
    assert all(c.finish_reason == "length" for c in a.choices)


def test_streaming_matches_the_plain_answer(server):
    kwargs = dict(model="arith-mul", prompt=["12 12 =", "7 8 ="], max_tokens=6, temperature=0, stop=["44"])
    plain = server.client.completions.create(**kwargs)
    texts, finish = {}, {}
    chunks = 0
    for chunk in server.client.completions.create(stream=True, **kwargs):
        chunks += 1
        assert chunk.object == "text_completion"
        assert chunk.model_extra["weight_version"] == 1
        for c in chunk.choices:
            texts[c.index] = texts.get(c.index, "") + c.text
            if c.finish_reason is not None:
                finish[c.index] = c.finish_reason
    assert chunks > 2
    assert texts == {0: " 1", 1: " 56"}
    assert texts == {c.index: c.text for c in plain.choices}
    assert finish == {c.index: c.finish_reason for c in plain.choices}


def test_streaming_with_usage(server):
    stream = server.client.completions.create(model="arith-mul", prompt="3 4 =", max_tokens=4, temperature=0,
                                              stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[-1].usage.completion_tokens == 3
    assert "".join(c.text for ch in chunks for c in ch.choices) == " 12"


@pytest.mark.parametrize("kwargs, param, says", [
    (dict(max_tokens=0), "max_tokens", "'max_tokens' must be in [1,"),
    (dict(max_tokens=500), "max_tokens", "context is 128 tokens"),
    (dict(temperature=3), "temperature", "'temperature' must be in [0, 2]"),
    (dict(logprobs=9), "logprobs", "'logprobs' must be in [0, 5]"),
    (dict(echo=True), "echo", "'echo' is not supported"),
    (dict(stop=["a", "b", "c", "d", "e"]), "stop", "at most 4"),
    (dict(prompt=""), "prompt", "prompt is empty"),
    (dict(prompt=[5000]), "prompt", "token id 5000 is outside the vocabulary"),
    (dict(extra_body={"max_token": 3}), "max_token", "unrecognized request argument"),
])
def test_bad_requests_raise_bad_request_error(server, kwargs, param, says):
    args = dict(model="arith-mul", prompt="3 4 =", max_tokens=4)
    args.update(kwargs)
    with pytest.raises(openai.BadRequestError) as e:
        server.client.completions.create(**args)
    assert e.value.status_code == 400
    assert e.value.param == param
    assert e.value.type == "invalid_request_error"
    assert says in e.value.body["message"]


def test_models_health_metrics(server):
    models = server.client.models.list()
    assert [m.id for m in models.data] == ["arith-mul"]
    assert server.request("GET", "/health") == (200, {"status": "ok", "update_running": False, "weight_version": 1})
    with urllib.request.urlopen(server.base_url + "/metrics", timeout=30) as r:
        text = r.read().decode()
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE qswap_generation_tokens_total counter" in text
    assert re.search(r'^qswap_http_requests_total\{endpoint="/v1/completions",code="200"\} [1-9]', text, re.M)


@pytest.mark.parametrize("mode", ["transactional", "in-place"])
def test_update_weights_from_disk_changes_the_answer(mode):
    s = Server("arith-mul", "--mode", mode)
    try:
        def answer():
            r = s.client.completions.create(model="arith-mul", prompt="3 4 =", max_tokens=4, temperature=0)
            return r.choices[0].text, r.model_extra["weight_version"]

        assert answer() == (" 12", 1)
        status, stats = s.request("POST", "/update_weights_from_disk", {"path": str(DATA / "arith-add")})
        assert status == 200, stats
        assert stats["success"] and stats["weight_version"] == 2 and stats["mode"] == mode
        assert stats["tensors"] == 24
        assert answer() == (" 7", 2)

        status, err = s.request("POST", "/update_weights_from_disk", {"path": str(DATA / "no-such-model")})
        assert status == 400
        assert "no-such-model" in err["error"]["message"]
        if mode == "transactional":
            assert answer() == (" 7", 2)  # a failed transactional update leaves the served weights alone

        status, stats = s.request("POST", "/update_weights_from_disk",
                                  {"path": str(DATA / "arith-mul"), "mode": "transactional"})
        assert status == 200, stats
        assert answer() == (" 12", 3)
    finally:
        s.stop()
