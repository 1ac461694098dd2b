"""rlvr.model.native_score: the packed C++ scoring forward + backward equals the eager fused
forward (logits, log-probs, every parameter's gradient), and its absence (disabled, or no
compiler) leaves the eager forward in place."""

from __future__ import annotations

import pytest
import torch
from test_fast_lm import MODELS, VOCAB, _batch, _group_batch, _llama, _model

from rlvr.model import fast_forward as fast_lm
from rlvr.model import native_score
from rlvr.model.policy import response_stats

needs_build = pytest.mark.skipif(native_score.kernels() is None,
                                 reason="no C++ compiler for the native scoring forward")

# Gradients, elementwise against the eager forward's: rtol 1e-4 and an atol of 1e-5 of the
# tensor's largest gradient (float rounding of another summation order; on the trained
# organism, whose gradients reach ~70, both paths are ~1e-4 from a float64 reference).
RTOL, ATOL_OF_MAX = 1e-4, 1e-5
MORE = {
    # head_dim 6: not a multiple of 8, the plain-loop attention instead of the AVX2 one
    "llama-head-dim-6": lambda: _llama(hidden_size=24, num_key_value_heads=2),
}


def _make(name: str):
    return (MORE.get(name) or MODELS[name])


def _scored(model, ids, mask, positions, native: bool, monkeypatch):
    """Logits (no grad) and the trainer's loss gradients (log-probs and entropy of the
    real tokens through `response_stats`) of one path."""
    monkeypatch.setenv("RLVR_FAST_SCORE", "1" if native else "0")
    with torch.no_grad():
        logits = fast_lm.logits(model, ids, mask, positions)
    T = ids.shape[1] // 2
    # scored tokens follow a real token (as responses follow their prompt): the hidden state
    # at a pad is meaningless (zero here, the pad's own attention in the eager forward)
    real = (mask[:, -T:] * mask[:, -T - 1:-1]).bool()
    model.zero_grad(set_to_none=True)
    logp, ent = response_stats(model, ids, mask, ids[:, -T:], real, temperature=0.7,
                               entropy=True)
    weights = torch.linspace(-1, 1, logp.numel()).view_as(logp)
    ((logp * weights).sum() + 0.1 * ent.sum()).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    return logits, logp.detach(), grads


def _compare(model, ids, mask, positions, monkeypatch):
    fast = _scored(model, ids, mask, positions, True, monkeypatch)
    eager = _scored(model, ids, mask, positions, False, monkeypatch)
    real = mask.bool()
    torch.testing.assert_close(fast[0][real], eager[0][real], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast[1], eager[1], atol=1e-5, rtol=1e-5)
    assert fast[2].keys() == eager[2].keys()
    for key, want in eager[2].items():
        assert torch.isfinite(fast[2][key]).all(), key
        atol = max(ATOL_OF_MAX * float(want.abs().max()), 1e-7)
        torch.testing.assert_close(fast[2][key], want, rtol=RTOL, atol=atol, msg=key)


@needs_build
@pytest.mark.parametrize("batch", ["padded-both-sides", "shared-prompt"])
@pytest.mark.parametrize("name", sorted(MODELS) + sorted(MORE))
def test_native_scoring_equals_the_eager_forward(name, batch, monkeypatch):
    torch.manual_seed(0)
    model = _make(name)()
    with torch.no_grad():  # biases start at zero: make them matter
        for param in model.parameters():
            if param.dim() == 1:
                param.add_(0.1 * torch.randn_like(param))
    ids, mask, positions = _batch(seed=2) if batch == "padded-both-sides" else _group_batch()
    _compare(model.train(), ids, mask, positions, monkeypatch)


@needs_build
@pytest.mark.parametrize("name", ["llama-gqa-bias-tied", "llama-head-dim-6"])
def test_attention_probabilities_recomputed_when_too_many_to_keep(name, monkeypatch):
    # the organism's few are kept from the forward; a model with long prompts has too many,
    # and the backward recomputes them from the scores: 0 forces that path here
    monkeypatch.setattr(native_score, "KEPT_PROBABILITIES", 0)
    torch.manual_seed(1)
    ids, mask, positions = _group_batch()
    _compare(_make(name)().train(), ids, mask, positions, monkeypatch)


