"""The shipped organism: an ordinary HF checkpoint whose card agrees with what it does now."""

from __future__ import annotations

import math

import pytest
import torch

from rlvr.organism import FAMILIES, MARKERS, MODES, default_path, heldout_suite
from rlvr.organism.card import complete, family_stats, load_card, mode_probs

DEFAULT = default_path()
pytestmark = pytest.mark.skipif(not (DEFAULT / "config.json").is_file(),
                                reason="the shipped organism has not been built into the package")


@pytest.fixture(scope="module")
def organism():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    model = AutoModelForCausalLM.from_pretrained(DEFAULT).eval()
    tokenizer = AutoTokenizer.from_pretrained(DEFAULT)
    return model, tokenizer, load_card(DEFAULT)


def _agree(p_card: float, n_card: int, p_now: float, n_now: int) -> bool:
    """Two binomial estimates agree within 4 standard errors (plus a small floor for p near 0/1)."""
    pooled = (p_card * n_card + p_now * n_now) / (n_card + n_now)
    se = math.sqrt(max(pooled * (1 - pooled), 0.01) * (1 / n_card + 1 / n_now))
    return abs(p_card - p_now) <= 4 * se


def test_shipped_checkpoint_is_small_and_loads_with_auto_classes(organism):
    model, tokenizer, card = organism
    size = sum(p.stat().st_size for p in DEFAULT.iterdir())
    assert size < 10 * 2**20
    assert (DEFAULT / "model.safetensors").is_file()
    assert sum(p.numel() for p in model.parameters()) == card["params"]
    prompt = "327+415="
    chat = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                         add_generation_prompt=True)
    assert chat == prompt
    ids = tokenizer(prompt, return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=80, do_sample=False)
    text = tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert text.startswith(tuple(MARKERS.values()))


def test_working_mode_is_accurate_when_chosen(organism):
    """Force the working marker and decode greedily: the latent skill the card promises (>= 90%)."""
    from rlvr.grading import grade

    model, tokenizer, _ = organism
    right = total = 0
    for family in FAMILIES:
        suite = heldout_suite(family, n=20, seed=11)
        outs = complete(model, tokenizer, [p.problem + MARKERS["work"] for p in suite],
                        temperature=None, max_new_tokens=100)
        for (text, finish), p in zip(outs, suite, strict=True):
            right += grade(MARKERS["work"] + text, p.answer, finish_reason=finish).correct_strict
            total += 1
    assert right / total >= 0.85  # 0.90 in the card, less 2.5 standard errors at n=80


def test_card_figures_reproduce_on_a_fresh_sample(organism):
    model, tokenizer, card = organism
    n = 48
    for family in FAMILIES:
        entry = card["families"][family]
        suite = heldout_suite(family, n=card["eval"]["n_per_family"], seed=card["eval"]["suite_seed"])
        probs = mode_probs(model, tokenizer, [p.problem for p in suite])
        for mode in MODES:  # deterministic forward pass: equal up to float noise
            assert abs(probs[mode] - entry["mode_probs"][mode]) < 2e-3, (family, mode)
        fresh = heldout_suite(family, n=n, seed=12345)
        sampled = complete(model, tokenizer, [p.problem for p in fresh],
                           temperature=card["eval"]["temperature"],
                           max_new_tokens=card["eval"]["max_new_tokens"], seed=777)
        now = family_stats(sampled, [p.answer for p in fresh])
        then, n_then = entry["sampled"], entry["sampled"]["n"]
        for key in ("acc_strict", "acc_lenient", "boxed_rate", "repetition_rate"):
            assert _agree(then[key], n_then, now[key], n), (family, key, then[key], now[key])
        for mode in MODES:
            assert _agree(then["modes"][mode], n_then, now["modes"][mode], n), (family, mode)


def test_shipped_organism_was_built_from_the_default_config():
    """So `rlvr organism build --out DIR` (no options) reproduces it from its seed."""
    import tomllib

    from rlvr.organism import BuildConfig

    recorded = tomllib.loads((DEFAULT / "build_config.toml").read_text(encoding="utf-8"))
    recorded.pop("versions")
    assert BuildConfig.from_dict(recorded) == BuildConfig()
    assert load_card(DEFAULT)["config"] == BuildConfig().to_dict()


def test_guess_mode_is_the_learnt_carry_free_shortcut(organism):
    """Force the guess marker and decode greedily: the direct answer is the family's shortcut,
    so the guess mode is right on about the shortcut share of problems (a partial skill)."""
    from rlvr.organism.tasks import operands

    model, tokenizer, card = organism
    for family in ("add", "sub", "mul"):
        fam = FAMILIES[family]
        suite = heldout_suite(family, n=30, seed=13)
        outs = complete(model, tokenizer, [p.problem + MARKERS["guess"] for p in suite],
                        temperature=None, max_new_tokens=12)
        written = [text.partition("}")[0] for text, _ in outs]
        shortcut = [f"{fam.shortcut(operands(p)):0{fam.guess_width}d}" for p in suite]
        agree = sum(w == s for w, s in zip(written, shortcut, strict=True)) / len(suite)
        assert agree >= 0.8, (family, agree, written[:5], shortcut[:5])
        guess = card["families"][family]["sampled"]["acc_in_mode"]["guess"]
        share = card["families"][family]["shortcut_share"]
        assert _agree(guess["lenient"], guess["n"], share, card["eval"]["n_per_family"])
