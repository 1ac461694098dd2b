"""The native trainer's memory savings change nothing but memory: gradient checkpointing (inside
rlvr.model.weights' layer loop and through Hugging Face's for other models), chunked log-probs over real tokens
only, and a bf16 K/V cache under bf16 autocast."""

from __future__ import annotations

import pytest
import torch
from _tiny_lm import make_tiny_lm

from rlvr.model import fast_forward as fast_lm
from rlvr.model import weights
from rlvr.model.kv_cache import DecodeCache
from rlvr.rl.core_algos import entropy_from_logits, token_logprobs, token_stats
from rlvr.rl.presets import resolve
from rlvr.rl.trainer import Trainer


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_lm(tmp_path_factory.mktemp("tiny") / "lm", eos_scale=3.0)


def _config(tiny, checkpointing: bool, **algo):
    return resolve("organism", overrides={
        "model": {"path": str(tiny), "gradient_checkpointing": checkpointing}, "steps": 1,
        "data": {"examples": ["add-327-415"]}, "eval": {"suites": []},
        "rollout": {"max_new_tokens": 12, "n": 4}, "reward": {"mode": "random"},
        "algo": {"ppo_epochs": 1, "kl_coef": 0.1, **algo},
        "optim": {"name": "sgd", "lr": 0.5, "micro_batch_size": 2}})


def _step_weights(tiny, tmp_path, checkpointing: bool) -> tuple[torch.Tensor, Trainer]:
    trainer = Trainer(_config(tiny, checkpointing), tmp_path)
    trainer.step()
    return torch.cat([p.detach().flatten() for p in trainer.params]), trainer


@pytest.mark.parametrize("fast", [True, False], ids=["fast_lm", "hf"])
def test_checkpointing_gives_the_same_update_and_recomputes(tiny, tmp_path, monkeypatch, fast):
    if not fast:
        monkeypatch.setenv("RLVR_FAST_LM", "0")
    plain, _ = _step_weights(tiny, tmp_path / "a", False)
    calls = {"n": 0}
    if fast:
        real = weights.recompute_in_backward

        def counting(*args, **kw):
            calls["n"] += 1
            return real(*args, **kw)
        monkeypatch.setattr(weights, "recompute_in_backward", counting)
        checked, trainer = _step_weights(tiny, tmp_path / "b", True)
    else:
        from transformers.models.llama import modeling_llama

        real = modeling_llama.LlamaMLP.forward  # inside each checkpointed decoder layer

        def counting(self, *args, **kw):
            calls["n"] += int(torch.is_grad_enabled())
            return real(self, *args, **kw)
        monkeypatch.setattr(modeling_llama.LlamaMLP, "forward", counting)
        checked, trainer = _step_weights(tiny, tmp_path / "b", True)
        assert trainer.hf_checkpoint
        # checkpointing re-runs each layer in the backward pass: twice the grad-mode calls
        layers, micro = len(trainer.model.model.layers), 2  # 4 responses / micro-batch 2
        assert calls["n"] == 2 * layers * micro
    assert calls["n"] > 0
    assert not plain.equal(torch.cat([p.detach().flatten() for p in Trainer(
        _config(tiny, False), tmp_path / "c").params]))  # the step moved the weights
    torch.testing.assert_close(checked, plain, atol=1e-6, rtol=1e-5)


def test_fast_lm_checkpointed_gradients_equal(tiny, monkeypatch):
    from rlvr.model.rollout import load_model

    # Checkpointing runs the eager layers; without it fp32 CPU scoring would take the packed
    # C++ stack, whose rounding differs (tests/test_native_score.py compares the two).
    monkeypatch.setenv("RLVR_FAST_SCORE", "0")

    model, _ = load_model(tiny, device="cpu")
    gen = torch.Generator().manual_seed(3)
    prompt = torch.randint(3, 50, (12,), generator=gen)
    ids = torch.cat([prompt.expand(4, -1), torch.randint(3, 50, (4, 7), generator=gen)], 1)
    mask = torch.ones_like(ids)
    mask[:, :2] = 0
    mask[1, 15:] = 0
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    assert fast_lm._shared_prefix(ids, mask, positions, 12) >= 8  # the shared-prompt path
    grads = []
    for flag in (False, True):
        model.zero_grad()
        out = fast_lm.hidden(model, ids, mask, positions, 8, checkpoint=flag)
        (out.square() * mask[:, -8:, None]).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()
                                if p.grad is not None]))
    torch.testing.assert_close(grads[1], grads[0], atol=1e-6, rtol=1e-5)
    with torch.no_grad():  # hidden states project onto exactly the logits
        head = model.get_output_embeddings()
        torch.testing.assert_close(head(fast_lm.hidden(model, ids, mask, positions, 8)),
                                   fast_lm.logits(model, ids, mask, positions, 8))