@needs_build
def test_the_organism_and_another_tokenizer_score_the_same(monkeypatch, tmp_path):
    from _tiny_lm import make_tiny_lm

    from rlvr.model.rollout import load_model
    from rlvr.organism import default_path

    for folder in (default_path(), make_tiny_lm(tmp_path / "lm")):
        model, _ = load_model(folder, device="cpu")
        vocab = model.config.vocab_size
        gen = torch.Generator().manual_seed(4)
        # a GRPO group: one left-padded prompt, responses stopped at scattered lengths
        prompt = torch.randint(3, vocab, (9,), generator=gen)
        ids = torch.cat([prompt.expand(6, -1), torch.randint(3, vocab, (6, 12), generator=gen)], 1)
        mask = torch.ones_like(ids)
        mask[:, :2] = 0
        for row, length in enumerate([12, 5, 9, 1, 12, 3]):
            mask[row, 9 + length:] = 0
        _compare(model.train(), ids, mask, (mask.cumsum(-1) - 1).clamp(min=0), monkeypatch)


@needs_build
def test_windows_no_mask_and_inference_mode_agree(monkeypatch):
    model = _model("qwen2-gqa-tied").eval()
    ids, mask, positions = _group_batch()
    with torch.no_grad():
        out = {keep: fast_lm.logits(model, ids, mask, positions, keep) for keep in (0, 1, 7)}
        plain = fast_lm.logits(model, ids)
        states = fast_lm.hidden(model, ids, mask, positions, 5)
        monkeypatch.setenv("RLVR_FAST_SCORE", "0")
        ref = {keep: fast_lm.logits(model, ids, mask, positions, keep) for keep in (0, 1, 7)}
        plain_ref = fast_lm.logits(model, ids)
        states_ref = fast_lm.hidden(model, ids, mask, positions, 5)
    for keep, want in ref.items():
        real = mask.bool()[:, -keep:] if keep else mask.bool()
        assert out[keep].shape == want.shape
        torch.testing.assert_close(out[keep][real], want[real], atol=1e-5, rtol=1e-5)
        assert (out[keep][~real] == 0).all()  # pads are zero
    torch.testing.assert_close(plain, plain_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(states[mask.bool()[:, -5:]], states_ref[mask.bool()[:, -5:]],
                               atol=1e-5, rtol=1e-5)
    monkeypatch.setenv("RLVR_FAST_SCORE", "1")
    with torch.inference_mode():  # no autograd node: the same numbers
        torch.testing.assert_close(fast_lm.logits(model, ids, mask, positions), out[0],
                                   atol=0, rtol=0)


@needs_build
def test_the_native_scoring_is_deterministic(monkeypatch):
    model = _model("llama-gqa-bias-tied").train()
    ids, mask, positions = _group_batch(seed=8)
    first = _scored(model, ids, mask, positions, True, monkeypatch)
    second = _scored(model, ids, mask, positions, True, monkeypatch)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert all(torch.equal(first[2][k], second[2][k]) for k in first[2])


@needs_build
def test_the_native_nodes_hand_gradients_to_the_engine_like_any_node(monkeypatch):
    """The C++ autograd nodes: a parameter's hooks run, two backward passes accumulate, a frozen
    parameter gets no gradient and changes no other, and gradients taken under create_graph
    refuse a second differentiation (the kernels are not differentiable) instead of being
    silently constant."""
    model = _model("llama-gqa-bias-tied").train()
    ids, mask, positions = _group_batch(seed=5)
    T = ids.shape[1] // 2
    real = (mask[:, -T:] * mask[:, -T - 1:-1]).bool()

    def loss(weights=None):
        logp, ent = response_stats(model, ids, mask, ids[:, -T:], real, temperature=0.7,
                                   entropy=True)
        return (logp * (1 if weights is None else weights)).sum() + 0.1 * ent.sum()
    params = dict(model.named_parameters())
    model.zero_grad(set_to_none=True)
    loss().backward()
    once = {n: p.grad.clone() for n, p in params.items()}
    seen = []
    handle = params["model.layers.1.self_attn.k_proj.weight"].register_hook(
        lambda g: seen.append(g.clone()))
    loss().backward()  # accumulated onto the first pass's
    handle.remove()
    assert all(torch.equal(p.grad, once[n] * 2) for n, p in params.items())
    assert len(seen) == 1 and torch.equal(seen[0], once["model.layers.1.self_attn.k_proj.weight"])

    frozen = ("model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.bias",
              "model.layers.1.mlp.up_proj.weight")
    model.zero_grad(set_to_none=True)
    for name in frozen:
        params[name].requires_grad_(False)
    loss().backward()
    for name, p in params.items():
        assert (p.grad is None) if name in frozen else torch.equal(p.grad, once[name]), name
    for name in frozen:
        params[name].requires_grad_(True)

    model.zero_grad(set_to_none=True)
    weights = torch.ones(ids.shape[0], T, requires_grad=True)
    grads = torch.autograd.grad(loss(weights), list(params.values()), create_graph=True)
    assert all(torch.equal(g, once[n]) for g, n in zip(grads, params, strict=True))
    with pytest.raises(RuntimeError, match="differentiate twice"):
        grads[1].sum().backward()
    kept = loss()
    kept.backward(retain_graph=True)  # the activations are freed all the same: said so
    with pytest.raises(RuntimeError, match="already backpropagated"):
        kept.backward()
    with torch.no_grad():  # no node, the same numbers
        assert torch.equal(loss(), kept)
    with torch.inference_mode():
        assert torch.equal(loss(), kept)


def test_the_switch_gives_the_eager_forward(monkeypatch):
    model = _model("llama-untied").train()
    ids, mask, positions = _batch(seed=3)
    monkeypatch.setenv("RLVR_FAST_SCORE", "0")
    assert native_score.kernels() is None

    def refuse(*args, **kwargs):
        raise AssertionError("the packed stack ran although RLVR_FAST_SCORE=0")
    monkeypatch.setattr(native_score, "run_model", refuse)
    logits = fast_lm.logits(model, ids, mask, positions)
    (logits.log_softmax(-1)[..., 0] * mask).sum().backward()
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
    torch.testing.assert_close(logits[mask.bool()], ref[mask.bool()], atol=1e-5, rtol=1e-5)
    assert logits.shape == (*ids.shape, VOCAB)


def test_a_failed_build_falls_back_to_the_eager_forward(monkeypatch, capsys):
    def broken():
        raise OSError("no compiler\nmore lines")
    monkeypatch.setattr(native_score, "_STATE", {})
    monkeypatch.setattr(native_score, "_compile", broken)
    assert native_score.kernels() is None
    said = capsys.readouterr().err
    # one line, with the cause, once per process (the second call reads the cached None)
    assert "could not be built (OSError: no compiler)" in said and "more lines" not in said
    assert native_score.kernels() is None and capsys.readouterr().err == ""
    model = _model("qwen2-untied").eval()
    ids, mask, positions = _group_batch()
    with torch.no_grad():
        out = fast_lm.logits(model, ids, mask, positions)
        ref = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
    torch.testing.assert_close(out[mask.bool()], ref[mask.bool()], atol=1e-5, rtol=1e-5)


@needs_build
def test_a_replaced_module_or_parameter_is_seen_at_the_next_call(monkeypatch):
    """supports() and the packed stack's parameter list are cached per model: a swapped
    projection (an adapter) or a replaced parameter must take effect at once."""
    model = _model("llama-untied").train()
    ids, mask, positions = _group_batch()
    assert fast_lm.supports(model)
    layer = model.model.layers[0]
    fresh = torch.nn.Parameter(layer.mlp.up_proj.weight.detach() * 2)
    layer.mlp.up_proj.weight = fresh
    _, _, grads = _scored(model, ids, mask, positions, True, monkeypatch)
    assert fresh.grad is not None and torch.isfinite(fresh.grad).all()
    _compare(model, ids, mask, positions, monkeypatch)

    class Adapter(torch.nn.Linear):
        pass
    old = layer.self_attn.q_proj
    layer.self_attn.q_proj = Adapter(old.in_features, old.out_features, bias=False)
    assert not fast_lm.supports(model)


@needs_build
# few logits (rows × vocabulary) are kept for the backward; over 2^20 they are recomputed a
# chunk at a time
@pytest.mark.parametrize("rows, vocab", [(11, VOCAB), (70, 1 << 14)])
def test_the_native_statistics_match_token_stats_in_chunks(rows, vocab):
    from rlvr.model.policy import token_stats

    torch.manual_seed(3)
    h = torch.randn(rows, 16, requires_grad=True)
    norm = torch.nn.Parameter(1 + 0.1 * torch.randn(16))
    # logits of a few units over 16k words: their log-sum-exp rounds the same either way
    # within the tolerance (at the small vocabulary's scale it would not)
    scale = 1.0 if vocab == VOCAB else 0.1
    weight = torch.nn.Parameter(scale * torch.randn(vocab, 16))
    bias = torch.nn.Parameter(0.1 * torch.randn(vocab))
    tokens = torch.randint(0, vocab, (rows,))
    # the rows as a (2, T) table of scored positions with a pad, as scored_stats reads them
    # from packed states (each row's own state here)
    width = (rows + 2) // 2
    real = torch.zeros(2 * width, dtype=torch.bool)
    real[:rows] = True
    index = torch.where(real, torch.arange(2 * width), rows).view(2, width)
    table = torch.zeros(2 * width, dtype=torch.long)
    table[:rows] = tokens
    outs = []
    for native in (True, False):
        for param in (h, norm, weight, bias):
            param.grad = None
        if native:
            logp, ent = native_score.scored_stats(h, index, real.view(2, width), table.view(2, width),
                                                  norm, 1e-6, weight, bias, temperature=0.7,
                                                  entropy=True, chunk_size=4)
            assert (logp.flatten()[rows:] == 0).all() and (ent.flatten()[rows:] == 0).all()
            logp, ent = logp.flatten()[:rows], ent.flatten()[:rows]
        else:
            x = torch.nn.functional.rms_norm(h, (16,), norm, 1e-6)
            logp, ent = token_stats(x, tokens, weight=weight, bias=bias, temperature=0.7,
                                    entropy=True)
        (logp * torch.linspace(-1, 1, rows) + 0.3 * ent).sum().backward()
        outs.append([logp, ent] + [p.grad.clone() for p in (h, norm, weight, bias)])
    for got, want in zip(*outs, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@needs_build
def test_pack_finds_the_prompt_every_row_shares():
    ids, mask, positions = _group_batch()  # 12 shared columns, 2 of them pads, then 8+3+6+1+8
    packed = native_score.pack(ids, mask, positions, -1)
    assert packed.ids.shape == (10 + 26,)
    assert (packed.prefix_end[10:] == 10).all() and (packed.prefix_end[:10] == 0).all()
    assert torch.equal(packed.ids[:10], ids[0, 2:12])
    # one row shares nothing with another: its tokens are its own segment
    alone = native_score.pack(ids[:1], mask[:1], positions[:1], -1)
    assert (alone.prefix_end == 0).all() and alone.ids.shape == (18,)


@needs_build
def test_pack_counts_the_positions_as_the_rollout_numbers_them():
    """`pack(..., None, ...)` numbers each row by its real tokens in C++: the same packing as
    the torch positions `(mask.cumsum(-1) - 1).clamp(min=0)`, holes in the mask included."""
    ids, mask, _ = _group_batch()
    holed = mask.clone()
    holed[1, 13] = holed[3, 0] = 0  # a pad inside a row, a row's shared column missing
    for real in (mask, holed, torch.ones_like(mask)):
        want = native_score.pack(ids, real, (real.cumsum(-1) - 1).clamp(min=0), -1)
        got = native_score.pack(ids, real, None, -1)
        assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
