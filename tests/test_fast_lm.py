"""rlvr.model.fast_forward and rlvr.model.kv_cache reproduce the Hugging Face forward: logits,
gradients, incremental decoding."""

from __future__ import annotations

import pytest
import torch

from rlvr.model import fast_forward as fast_lm
from rlvr.model.kv_cache import DecodeCache

VOCAB = 40


def _llama(**kw):
    from transformers import LlamaConfig, LlamaForCausalLM

    base = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128)
    return LlamaForCausalLM(LlamaConfig(**{**base, **kw}))


def _qwen2(**kw):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    base = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    return Qwen2ForCausalLM(Qwen2Config(**{**base, **kw}))


MODELS = {
    "llama-untied": lambda: _llama(tie_word_embeddings=False),
    "llama-gqa-bias-tied": lambda: _llama(num_key_value_heads=2, attention_bias=True,
                                          mlp_bias=True, tie_word_embeddings=True),
    "llama-llama3-rope-mqa": lambda: _llama(num_key_value_heads=1, rope_parameters={
        "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 16}),
    "qwen2-gqa-tied": lambda: _qwen2(tie_word_embeddings=True),
    "qwen2-untied": lambda: _qwen2(tie_word_embeddings=False, num_key_value_heads=4),
}


def _model(name: str, seed: int = 0):
    torch.manual_seed(seed)
    model = MODELS[name]()
    with torch.no_grad():  # biases start at zero: make them matter
        for param in model.parameters():
            if param.dim() == 1:
                param.add_(0.1 * torch.randn_like(param))
    return model


def _batch(seed: int = 1, pads=((0, 0), (3, 0), (9, 0), (5, 0), (0, 4), (2, 6)), width=10):
    """Rows (left pad, right pad): prompts of unequal length, responses stopped early, and a
    row of a single token. Right-padded rows exercise the length buckets of `logits`."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (len(pads), width), generator=gen)
    mask = torch.ones(len(pads), width, dtype=torch.long)
    for row, (left, right) in enumerate(pads):
        mask[row, :left] = 0
        mask[row, width - right:] = 0
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids, mask, positions


def _group_batch(seed: int = 5):
    """A GRPO group: one left-padded prompt shared by every row, responses of unequal length
    (right padded), the first two rows agreeing on their first response tokens too."""
    gen = torch.Generator().manual_seed(seed)
    prompt = torch.randint(0, VOCAB, (12,), generator=gen)
    ids = torch.cat([prompt.expand(5, -1), torch.randint(0, VOCAB, (5, 8), generator=gen)], 1)
    ids[1, 12:15] = ids[0, 12:15]
    mask = torch.ones_like(ids)
    mask[:, :2] = 0
    for row, length in enumerate([8, 3, 6, 1, 8]):
        mask[row, 12 + length:] = 0
    return ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)


@pytest.mark.parametrize("name", ["llama-gqa-bias-tied", "qwen2-untied"])
def test_shared_prompt_logits_equal_hf(name):
    model = _model(name).eval()
    ids, mask, positions = _group_batch()
    assert fast_lm._shared_prefix(ids, mask, positions, 12) >= 8  # the shared path runs
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
        for keep in (0, 9, 3):
            out = fast_lm.logits(model, ids, mask, positions, logits_to_keep=keep)
            real = mask.bool()[:, -keep:] if keep else mask.bool()
            part = ref[:, -keep:] if keep else ref
            assert out.shape == part.shape and torch.isfinite(out).all()
            torch.testing.assert_close(out[real], part[real], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_logits_equal_hf(name):
    model = _model(name).eval()
    assert fast_lm.supports(model)
    ids, mask, positions = _batch()
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
        out = fast_lm.logits(model, ids, mask, positions)
        kept = fast_lm.logits(model, ids, mask, positions, logits_to_keep=3)
        plain = fast_lm.logits(model, ids)  # no padding, positions 0..S-1
        plain_ref = model(input_ids=ids).logits
    real = mask.bool()
    assert out.shape == ref.shape and torch.isfinite(out).all()
    torch.testing.assert_close(out[real], ref[real], atol=1e-5, rtol=1e-5)
    window = real[:, -3:]
    torch.testing.assert_close(kept[window], out[:, -3:][window], atol=1e-6, rtol=1e-6)
    assert torch.isfinite(kept).all()
    torch.testing.assert_close(plain, plain_ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("batch", ["mixed", "group"])
@pytest.mark.parametrize("name", ["llama-gqa-bias-tied", "qwen2-gqa-tied"])
def test_gradients_equal_hf(name, batch):
    ids, mask, positions = _batch(seed=2) if batch == "mixed" else _group_batch(seed=2)
    weights = torch.randn(ids.shape + (VOCAB,), generator=torch.Generator().manual_seed(3))

    def grads(use_fast: bool):
        model = _model(name).train()
        if use_fast:
            logits = fast_lm.logits(model, ids, mask, positions)
        else:
            logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
        # A loss over real positions only, as the trainer's (pad positions are masked by 0).
        loss = (logits.log_softmax(-1) * weights * mask[..., None]).sum()
        loss.backward()
        return {n: p.grad for n, p in model.named_parameters()}

    fast, ref = grads(True), grads(False)
    assert fast.keys() == ref.keys()
    for key in ref:
        assert fast[key] is not None and torch.isfinite(fast[key]).all(), key
        torch.testing.assert_close(fast[key], ref[key], atol=1e-4, rtol=1e-4, msg=key)


@pytest.mark.parametrize("name", ["llama-gqa-bias-tied", "qwen2-untied"])
def test_decode_equals_full_forward(name, monkeypatch):
    # to float rounding on an fp32 cache; the C++ step's default fp16 cache is held to its
    # own tolerance in tests/test_native_step.py
    monkeypatch.setenv("RLVR_HALF_CACHE", "0")
    model = _model(name).eval()
    ids, mask, positions = _batch(seed=4, pads=((0, 0), (3, 0), (8, 0), (5, 0), (3, 0)), width=9)
    ids[4] = ids[1]  # a second sample of the same prompt: prefilled once, decoded apart
    steps = 5
    cache = DecodeCache(model, ids.shape[0], ids.shape[1] + steps)
    with torch.inference_mode():
        logits = cache.prefill(ids, mask, positions)
        position = positions[:, -1]
        for step in range(steps):
            ref = model(input_ids=ids, attention_mask=mask,
                        position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits[:, -1]
            torch.testing.assert_close(logits, ref, atol=1e-5, rtol=1e-5)
            token = logits.argmax(-1)
            if step == 2:  # drop a row and reorder the rest, as rollout does
                keep = torch.tensor([3, 0, 4, 2])
                cache.select_rows(keep)
                token, position, ids, mask = token[keep], position[keep], ids[keep], mask[keep]
            ids = torch.cat([ids, token[:, None]], dim=1)
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            position = position + 1
            logits = cache.step(token, position)


def test_rope_table_follows_the_model_device_and_buffers():
    model = _model("llama-untied").eval()
    ids = torch.randint(0, VOCAB, (2, 5))
    with torch.no_grad():
        before = fast_lm.logits(model, ids)
        rotary = model.model.rotary_emb
        rotary.inv_freq = rotary.inv_freq * 2  # a new object: the cached table is stale
        after = fast_lm.logits(model, ids)
        ref = model(input_ids=ids).logits
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, ref, atol=1e-5, rtol=1e-5)


def test_unsupported_models_fall_back(tmp_path):
    from _tiny_lm import make_char_tokenizer
    from transformers import GPT2Config, GPT2LMHeadModel

    from rlvr.model.rollout import SamplingParams, generate

    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_embd=16, n_layer=1, n_head=2,
                                      bos_token_id=0, eos_token_id=1)).eval()
    dynamic = _llama(rope_parameters={"rope_type": "dynamic", "rope_theta": 10000.0,
                                      "factor": 2.0})
    gelu = _llama(hidden_act="gelu")
    sliding = _qwen2(use_sliding_window=True, sliding_window=4, max_window_layers=0)
    for model in (gpt2, dynamic, gelu, sliding):
        assert not fast_lm.supports(model), type(model).__name__
    ids = torch.randint(0, VOCAB, (2, 4))
    torch.testing.assert_close(fast_lm.forward_logits(gpt2, ids), gpt2(input_ids=ids).logits)
    tokenizer = make_char_tokenizer()
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_embd=16, n_layer=1,
                                       n_head=2, eos_token_id=tokenizer.eos_token_id))
    out = generate(model, tokenizer, ["ab", "abc"],
                   SamplingParams(temperature=1.0, max_new_tokens=4, n=2, seed=0))
    assert len(out) == 4 and all(len(c.token_ids) >= 1 for c in out)


def test_env_var_disables_the_fast_path(monkeypatch):
    model = _model("llama-untied")
    assert fast_lm.supports(model)
    monkeypatch.setenv("RLVR_FAST_LM", "0")
    assert not fast_lm.supports(model)


def test_rollout_is_the_same_with_and_without_the_fast_path(monkeypatch, tmp_path):
    from _tiny_lm import make_tiny_lm

    from rlvr.model.rollout import SamplingParams, generate, load_model

    model, tokenizer = load_model(make_tiny_lm(tmp_path / "lm", eos_scale=1.5), device="cpu")
    prompts = ["1+1=", "what is 12*3?", "x"]
    params = SamplingParams(temperature=1.0, max_new_tokens=12, n=3, seed=7)
    fast = generate(model, tokenizer, prompts, params)
    monkeypatch.setenv("RLVR_FAST_LM", "0")
    slow = generate(model, tokenizer, prompts, params)
    assert [c.token_ids for c in fast] == [c.token_ids for c in slow]
    assert {c.finish_reason for c in fast} == {"stop", "length"}  # rows dropped mid-batch
