"""Weight updates from Python: torch / numpy / DLPack tensors, zero-copy, transactions, errors,
and the examples/rl_loop.py trainer loop."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

import qswap
from conftest import ADD_ANSWER, DATA, MUL_ANSWER, REPO, answer, reference_logprobs

Q_PROJ = "model.layers.0.self_attn.q_proj.weight"  # [128, 96]


def nbytes(tensors) -> int:
    return sum(t.numel() * t.element_size() if isinstance(t, torch.Tensor) else t.nbytes for t in tensors)


def test_update_from_safetensors_torch_bf16(mul_engine, state_dict):
    add = state_dict("arith-add")
    assert all(t.dtype == torch.bfloat16 for t in add.values())
    assert answer(mul_engine) == MUL_ANSWER
    stats = mul_engine.update_weights(add)
    assert answer(mul_engine) == ADD_ANSWER
    assert (stats.version, mul_engine.weight_version, stats.mode) == (2, 2, "transactional")
    assert stats.tensors == len(add) and stats.bytes_in == nbytes(add.values())
    assert mul_engine.last_update == stats
    assert mul_engine.generate("3 4 =").weight_version == 2
    # And back, from the 3-shard checkpoint, as (name, tensor) pairs.
    stats = mul_engine.update_weights((name, t) for name, t in state_dict("arith-mul").items())
    assert answer(mul_engine) == MUL_ANSWER and stats.version == mul_engine.weight_version == 3


def test_update_from_named_parameters(hf_model, tokenizer):
    """A transformers model's float32 Parameters (requires_grad) go in as they are."""
    model = hf_model("arith-add")
    params = list(model.named_parameters())
    assert all(p.requires_grad and p.dtype == torch.float32 for _, p in params)
    engine = qswap.Engine(DATA / "arith-mul", quant="none")
    stats = engine.update_weights(model.named_parameters())
    assert answer(engine) == ADD_ANSWER
    assert stats.tensors == len(params) and stats.bytes_in == nbytes(p for _, p in params)
    # The engine now serves exactly the model's weights (bf16 values held in float32).
    ids = tokenizer.encode("3 4 =").ids
    r = engine.generate(ids, max_tokens=4, ignore_eos=True)
    assert r.logprobs == pytest.approx(reference_logprobs(model, ids, r.token_ids), abs=1e-4)


@pytest.mark.parametrize("convert", [
    pytest.param(lambda t: t.float().numpy(), id="numpy-f32"),
    pytest.param(lambda t: t.half(), id="torch-f16"),
    pytest.param(lambda t: t.float(), id="torch-f32"),
    pytest.param(lambda t: memoryview(t.float().numpy()), id="buffer-protocol-f32"),
])
def test_update_from_other_tensor_types(mul_engine, state_dict, convert):
    mul_engine.update_weights({name: convert(t) for name, t in state_dict("arith-add").items()})
    assert answer(mul_engine) == ADD_ANSWER


def test_zero_copy(state_dict):
    """What the engine reads is the caller's memory: the address handed to WeightUpdate.add's
    engine call is the tensor's own data pointer, for every kind of input; and an update in a scheme
    that quantizes on arrival holds no staging copy either."""
    borrow = qswap._core.borrow_info
    bf16 = state_dict("arith-add")[Q_PROJ]
    param = torch.nn.Parameter(bf16.float())
    array = bf16.float().numpy()
    readonly = np.frombuffer(array.tobytes(), dtype=np.float32).reshape(array.shape)
    assert not readonly.flags.writeable
    for t, address in [(bf16, bf16.data_ptr()), (param, param.data_ptr()), (array, array.ctypes.data),
                       (readonly, readonly.ctypes.data)]:
        info = borrow(t, Q_PROJ)
        assert info["data_ptr"] == address
        assert info["shape"] == [128, 96] and info["nbytes"] == nbytes([t])
    assert borrow(bf16)["dtype"] == "bf16" and borrow(param)["dtype"] == "f32"
    # A slice of rows is contiguous: read in place at its offset.
    rows = bf16[32:64]
    assert borrow(rows)["data_ptr"] == bf16.data_ptr() + 32 * 96 * 2

    for quant in ["none", "fp8-channel", "fp8-block", "mxfp8"]:
        engine = qswap.Engine(DATA / "arith-mul", quant=quant)
        stats = engine.update_weights(state_dict("arith-add"))
        assert stats.peak_staging_bytes == 0, quant
        assert answer(engine) == ADD_ANSWER


