"""qswap.Engine: load, generate, logprobs, perplexity, tokenize, errors."""

from __future__ import annotations

import math

import pytest
import torch

import qswap
from conftest import DATA, MUL_ANSWER, reference_logprobs


@pytest.mark.parametrize("quant", qswap.QUANT_SCHEMES)
def test_generate_mul_greedy(quant, tokenizer):
    engine = qswap.Engine(DATA / "arith-mul", quant=quant)
    r = engine.generate("3 4 =", max_tokens=8)
    assert r.text == MUL_ANSWER
    assert r.token_ids == tokenizer.encode(MUL_ANSWER).ids  # then EOS, which is not returned
    assert r.finish_reason == "stop"
    assert r.prompt_tokens == len(tokenizer.encode("3 4 =").ids)
    assert r.weight_version == engine.weight_version == 1
    assert len(r.logprobs) == len(r.token_ids) and all(lp <= 0 for lp in r.logprobs)
    # Token ids in, the same completion out.
    assert engine.generate(tokenizer.encode("3 4 =").ids, max_tokens=8).token_ids == r.token_ids


def test_tokenize_matches_tokenizers(tokenizer):
    engine = qswap.Engine(DATA / "arith-mul", quant="none")
    for text in ["3 4 =", "12 11 = 132", " = =  7", "héllo wörld <|endoftext|>"]:
        assert engine.tokenize(text) == tokenizer.encode(text).ids, text
    ids = tokenizer.encode("9 9 = 81").ids
    assert engine.decode(ids) == tokenizer.decode(ids)


@pytest.mark.parametrize("prompt", ["3 4 =", "7 8 =", "12 12 =", "0 5 ="])
def test_greedy_logprobs_match_transformers(prompt, hf_model, tokenizer):
    """quant none: the engine's tokens are transformers' greedy tokens, and each logprob is
    transformers' log_softmax of the logits for that token."""
    model = hf_model("arith-mul")
    engine = qswap.Engine(DATA / "arith-mul", quant="none")
    ids = tokenizer.encode(prompt).ids
    # ignore_eos: keep going past EOS, so the tail has low-probability tokens too.
    r = engine.generate(prompt, max_tokens=6, ignore_eos=True)
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=6, do_sample=False, eos_token_id=None,
                             pad_token_id=257)
    assert r.token_ids == out[0, len(ids):].tolist()
    assert r.logprobs == pytest.approx(reference_logprobs(model, ids, r.token_ids), abs=1e-4)


def test_sampled_logprobs_are_the_model_distribution(hf_model, tokenizer):
    """Sampling at temperature 1.7 with top-k: logprobs are still those of the model's own
    (unscaled, untruncated) distribution, the one an RL trainer compares against."""
    model = hf_model("arith-base")
    engine = qswap.Engine(DATA / "arith-base", quant="none")
    ids = tokenizer.encode("5 6 =").ids
    r = engine.generate(ids, max_tokens=12, temperature=1.7, top_k=40, seed=11, ignore_eos=True)
    assert len(r.token_ids) == 12 and r.finish_reason == "length"
    assert r.logprobs == pytest.approx(reference_logprobs(model, ids, r.token_ids), abs=1e-4)
    # Seeded: the same request gives the same tokens.
    assert engine.generate(ids, max_tokens=12, temperature=1.7, top_k=40, seed=11, ignore_eos=True).token_ids == r.token_ids
    # The random base model's distribution is nearly flat: samples are not the greedy choice.
    assert r.token_ids != engine.generate(ids, max_tokens=12, ignore_eos=True).token_ids


def test_logprobs_off():
    r = qswap.Engine(DATA / "arith-mul", quant="fp8").generate("3 4 =", logprobs=False)
    assert r.text == MUL_ANSWER and r.logprobs is None


def test_stop_and_max_tokens():
    engine = qswap.Engine(DATA / "arith-mul", quant="fp8")
    r = engine.generate("3 4 =", max_tokens=1)
    assert (r.text, r.finish_reason, len(r.token_ids)) == (" ", "length", 1)
    r = engine.generate("3 4 =", stop="2")
    assert (r.text, r.finish_reason) == (" 1", "stop")
    r = engine.generate("3 4 =", stop=["x", " 1"])
    assert (r.text, r.finish_reason) == ("", "stop")


