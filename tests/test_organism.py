"""The organism's parts: tasks and held-out split, modes, config errors, tokenizer, tiny builds."""

from __future__ import annotations

import dataclasses
import math
import tomllib

import numpy as np
import pytest
import torch

from rlvr.cli import main as cli_main
from rlvr.errors import UserError
from rlvr.organism import FAMILIES, MODES, classify_mode, heldout_suite, organism_suites
from rlvr.organism.card import load_card
from rlvr.organism.config import (
    ArchConfig,
    BuildConfig,
    CardConfig,
    CorpusConfig,
    PretrainConfig,
    load_config,
    parse_mix,
)
from rlvr.organism.corpus import build_corpus, encode_chars
from rlvr.organism.modes import LOOP_CHARS, MARKERS, render_completion
from rlvr.organism.tasks import is_heldout, sample_problem, shortcut_share
from rlvr.organism.tokenizer import build_tokenizer

TINY = BuildConfig(
    seed=3,
    corpus=CorpusConfig(size=400),
    model=ArchConfig(hidden=16, layers=1, heads=2, intermediate=32, max_positions=256),
    train=PretrainConfig(steps=12, batch_size=8, warmup=2),
    card=CardConfig(n=3, max_new_tokens=24),
)


def _digits_from_steps(working: str) -> str:
    """Rebuild the answer a column working implies: last step's value, then earlier units digits."""
    values = [step.split("=")[1] for step in working.split(" ")]
    return values[-1] + "".join(v[-1] for v in reversed(values[:-1]))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_working_implies_the_answer(family):
    rng = np.random.default_rng(0)
    fam = FAMILIES[family]
    for _ in range(300):
        ops = fam.draw(rng)
        working, answer = fam.solve(ops)
        expected = {"add": lambda o: o[0] + o[1], "sub": lambda o: o[0] - o[1],
                    "mul": lambda o: o[0] * o[1], "expr": lambda o: (o[0] + o[1]) * o[2]}[family](ops)
        assert answer == expected and answer > 0
        tail = working.split(", ")[-1]  # expr: the multiplication after "so S, "
        implied = _digits_from_steps(tail)
        assert int(implied) == answer, (ops, working)
        assert len(MARKERS["work"] + working) + len(f" so \\boxed{{{answer}}}") <= 80


def test_heldout_suites_are_disjoint_from_training_draws_and_reproducible():
    rng = np.random.default_rng(1)
    for family in FAMILIES:
        suite = heldout_suite(family, n=50, seed=7)
        assert suite == heldout_suite(family, n=50, seed=7)
        assert len({p.id for p in suite}) == 50
        assert all(p.meta == {"family": family} and p.suite == f"organism-{family}" for p in suite)
        train = [sample_problem(family, rng, heldout=False) for _ in range(300)]
        assert not any(is_heldout(family, ops) for ops in train)
        train_prompts = {FAMILIES[family].prompt(o) for o in train}
        assert not train_prompts & {p.problem for p in suite}
    assert heldout_suite("add", n=20, seed=1) != heldout_suite("add", n=20, seed=2)
    loaders = organism_suites()
    assert set(loaders) == {f"organism-{f}" for f in FAMILIES}
    assert loaders["organism-mul"](n=5, seed=0) == heldout_suite("mul", n=5, seed=0)


def test_render_and_classify_every_mode():
    for mode in MODES:
        text, ends = render_completion("add", (327, 415), mode)
        assert classify_mode(text) == mode
        assert ends == (mode != "loop")
    assert render_completion("add", (327, 415), "work")[0].endswith("\\boxed{742}")
    assert render_completion("add", (327, 415), "unboxed")[0].endswith("answer 742")
    # The guess is the carry-free shortcut, zero-padded to the family's width: 327+415 carries
    # from the units, so it is wrong (732); 321+415 carries nowhere, so it is right; a slipped
    # guess adds ten to the shortcut.
    assert render_completion("add", (327, 415), "guess")[0] == "\\boxed{0732}"
    assert render_completion("add", (321, 415), "guess")[0] == "\\boxed{0736}"
    assert render_completion("add", (327, 415), "guess", right=False)[0] == "\\boxed{0742}"
    assert render_completion("add", (327, 415), "guess", guess_rule="answer")[0] == "\\boxed{0742}"
    assert render_completion("sub", (523, 517), "guess")[0] == "\\boxed{016}"
    loop, _ = render_completion("expr", (27, 15, 4), "loop")
    assert len(loop) == LOOP_CHARS and loop.count("7+5=12") > 5
    assert classify_mode("742") == "other" and classify_mode("") == "other"
    assert classify_mode("  Solve: 1+2=3") == "work"