def test_non_contiguous_tensor_rejected(mul_engine, state_dict):
    tensors = dict(state_dict("arith-add"))
    tensors[Q_PROJ] = tensors[Q_PROJ].t().contiguous().t()  # same shape, column-major
    assert not tensors[Q_PROJ].is_contiguous()
    with pytest.raises(qswap.InvalidArgumentError, match=f"tensor '{Q_PROJ}' is not contiguous"):
        mul_engine.update_weights(tensors)
    assert mul_engine.weight_version == 1 and answer(mul_engine) == MUL_ANSWER
    # The engine takes the next update.
    mul_engine.update_weights(state_dict("arith-add"))
    assert answer(mul_engine) == ADD_ANSWER


def test_non_cpu_tensor_rejected(mul_engine, state_dict):
    tensors = dict(state_dict("arith-add"))
    tensors[Q_PROJ] = torch.empty(128, 96, dtype=torch.bfloat16, device="meta")
    with pytest.raises(qswap.InvalidArgumentError, match=f"tensor '{Q_PROJ}' is on device 'meta'"):
        mul_engine.update_weights(tensors)
    with pytest.raises(qswap.InvalidArgumentError, match="tensor 'x' is a list"):
        mul_engine.update_weights([("x", [1.0, 2.0])])
    assert mul_engine.weight_version == 1 and answer(mul_engine) == MUL_ANSWER


def test_wrong_shape_names_tensor_and_shapes(mul_engine, state_dict):
    tensors = dict(state_dict("arith-add"))
    tensors[Q_PROJ] = tensors[Q_PROJ].t().contiguous()
    with pytest.raises(qswap.QswapError) as e:
        mul_engine.update_weights(tensors)
    message = str(e.value)
    assert Q_PROJ in message and "[128, 96]" in message and "[96, 128]" in message
    assert mul_engine.weight_version == 1 and answer(mul_engine) == MUL_ANSWER


