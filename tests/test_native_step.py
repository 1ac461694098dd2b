"""rlvr.model.native_step: the C++ decode step equals the eager one, and its absence (disabled,
or no compiler) falls back to the eager step without an error."""

from __future__ import annotations

import pytest
import torch
from test_fast_lm import MODELS, _batch, _llama, _model

from rlvr.model import native_step
from rlvr.model.decode import choose, row_keys
from rlvr.model.kv_cache import DecodeCache, forced_logits
from rlvr.model.sampling import SamplingParams

needs_build = pytest.mark.skipif(native_step.step_function() is None,
                                 reason="no C++ compiler for the native decode step")


@pytest.fixture(autouse=True)
def _fp32_cache(monkeypatch):
    """The comparisons with the eager step hold to float rounding on an fp32 cache; the fp16
    cache (the default) has its own test with its stated tolerance, at the end."""
    monkeypatch.setenv("RLVR_HALF_CACHE", "0")


def _decode(model, ids, mask, positions, steps: int):
    cache = DecodeCache(model, ids.shape[0], ids.shape[1] + steps)
    out = []
    with torch.inference_mode():
        out.append(cache.prefill(ids, mask, positions))
        position = positions[:, -1]
        gen = torch.Generator().manual_seed(9)
        for step in range(steps):
            token = torch.randint(0, out[0].shape[-1], (ids.shape[0],), generator=gen)
            position = position + 1
            out.append(cache.step(token, position))
            if step == 2:  # rows dropped mid-way, as the decode loop does
                keep = torch.tensor([0, 2, 3, 5])
                cache.select_rows(keep)
                ids, position = ids[keep], position[keep]
    return cache, out


# Head size 6 and MLP width 44: the portable attention loops (not a multiple of 8) and the
# scalar tail of the vector SwiGLU.
ODD = "llama-head6-mlp44"


# Left pads only (as the decode loop's prompts): the prefill runs through the C++ step's
# kernels (`native_step.prefill`); a right-padded row sends it through the eager layers.
LEFT_PADDED = ((0, 0), (3, 0), (9, 0), (5, 0), (1, 0), (2, 0))


