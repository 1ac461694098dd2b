"""Rollout: greedy parity with model.generate, seeded sampling, order, finish reasons, errors."""

from __future__ import annotations

import pytest
import torch
from _tiny_lm import make_tiny_lm

from rlvr.errors import UserError
from rlvr.model.decode import choose, row_keys
from rlvr.model.rollout import SamplingParams, generate, load_model

PROMPTS = ["What is 2+3?", "x", "Compute the sum of 17 and 25, then divide by 6.", "abc def"]


@pytest.fixture(scope="module")
def never_stops(tmp_path_factory):
    return load_model(make_tiny_lm(tmp_path_factory.mktemp("lm0"), eos_scale=0.0))


@pytest.fixture(scope="module")
def often_stops(tmp_path_factory):
    return load_model(make_tiny_lm(tmp_path_factory.mktemp("lm3"), seed=1, eos_scale=2.0))


def _reference_greedy(model, tokenizer, prompts, max_new_tokens):
    enc = tokenizer(prompts, return_tensors="pt", padding=True)
    out = model.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    rows = []
    for row in out[:, enc["input_ids"].shape[1]:].tolist():
        if tokenizer.eos_token_id in row:
            row = row[:row.index(tokenizer.eos_token_id) + 1]
        rows.append(tuple(row))
    return rows


@pytest.mark.parametrize("which", ["never_stops", "often_stops"])
def test_greedy_equals_model_generate(which, request):
    model, tokenizer = request.getfixturevalue(which)
    ours = generate(model, tokenizer, PROMPTS, SamplingParams(temperature=0, max_new_tokens=30),
                    batch_size=3)
    reference = _reference_greedy(model, tokenizer, PROMPTS, 30)
    assert [c.token_ids for c in ours] == reference


def test_finish_reasons_and_eos_handling(often_stops, never_stops):
    model, tokenizer = often_stops
    out = generate(model, tokenizer, PROMPTS * 3, SamplingParams(temperature=1.0, max_new_tokens=25,
                                                                 n=2, seed=3))
    reasons = {c.finish_reason for c in out}
    assert reasons == {"stop", "length"}, "fixture should give mixed finish reasons"
    eos = tokenizer.eos_token_id
    for c in out:
        if c.finish_reason == "stop":
            assert c.token_ids[-1] == eos and eos not in c.token_ids[:-1]
            assert c.text == tokenizer.decode(list(c.token_ids[:-1]), skip_special_tokens=True)
        else:
            assert len(c.token_ids) == 25 and eos not in c.token_ids
        assert "<eos>" not in c.text and "<pad>" not in c.text
    model, tokenizer = never_stops
    out = generate(model, tokenizer, PROMPTS, SamplingParams(temperature=0, max_new_tokens=7))
    assert all(c.finish_reason == "length" and len(c.token_ids) == 7 for c in out)


def test_prompt_major_order_and_count(often_stops):
    model, tokenizer = often_stops
    out = generate(model, tokenizer, PROMPTS, SamplingParams(max_new_tokens=5, n=3))
    assert [(c.prompt_index, c.sample_index) for c in out] == [
        (i, s) for i in range(len(PROMPTS)) for s in range(3)]


def test_sampling_is_seeded_and_batch_invariant(often_stops):
    model, tokenizer = often_stops
    params = SamplingParams(temperature=1.0, max_new_tokens=20, n=3, seed=7)
    a = generate(model, tokenizer, PROMPTS, params, batch_size=64)
    b = generate(model, tokenizer, PROMPTS, params, batch_size=2)
    assert a == b
    assert len({c.token_ids for c in a}) > len(PROMPTS)  # samples of one prompt differ
    c = generate(model, tokenizer, PROMPTS, SamplingParams(temperature=1.0, max_new_tokens=20,
                                                           n=3, seed=8))
    assert [x.token_ids for x in a] != [x.token_ids for x in c]


def test_greedy_samples_are_copies_and_tiny_top_p_is_greedy(never_stops):
    model, tokenizer = never_stops
    greedy = generate(model, tokenizer, PROMPTS, SamplingParams(temperature=0, max_new_tokens=12,
                                                                n=2))
    assert [c.text for c in greedy[0::2]] == [c.text for c in greedy[1::2]]
    nucleus = generate(model, tokenizer, PROMPTS, SamplingParams(temperature=1.0, top_p=1e-6,
                                                                 max_new_tokens=12, n=2, seed=1))
    assert [c.token_ids for c in nucleus] == [c.token_ids for c in greedy]


def test_gumbel_sampling_matches_softmax():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]]).repeat(20000, 1)
    keys = row_keys(0, [(i, 0) for i in range(20000)], "cpu")
    for temperature in (1.0, 0.5):
        params = SamplingParams(temperature=temperature, max_new_tokens=1)
        picks = choose(logits, params, keys, step=0)
        freq = torch.bincount(picks, minlength=4).double() / len(picks)
        expected = (logits[0] / temperature).softmax(-1).double()
        assert torch.allclose(freq, expected, atol=0.015), (freq, expected)
    picks = choose(logits, SamplingParams(temperature=1.0, top_p=0.8, max_new_tokens=1), keys,
                   step=3)
    freq = torch.bincount(picks, minlength=4).double() / len(picks)
    top2 = logits[0, :2].softmax(-1).double()
    assert freq[2:].sum() == 0 and torch.allclose(freq[:2], top2, atol=0.015)