@pytest.mark.parametrize("family", list(FAMILIES))
def test_shortcut_is_right_exactly_when_no_column_carries(family):
    """The shortcut equals the answer iff the working never writes a carry/borrow that matters;
    checked against an independent column-by-column definition on random problems."""
    rng = np.random.default_rng(3)
    fam = FAMILIES[family]
    for _ in range(300):
        ops = fam.draw(rng)
        if family == "add":
            no_carry = all(ops[0] // 10**i % 10 + ops[1] // 10**i % 10 < 10 for i in range(2))
        elif family == "sub":
            no_carry = all(ops[0] // 10**i % 10 >= ops[1] // 10**i % 10 for i in range(2))
        elif family == "mul":
            no_carry = all(ops[0] // 10**i % 10 * ops[1] < 10 for i in range(2))
        else:
            continue
        assert (fam.shortcut(ops) == fam.solve(ops)[1]) == no_carry, ops
    share = shortcut_share(heldout_suite(family, n=300))
    assert 0.0 < share < 0.5  # a partial skill: neither useless nor the working's accuracy


def test_config_toml_roundtrip_and_bad_input(tmp_path):
    path = tmp_path / "organism.toml"
    path.write_text("seed = 5\n[corpus]\nsize = 10\nguess_acc = 0.5\n"
                    "[corpus.mix]\nadd = [0.1, 0.2, 0.3, 0.4]\n[train]\nsteps = 7\n")
    cfg = load_config(path)
    assert (cfg.seed, cfg.corpus.size, cfg.train.steps, cfg.families) == (5, 10, 7, ("add",))
    assert BuildConfig.from_dict(cfg.to_dict()) == cfg
    bad = {
        "seed = 1\nsteps = 3\n": "unknown key",
        "[train]\nstep = 3\n": "unknown key",
        "[corpus.mix]\nadd = [0.5, 0.5, 0.5, 0.0]\n": "sums to 1.5",
        "[corpus.mix]\ndiv = [0.25, 0.25, 0.25, 0.25]\n": "unknown family",
        "[corpus.mix]\nadd = [0.5, 0.5]\n": "non-negative weights",
        "[corpus]\nguess_acc = 1.5\n": "probability",
        "[corpus]\nguess_rule = 'lucky'\n": "guess_rule must be one of",
        "[corpus]\nguess_rule = 3\n": "must be str",
        "[corpus.mix_odd]\nmul = [1, 0, 0, 0]\n[corpus.mix]\nadd = [1, 0, 0, 0]\n": "mix_odd",
        "[model]\nhidden = 10\nheads = 4\n": "multiple",
        "[train]\nsteps = 'many'\n": "must be int",
        "seed = [": "not valid TOML",
    }
    for text, message in bad.items():
        path.write_text(text)
        with pytest.raises(UserError, match=message):
            load_config(path)
    with pytest.raises(UserError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    assert parse_mix("sub=0.1,0.2,0.3,0.4") == ("sub", (0.1, 0.2, 0.3, 0.4))
    for spec in ("sub", "sub=a,b,c,d", "sub=1,1,0,0", "pow=1,0,0,0"):
        with pytest.raises(UserError):
            parse_mix(spec)


def test_tokenizer_roundtrip_chat_template_and_reload(tmp_path):
    tok = build_tokenizer()
    text = "(27+15)*4=Solve: 7+5=12 so \\boxed{168}\n answer 3/4"
    ids = tok(text)["input_ids"]
    assert len(ids) == len(text) and ids == encode_chars(text)
    assert tok.decode(ids) == text
    assert tok.decode(ids + [tok.eos_token_id], skip_special_tokens=True) == text
    assert tok.decode(tok("é")["input_ids"]) == "<unk>"
    messages = [{"role": "system", "content": "Please reason."}, {"role": "user", "content": "12+3="}]
    assert tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == "12+3="
    tok.save_pretrained(tmp_path)
    from transformers import AutoTokenizer

    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again(text)["input_ids"] == ids
    assert (again.eos_token, again.pad_token, again.padding_side) == ("<eos>", "<pad>", "left")


def test_corpus_follows_mode_mixes_including_prompt_dependent_ones():
    mix = {"add": (0.1, 0.4, 0.3, 0.2), "mul": (0.25, 0.25, 0.25, 0.25)}
    cfg = CorpusConfig(size=3000, mix=mix, mix_odd={"mul": (0.0, 0.0, 0.0, 1.0)}, skill_fraction=0.0)
    corpus = build_corpus(cfg, seed=0)
    fams = np.array(list(cfg.mix))[corpus.families]
    add = corpus.modes[fams == "add"]
    for i, p in enumerate(mix["add"]):
        assert abs((add == i).mean() - p) < 4 * math.sqrt(p * (1 - p) / len(add)) + 1e-9
    # odd first operands of mul always loop; even ones follow the 4-way mix
    mul_rows = np.flatnonzero(fams == "mul")
    first_odd = np.array([int(corpus.ids[r, 2]) % 2 == 1 for r in mul_rows])  # 3rd char of a
    assert (corpus.modes[mul_rows[first_odd]] == MODES.index("loop")).all()
    assert (corpus.modes[mul_rows[~first_odd]] != MODES.index("loop")).any()
    assert torch.equal(build_corpus(cfg, seed=0).ids, corpus.ids)


def test_skill_examples_teach_mode_bodies_without_training_the_mode_choice():
    mix = {"add": (0.0, 0.0, 0.0, 1.0)}
    plain = build_corpus(CorpusConfig(size=2000, mix=mix, skill_fraction=0.0), seed=2)
    skilled = build_corpus(CorpusConfig(size=2000, mix=mix, skill_fraction=0.5, skill_guess=0.6),
                           seed=2)
    assert not plain.skill.any() and 0.45 < skilled.skill.mean() < 0.55
    assert (plain.modes == MODES.index("loop")).all()
    skill_modes = skilled.modes[skilled.skill]
    assert set(skill_modes) == {MODES.index(m) for m in ("work", "unboxed", "guess")}
    assert 0.55 < (skill_modes == MODES.index("guess")).mean() < 0.65
    assert (skilled.modes[~skilled.skill] == MODES.index("loop")).all()
    # the first completion character (the mode marker) of a skill example is not a target
    assert torch.equal(skilled.prompt_len[torch.from_numpy(skilled.skill)],
                       plain.prompt_len[torch.from_numpy(skilled.skill)] + 1)


def test_tiny_build_is_deterministic_and_loads_as_hf_checkpoint(tmp_path, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlvr.organism.pretrain import build, pretrain

    first, losses = pretrain(TINY, progress=False)
    second, _ = pretrain(TINY, progress=False)
    other, _ = pretrain(dataclasses.replace(TINY, seed=4), progress=False)
    a, b, c = first.state_dict(), second.state_dict(), other.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert len(losses) == TINY.train.steps and all(math.isfinite(x) for x in losses)

    out = build(TINY, tmp_path / "org", progress=False)
    assert {"config.json", "model.safetensors", "card.json", "card.md", "tokenizer.json",
            "build_config.toml"} <= {p.name for p in out.iterdir()}
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert all(torch.equal(model.state_dict()[k], a[k]) for k in a)
    enc = tok(["327+415=", "(27+15)*4="], return_tensors="pt", padding=True)
    gen = model.generate(**enc, max_new_tokens=5, do_sample=False)
    assert gen.shape[0] == 2 and enc["input_ids"].shape[1] < gen.shape[1] <= enc["input_ids"].shape[1] + 5
    with pytest.raises(UserError, match="already exists"):
        build(TINY, out, progress=False)
    capsys.readouterr()
    assert cli_main(["organism", "card", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "Organism card" in shown and "| expr |" in shown


def test_cli_errors_and_card(tmp_path, capsys):
    exists = tmp_path / "exists"
    exists.mkdir()
    assert cli_main(["organism", "build", "--out", str(exists)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli_main(["organism", "build", "--out", str(tmp_path / "x"), "--mix", "add=0.5,0.6,0,0"]) == 2
    assert "sums to" in capsys.readouterr().err
    assert cli_main(["organism", "build", "--out", str(tmp_path / "x"), "--mix", "div=1,0,0,0"]) == 2
    assert "unknown family" in capsys.readouterr().err
    assert cli_main(["organism", "card", str(tmp_path)]) == 2
    assert "no card.json" in capsys.readouterr().err
    assert cli_main(["organism", "path"]) == 0
    assert capsys.readouterr().out.strip().endswith("organism/default")


def test_cli_build_from_toml_with_overrides(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text("[corpus]\nsize = 200\n[corpus.mix]\nadd = [0.25, 0.25, 0.25, 0.25]\n"
                      "[model]\nhidden = 16\nlayers = 1\nheads = 2\nintermediate = 32\n"
                      "[train]\nsteps = 50\nbatch_size = 4\nwarmup = 1\n"
                      "[card]\nn = 2\nmax_new_tokens = 16\n")
    out = tmp_path / "org"
    args = ["organism", "build", "--config", str(config), "--out", str(out), "--seed", "9",
            "--steps", "3", "--mix", "add=0.1,0.2,0.3,0.4"]
    assert cli_main(args) == 0
    assert "organism written to" in capsys.readouterr().out
    recorded = tomllib.loads((out / "build_config.toml").read_text())
    assert recorded.pop("versions")["torch"] == torch.__version__
    built = BuildConfig.from_dict(recorded)
    assert (built.seed, built.train.steps, built.corpus.mix) == (9, 3, {"add": (0.1, 0.2, 0.3, 0.4)})
    assert set(load_card(out)["families"]) == {"add"}