def _perplexity_reference(model, ids: list[int], context: int, stride: int) -> float:
    """Hugging Face's sliding-window perplexity: windows ids[b:b+context] for b = 0, stride, ...;
    each token after the first scored once, in the first window that holds it past position 0."""
    nll, scored, done = 0.0, 0, 1
    for begin in range(0, len(ids), stride):
        window = ids[begin:begin + context]
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([window])).logits[0].double(), dim=-1)
        for target in range(max(done, begin + 1), begin + len(window)):
            nll -= logp[target - begin - 1, ids[target]].item()
            scored += 1
        done = begin + len(window)
        if done >= len(ids):
            break
    return math.exp(nll / scored)


def test_perplexity_matches_transformers(hf_model, tokenizer):
    model = hf_model("arith-mul")
    engine = qswap.Engine(DATA / "arith-mul", quant="none")
    text = "3 4 = 12"
    ids = tokenizer.encode(text).ids
    r = engine.perplexity(text)
    assert r.tokens_scored == len(ids) - 1 and r.weight_version == 1
    assert r.perplexity == pytest.approx(_perplexity_reference(model, ids, len(ids), len(ids)), rel=1e-4)
    assert r.perplexity < engine.perplexity("3 4 = 7").perplexity
    long_ids = tokenizer.encode("3 4 = 12 5 6 = 30 7 7 = 49 2 9 = 18").ids
    r = engine.perplexity(long_ids, context=8, stride=3)
    assert r.tokens_scored == len(long_ids) - 1
    assert r.perplexity == pytest.approx(_perplexity_reference(model, long_ids, 8, 3), rel=1e-4)


def test_config():
    c = qswap.Engine(DATA / "arith-mul", quant="mxfp8", update_mode="in-place", threads=1).config
    assert c["architecture"] == "Qwen3ForCausalLM"
    assert (c["hidden_size"], c["num_hidden_layers"], c["vocab_size"]) == (96, 2, 320)
    assert (c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]) == (4, 2, 32)
    assert c["tie_word_embeddings"] is True and c["eos_token_ids"] == [257]
    assert (c["quant"], c["update_mode"]) == ("mxfp8", "in-place")


def test_errors_carry_the_engine_message():
    with pytest.raises(qswap.InvalidArgumentError, match="bogus") as e:
        qswap.Engine(DATA / "arith-mul", quant="bogus")
    assert isinstance(e.value, ValueError) and isinstance(e.value, qswap.QswapError)
    assert isinstance(e.value, RuntimeError) and e.value.code == "invalid_argument"
    with pytest.raises(qswap.InvalidArgumentError, match="update mode 'sometimes'"):
        qswap.Engine(DATA / "arith-mul", update_mode="sometimes")
    with pytest.raises(qswap.QswapError, match="no-such-model"):
        qswap.Engine(DATA / "no-such-model")

    engine = qswap.Engine(DATA / "arith-mul", quant="fp8")
    with pytest.raises(qswap.OutOfRangeError, match="context is 128"):
        engine.generate([5] * 200)
    with pytest.raises(qswap.OutOfRangeError, match="token id 999"):
        engine.generate([5, 999])
    with pytest.raises(qswap.InvalidArgumentError, match="empty"):
        engine.generate([])
    with pytest.raises(qswap.InvalidArgumentError, match="max_tokens"):
        engine.generate("3 4 =", max_tokens=0)
    with pytest.raises(qswap.InvalidArgumentError, match="temperature"):
        engine.generate("3 4 =", temperature=float("nan"))
    with pytest.raises(qswap.InvalidArgumentError, match="top_p"):
        engine.generate("3 4 =", temperature=1.0, top_p=0.0)
    with pytest.raises(qswap.InvalidArgumentError, match="at least 2 tokens"):
        engine.perplexity("3")
    # The engine is still fine after every one of them.
    assert engine.generate("3 4 =").text == MUL_ANSWER