def test_transactional_failure_keeps_old_weights(mul_engine, state_dict):
    add = state_dict("arith-add")
    # A NaN in the last tensor, after every other one has been quantized into the shadow copy.
    names = sorted(add)
    poisoned = add[names[-1]].clone()
    poisoned.view(-1)[7] = float("nan")
    with pytest.raises(qswap.DataLossError, match="NaN"):
        mul_engine.update_weights([(n, add[n]) for n in names[:-1]] + [(names[-1], poisoned)])
    assert mul_engine.weight_version == 1 and answer(mul_engine) == MUL_ANSWER
    # Half the tensors: the commit names what never arrived.
    sent = names[: len(names) // 2]
    with pytest.raises(qswap.NotFoundError, match=f"{len(names) - len(sent)} required tensor.s. never arrived") as e:
        mul_engine.update_weights([(n, add[n]) for n in sent])
    assert names[len(sent)] in str(e.value)
    assert mul_engine.weight_version == 1 and answer(mul_engine) == MUL_ANSWER


def test_iterator_exception_aborts(mul_engine, state_dict):
    add = state_dict("arith-add")

    def trainer_stream():
        for i, (name, t) in enumerate(add.items()):
            if i == 10:
                raise ConnectionError("trainer died")
            yield name, t

    with pytest.raises(ConnectionError, match="trainer died"):
        mul_engine.update_weights(trainer_stream())
    assert mul_engine.weight_version == 1 and answer(mul_engine) == MUL_ANSWER
    assert mul_engine.update_weights(add).version == 2  # no update left hanging
    assert answer(mul_engine) == ADD_ANSWER


def test_context_manager(mul_engine, state_dict):
    add = state_dict("arith-add")
    with mul_engine.begin_update() as u:
        assert u.active
        for name, t in add.items():
            u.add(name, t)
        assert u.progress()["tensors"] == len(add)
    assert not u.active and u.stats.version == 2 and answer(mul_engine) == ADD_ANSWER

    mul = state_dict("arith-mul")
    with pytest.raises(KeyError):
        with mul_engine.begin_update() as u:
            for name, t in mul.items():
                u.add(name, t)
            raise KeyError("changed my mind")
    assert not u.active and u.stats is None
    assert mul_engine.weight_version == 2 and answer(mul_engine) == ADD_ANSWER
    with pytest.raises(qswap.FailedPreconditionError, match="already ended"):
        u.add(Q_PROJ, mul[Q_PROJ])


def test_one_update_at_a_time(mul_engine, state_dict):
    first = mul_engine.begin_update()
    with pytest.raises(qswap.FailedPreconditionError, match="another weight update"):
        mul_engine.begin_update()
    first.abort()
    mul_engine.update_weights(state_dict("arith-add"))
    assert answer(mul_engine) == ADD_ANSWER


def test_in_place_failure_refuses_generation(state_dict):
    engine = qswap.Engine(DATA / "arith-mul", quant="fp8", update_mode="in-place")
    add = state_dict("arith-add")
    half = list(add.items())[:12]
    with pytest.raises(qswap.NotFoundError):
        engine.update_weights(half)
    with pytest.raises(qswap.FailedPreconditionError, match="in-place weight update failed"):
        engine.generate("3 4 =")
    stats = engine.update_weights(add)
    assert stats.mode == "in-place" and answer(engine) == ADD_ANSWER
    # The mode can be chosen per update.
    assert engine.update_weights(state_dict("arith-mul"), mode="transactional").mode == "transactional"
    with pytest.raises(qswap.InvalidArgumentError, match="update mode"):
        engine.update_weights(add, mode="eventually")


def test_unknown_tensor(state_dict):
    add = dict(state_dict("arith-add"))
    add["model.layers.0.mlp.extra.weight"] = torch.zeros(4, 4)
    strict = qswap.Engine(DATA / "arith-mul", quant="fp8")
    with pytest.raises(qswap.InvalidArgumentError, match="model.layers.0.mlp.extra.weight"):
        strict.update_weights(add)
    lenient = qswap.Engine(DATA / "arith-mul", quant="fp8", allow_unknown=True)
    stats = lenient.update_weights(add)
    assert any("model.layers.0.mlp.extra.weight" in w for w in stats.warnings)
    assert answer(lenient) == ADD_ANSWER


def test_update_weights_from_disk(mul_engine):
    stats = mul_engine.update_weights_from_disk(DATA / "arith-add")
    assert stats.version == 2 and stats.tensors == 24 and answer(mul_engine) == ADD_ANSWER
    with pytest.raises(qswap.QswapError, match="nowhere"):
        mul_engine.update_weights_from_disk(DATA / "nowhere")
    assert mul_engine.weight_version == 2


def test_generate_while_updating(mul_engine, state_dict):
    """Generation in one thread, updates in another (both release the GIL): every completion comes
    from one whole weight version, the one it reports (odd: mul, even: add)."""
    checkpoints = [state_dict("arith-add"), state_dict("arith-mul")]
    results, stop = [], threading.Event()

    def generate_loop():
        while not stop.is_set():
            results.append(mul_engine.generate("3 4 =", max_tokens=4))

    thread = threading.Thread(target=generate_loop)
    thread.start()
    try:
        for i in range(8):
            mul_engine.update_weights(checkpoints[i % 2])
    finally:
        stop.set()
        thread.join()
    assert mul_engine.weight_version == 9 and results
    for r in results:
        assert r.text == (MUL_ANSWER if r.weight_version % 2 else ADD_ANSWER), r


def test_rl_loop_example():
    """The trainer loop, short: 2 optimizer steps, 8 probes, quant none (which must agree 100%)."""
    run = subprocess.run([sys.executable, str(REPO / "examples" / "rl_loop.py"), "--steps", "2", "--probes", "8"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASS: agreement 24/24" in run.stdout
    rows = [line.split() for line in run.stdout.splitlines() if line.split()[:1] in (["0"], ["1"], ["2"])]
    assert [int(row[2]) for row in rows] == [1, 2, 3]  # one weight_version per step