@needs_build
@pytest.mark.parametrize("pads", ["left", "right"])
@pytest.mark.parametrize("name", [*sorted(MODELS), ODD])
def test_native_step_equals_the_eager_step(name, pads, monkeypatch):
    if name == ODD:
        torch.manual_seed(0)
        model = _llama(hidden_size=36, num_attention_heads=6, num_key_value_heads=2,
                       intermediate_size=44).eval()
    else:
        model = _model(name).eval()
    ids, mask, positions = _batch(seed=6, **({"pads": LEFT_PADDED} if pads == "left" else {}))
    native_prefills = []
    real_prefill = native_step.prefill_function

    def counted():
        fn = real_prefill()
        return lambda *a: native_prefills.append(1) or fn(*a)
    monkeypatch.setattr(native_step, "prefill_function", counted)
    native, fast = _decode(model, ids, mask, positions, 6)
    # the prefill ran through the step's kernels (left pads), or the eager layers (right pads)
    assert len(native_prefills) == (pads == "left")
    # the step's products went through its own panels wherever this build has them
    has_panels = native_step.panel_product(torch.zeros(1, 1)) is not None
    assert len(native.native[3]) == (4 * model.config.num_hidden_layers + 1 if has_panels else 0)
    monkeypatch.setenv("RLVR_FAST_DECODE", "0")
    eager, slow = _decode(model, ids, mask, positions, 6)
    assert native.native is not None and eager.native is None
    for a, b in zip(fast, slow, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # The cache writes agree too, but at a prompt's pad columns: the eager prefill keeps
    # the pad tokens' keys there, the native one zeros; the key mask hides both.
    real = torch.cat([mask.bool(), torch.ones(len(mask), 6, dtype=torch.bool)], 1)
    real = real[[0, 2, 3, 5]][None, :, None, :, None]  # the rows kept at step 2
    for a, b in zip(native.kv, eager.kv, strict=True):
        torch.testing.assert_close(a * real, b * real, atol=1e-5, rtol=1e-5)
        assert torch.isfinite(a).all()


needs_panels = pytest.mark.skipif(native_step.panel_product(torch.zeros(1, 1)) is None,
                                  reason="no AVX2 build of the native decode step")


@needs_panels
@pytest.mark.parametrize("inner, out", [(96, 288), (7, 99), (33, 16), (5, 1), (256, 17)])
def test_panel_products_equal_the_product_and_ignore_the_batch(inner, out):
    """The step's own products (rlvr.model.native_gemm.h): x @ w within fp32 rounding for
    widths on and off the 16-column panels, and a row's output bit for bit the same whatever
    the rows beside it (1 to 13 rows: every block of six and its remainders)."""
    gen = torch.Generator().manual_seed(inner * out)
    weight = torch.randn(inner, out, generator=gen)
    product = native_step.panel_product(weight)
    x = torch.randn(13, inner, generator=gen)
    full = product(x)
    exact = (x.double() @ weight.double()).float()
    torch.testing.assert_close(full, exact, atol=1e-4, rtol=1e-5)
    for start in range(13):
        for rows in range(1, 14 - start):
            assert torch.equal(product(x[start:start + rows]), full[start:start + rows])


@needs_build
def test_the_step_without_panels_runs_at_mm(monkeypatch):
    monkeypatch.setenv("RLVR_PANEL_PRODUCTS", "0")
    model = _model("llama-untied").eval()
    ids, mask, positions = _batch(seed=7)
    native, fast = _decode(model, ids, mask, positions, 3)
    monkeypatch.setenv("RLVR_FAST_DECODE", "0")
    _, slow = _decode(model, ids, mask, positions, 3)
    assert native.native is not None and native.native[3] == []
    for a, b in zip(fast, slow, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_a_failed_build_falls_back_to_the_eager_step(monkeypatch, capsys):
    def broken():
        raise OSError("no compiler\nmore lines")
    monkeypatch.setattr(native_step, "_STATE", {})
    monkeypatch.setattr(native_step, "_compile", broken)
    assert native_step.step_function() is None
    said = capsys.readouterr().err
    # one line, with the cause, once per process (the second call reads the cached None)
    assert "could not be built (OSError: no compiler)" in said and "more lines" not in said
    assert native_step.step_function() is None and capsys.readouterr().err == ""
    model = _model("llama-untied").eval()
    ids, mask, positions = _batch(seed=7)
    cache, out = _decode(model, ids, mask, positions, 4)
    assert cache.native is None and all(torch.isfinite(o).all() for o in out)


@needs_build
def test_a_prompt_shared_by_several_rows_is_prefilled_once_for_all_of_them(monkeypatch):
    """GRPO's n samples of a prompt are identical rows: `native_step.prefill` runs each
    distinct prompt once, on the first row that holds it, then copies its cache columns to the
    others. Rows 0, 2, 5 share a left-padded prompt and rows 1, 4 another: every row's logits
    and cache equal the eager prefill's, and the copies equal their first row bit for bit."""
    model = _model("llama-gqa-bias-tied").eval()
    ids, mask, positions = _batch(seed=11, pads=((3, 0), (0, 0), (3, 0), (1, 0), (0, 0), (3, 0)))
    for row, like in ((2, 0), (5, 0), (4, 1)):
        ids[row], mask[row], positions[row] = ids[like], mask[like], positions[like]
    native, fast = _decode(model, ids, mask, positions, 0)
    monkeypatch.setenv("RLVR_FAST_DECODE", "0")
    eager, slow = _decode(model, ids, mask, positions, 0)
    assert native.native is not None and eager.native is None
    torch.testing.assert_close(fast[0], slow[0], atol=1e-5, rtol=1e-5)
    real = mask.bool()[None, :, None, :, None]
    for a, b in zip(native.kv, eager.kv, strict=True):
        a, b = a[..., :ids.shape[1], :], b[..., :ids.shape[1], :]
        torch.testing.assert_close(a * real, b * real, atol=1e-5, rtol=1e-5)
        for row, like in ((2, 0), (5, 0), (4, 1)):
            assert torch.equal(a[:, row], a[:, like])
    assert torch.equal(fast[0][2], fast[0][0]) and torch.equal(fast[0][4], fast[0][1])


@needs_build
def test_the_fused_draw_picks_the_tokens_of_the_torch_draw(monkeypatch):
    """`sample` against `choose`'s torch arithmetic (Gumbel noise in float64, argmax) over
    vocabularies of 2-300 tokens, logits from flat to peaked, temperatures 0.6 and 1, several
    steps: 57,600 rows."""
    fused = native_step.sample_function()
    gen = torch.Generator().manual_seed(0)
    draws = []
    for trial in range(300):
        rows, vocab = 64, int(torch.randint(2, 300, (1,), generator=gen))
        logits = torch.randn(rows, vocab, generator=gen) * float(8 * torch.rand(1, generator=gen))
        keys = row_keys(trial, [(trial % 3, r) for r in range(rows)], "cpu")
        params = SamplingParams(temperature=(0.6, 1.0)[trial % 2], max_new_tokens=1)
        for step in (0, 7, 1000):
            got = choose(logits, params, keys, step)
            assert torch.equal(got, fused(logits / params.temperature, keys, step))  # it ran
            draws.append((logits, params, keys, step, got))
    monkeypatch.setattr(native_step, "sample_function", lambda: None)  # the torch draw
    differ = sum(int((choose(*args) != got).sum()) for *args, got in draws)
    assert fused is not None and len(draws) * 64 == 57_600 and differ == 0


@needs_build
@pytest.mark.parametrize("eos", [(-1,), tuple(range(3, 300, 7))])
def test_the_native_loop_decodes_what_the_python_loop_decodes(eos, monkeypatch):
    """`DecodeCache.run` (the first iterations in C++) against the same decode with the Python
    loop only: the same tokens and endings when no row stops (the budget) and when rows stop
    at different steps (and are dropped on the way)."""
    from rlvr.model import policy
    from rlvr.model.decode import decode

    model = _model("llama-untied").eval()
    ids, mask, positions = _batch(seed=3, pads=LEFT_PADDED)
    keys = row_keys(5, [(0, r) for r in range(len(ids))], "cpu")
    params = SamplingParams(temperature=0.8, max_new_tokens=12, seed=5)
    starts = []

    def run_decode():
        decoder = policy.make_decoder(model, len(ids), ids.shape[1] + 12)
        if decoder.run is not None:
            real = decoder.run
            decoder.run = lambda *a: (lambda out: starts.append(out[0]) or out)(real(*a))
        with torch.inference_mode():
            return decode(decoder, ids, mask, positions, keys, params, eos=eos, pad_id=0)
    native = run_decode()
    monkeypatch.setattr(policy._FastDecoder, "__init__", _without_run(policy._FastDecoder.__init__))
    python = run_decode()
    assert native == python and len(starts) == 1
    if eos == (-1,):  # nothing ends: every iteration but the last ran in C++
        assert starts == [11] and all(reason == "length" for _, reason in native)
    else:  # the loop handed over at the first draw holding an EOS token
        ends = [len(tokens) for tokens, reason in native if reason == "stop"]
        assert len(ends) >= 2
        assert starts == [min(ends) - 1] and min(ends) < max(ends)


def _without_run(init):
    def patched(self, *args):
        init(self, *args)
        self.run = None
    return patched


def _organism():
    from rlvr.model.rollout import load_model
    from rlvr.organism import default_path

    return load_model(default_path(), device="cpu")[0]


@needs_build
@pytest.mark.parametrize("name, pads", [*((n, "left") for n in [*sorted(MODELS), ODD, "organism"]),
                                        ("qwen2-gqa-tied", "right")])
def test_the_fp16_cache_keeps_the_next_token_distributions_of_the_fp32_cache(name, pads,
                                                                             monkeypatch):
    """The default cache of the C++ step holds fp16 keys and values (`native_step.cache_dtype`):
    each is the fp32 value rounded, the arithmetic stays fp32. The same tokens replayed
    through both caches give next-token distributions within the stated tolerance:
    total variation at most HALF_CACHE_TV at any step, 1/20 of that on average. Right pads
    send the prefill through the eager layers, which write the fp16 cache through torch."""
    if name == "organism":
        model = _organism()
        gen = torch.Generator().manual_seed(4)
        ids = torch.randint(3, model.config.vocab_size, (16, 12), generator=gen)
        mask, positions = torch.ones_like(ids), torch.arange(12).expand(16, 12)
    elif name == ODD:
        torch.manual_seed(0)
        model = _llama(hidden_size=36, num_attention_heads=6, num_key_value_heads=2,
                       intermediate_size=44).eval()
        ids, mask, positions = _batch(seed=6, pads=LEFT_PADDED)
    else:
        model = _model(name).eval()
        ids, mask, positions = _batch(seed=6, **({"pads": LEFT_PADDED} if pads == "left" else {}))
    steps = 48
    gen = torch.Generator().manual_seed(5)
    tokens = torch.randint(0, model.config.vocab_size, (ids.shape[0], steps), generator=gen)
    if name == "organism":  # its own text, not random tokens (its caches then hold its scale)
        with torch.inference_mode():
            monkeypatch.setenv("RLVR_HALF_CACHE", "0")
            cache = DecodeCache(model, ids.shape[0], 12 + steps)
            logits, position = cache.prefill(ids, mask, positions), positions[:, -1]
            for s in range(steps):
                tokens[:, s] = torch.multinomial(logits.softmax(-1), 1, generator=gen)[:, 0]
                position = position + 1
                logits = cache.step(tokens[:, s], position) if s + 1 < steps else logits
    monkeypatch.setenv("RLVR_HALF_CACHE", "0")
    exact, reference = forced_logits(model, ids, mask, positions, tokens)
    monkeypatch.setenv("RLVR_HALF_CACHE", "1")
    half, logits = forced_logits(model, ids, mask, positions, tokens)
    assert exact.kv[0].dtype == torch.float32
    assert half.kv[0].dtype == native_step.cache_dtype()
    if half.kv[0].dtype == torch.float16:  # layer 0's prompt keys and values: exact inputs
        prompt = ids.shape[1]
        assert torch.equal(half.kv[0][..., :prompt, :], exact.kv[0][..., :prompt, :].half())
    distance = 0.5 * (logits.softmax(-1) - reference.softmax(-1)).abs().sum(-1)  # (B, steps)
    assert float(distance.max()) <= native_step.HALF_CACHE_TV
    assert float(distance.mean()) <= native_step.HALF_CACHE_TV / 20
    assert (logits.argmax(-1) == reference.argmax(-1)).float().mean() >= 0.99