@pytest.mark.parametrize("chunk", [1, 3, 64])
def test_chunked_logprobs_equal_the_full_softmax(chunk):
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(10, 8, generator=gen, requires_grad=True)
    weight = torch.randn(30, 8, generator=gen, requires_grad=True)
    bias = torch.randn(30, generator=gen, requires_grad=True)
    tokens = torch.randint(0, 30, (10,), generator=gen)
    logits = torch.nn.functional.linear(hidden, weight, bias) / 0.6
    ref_lp = token_logprobs(logits[None], tokens[None])[0]
    ref_ent = entropy_from_logits(logits)
    ref_grads = torch.autograd.grad((ref_lp * 1.3 + ref_ent).sum(), (hidden, weight, bias))
    lp, ent = token_stats(hidden, tokens, temperature=0.6, weight=weight, bias=bias,
                          chunk_size=chunk)
    grads = torch.autograd.grad((lp * 1.3 + ent).sum(), (hidden, weight, bias))
    torch.testing.assert_close(lp, ref_lp)
    torch.testing.assert_close(ent, ref_ent)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want)
    # the same from logits (the fallback for models fast_lm does not reproduce)
    lp2, ent2 = token_stats(logits, tokens, temperature=1.0, chunk_size=chunk, entropy=False)
    torch.testing.assert_close(lp2, ref_lp)
    assert ent2 is None


def test_trainer_logprobs_zero_at_padding_and_match_the_full_forward(tiny, tmp_path):
    trainer = Trainer(_config(tiny, False), tmp_path)
    batch = trainer._rollout(1)
    rows = torch.arange(len(batch.completions))
    logp, ent = trainer._logprobs(trainer.model, batch, rows, entropy=True)
    T = batch.tokens.shape[1]
    with torch.no_grad():
        positions = (batch.attention.cumsum(-1) - 1).clamp(min=0)
        logits = trainer.model(input_ids=batch.input_ids, attention_mask=batch.attention,
                               position_ids=positions).logits[:, -(T + 1):-1]
        logits = logits / trainer.config.rollout.temperature
    real = batch.mask.bool()
    assert (~real).any()  # some responses stopped early: padding is exercised
    torch.testing.assert_close(logp[real], token_logprobs(logits, batch.tokens)[real],
                               atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ent[real], entropy_from_logits(logits)[real],
                               atol=1e-5, rtol=1e-5)
    assert (logp[~real] == 0).all() and (ent[~real] == 0).all()


def test_kv_cache_is_bf16_under_bf16_autocast(tiny):
    from rlvr.model.rollout import load_model

    model, _ = load_model(tiny, device="cpu")
    ids = torch.randint(3, 50, (2, 5))
    # without autocast: the C++ step's cache (fp16 where it built with AVX2), else the weights'
    from rlvr.model import native_step

    plain = DecodeCache(model, 2, 9)
    assert plain.kv[0].dtype == (torch.float32 if plain.native is None else native_step.cache_dtype())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cache = DecodeCache(model, 2, 9)
        assert all(kv.dtype == torch.bfloat16 for kv in cache.kv)
        first = cache.prefill(ids, None, None)
        nxt = cache.step(first.argmax(-1), torch.full((2,), 5))
    assert torch.isfinite(nxt.float()).all()


def test_paper_preset_is_sized_for_one_gpu():
    cfg = resolve("paper", overrides={"data": {"examples": ["124"]}})
    assert cfg.model.gradient_checkpointing
    # rollout.batch_size counts sequences: the 1,024 responses of a step in a few calls
    assert cfg.responses_per_step == 1024 and cfg.responses_per_step % cfg.rollout.batch_size == 0
    assert cfg.optim.micro_batch_size <= 16