def test_training_mode_is_restored(never_stops):
    model, tokenizer = never_stops
    model.train()
    try:
        generate(model, tokenizer, PROMPTS[:1], SamplingParams(max_new_tokens=2))
        assert model.training
    finally:
        model.eval()


def test_load_model_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_model(tmp_path / "missing")
    with pytest.raises(UserError, match="config.json"):
        load_model(tmp_path)


def test_backend_choice(never_stops):
    model, tokenizer = never_stops
    params = SamplingParams(temperature=0, max_new_tokens=3)
    with pytest.raises(UserError, match="unknown backend"):
        generate(model, tokenizer, PROMPTS, params, backend="tpu")
    try:
        import vllm  # noqa: F401
        has_vllm = torch.cuda.is_available()
    except ImportError:
        has_vllm = False
    if not has_vllm:
        with pytest.raises(UserError, match="vllm"):
            generate(model, tokenizer, PROMPTS, params, backend="vllm")
        auto = generate(model, tokenizer, PROMPTS, params, backend="auto")
        assert auto == generate(model, tokenizer, PROMPTS, params, backend="hf")


def test_bad_params():
    with pytest.raises(UserError):
        SamplingParams(temperature=-1, max_new_tokens=8)
    with pytest.raises(UserError):
        SamplingParams(top_p=0, max_new_tokens=8)
    with pytest.raises(UserError):
        SamplingParams(n=0, max_new_tokens=8)
    with pytest.raises(UserError, match="max_new_tokens must be >= 1"):
        SamplingParams(max_new_tokens=0)
    with pytest.raises(TypeError):  # no default length: a preset or a protocol gives one
        SamplingParams(temperature=1.0)  # type: ignore[call-arg]


def test_vllm_backend_maps_outputs_with_a_stub(monkeypatch, tmp_path, never_stops):
    """The vLLM adaptor's bookkeeping (order, seeds, finish reasons), with vllm stubbed out."""
    import sys
    import types

    import rlvr.model.vllm_backend as vllm_backend

    made = []

    shut = []

    class LLM:
        def __init__(self, model, seed, gpu_memory_utilization, dtype):
            assert dtype == "bfloat16"  # our fp32 checkpoints run as trained, not in fp16
            made.append(model)
            self.model = model

        def shutdown(self):
            shut.append(self.model)

        def generate(self, prompts, params, use_tqdm):
            self.params = params
            return [types.SimpleNamespace(outputs=[types.SimpleNamespace(
                text=f"{p}/{s}", token_ids=[s, 7], finish_reason="stop" if s == 0 else "length")
                for s in range(sp.n)]) for p, sp in zip(prompts, params, strict=True)]

    stub = types.SimpleNamespace(LLM=LLM, SamplingParams=lambda **kw: types.SimpleNamespace(**kw))
    monkeypatch.setitem(sys.modules, "vllm", stub)
    monkeypatch.setattr(vllm_backend, "available", lambda: True)
    monkeypatch.setattr(vllm_backend, "_ENGINE", {})
    _, tokenizer = never_stops
    model = types.SimpleNamespace(name_or_path=str(tmp_path))
    params = SamplingParams(temperature=1.0, n=2, seed=3, max_new_tokens=256)
    out = generate(model, tokenizer, ["a", "b"], params, backend="auto", key_offset=10)
    assert [(c.prompt_index, c.sample_index, c.text, c.finish_reason) for c in out] == [
        (0, 0, "a/0", "stop"), (0, 1, "a/1", "length"), (1, 0, "b/0", "stop"),
        (1, 1, "b/1", "length")]
    engine = vllm_backend._ENGINE[str(tmp_path)]
    assert [p.seed for p in engine.params] == [3 * 1_000_003 + 10, 3 * 1_000_003 + 11]
    greedy = generate(model, tokenizer, ["a"], SamplingParams(temperature=0, n=3,
                                                          max_new_tokens=256), backend="vllm")
    assert [c.text for c in greedy] == ["a/0"] * 3 and made == [str(tmp_path)]
    with pytest.raises(UserError, match="local folder"):
        generate(types.SimpleNamespace(name_or_path=""), tokenizer, ["a"], params,
                 backend="vllm")
    # the next checkpoint's engine starts only after the previous one was shut down
    other = tmp_path / "step-2"
    other.mkdir()
    generate(types.SimpleNamespace(name_or_path=str(other)), tokenizer, ["a"], params,
             backend="vllm")
    assert made == [str(tmp_path), str(other)] and shut == [str(tmp_path)]
    vllm_backend.release()
    assert shut == [str(tmp_path), str(other)] and not vllm_backend._ENGINE
