"""The GRPO loop on a tiny random Llama: run-format logs, accumulation, controls, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch
from _tiny_lm import make_tiny_lm

from rlvr.errors import UserError
from rlvr.rl.loop import train
from rlvr.rl.presets import parse_set, resolve
from rlvr.rl.trainer import Trainer

# Measured on the shipped organism (docs/training.md); the bars sit well below the measured gains.
ACCEPT_GAIN = {"greedy_acc_strict": 0.3, "avg_at_k_strict": 0.08}
FORMAT_GAIN = 0.05

RUN_FORMAT_FIELDS = {
    "step", "train_acc", "train_acc_mean", "reward_mean", "reward_std", "zero_var_frac",
    "groups_dropped", "entropy", "kl", "clip_frac", "pg_loss", "loss", "grad_norm", "lr",
    "resp_len_mean", "resp_len_max", "boxed_rate", "repetition_rate", "truncation_rate",
    "step_time_s", "tokens_per_s",
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_lm(tmp_path_factory.mktemp("tiny") / "lm", eos_scale=3.0)


def cfg(tiny: Path, *sets: str, **over):
    base = {"model": {"path": str(tiny)}, "steps": 3, "data": {"examples": ["add-327-415"]},
            "eval": {"suites": []}, "rollout": {"max_new_tokens": 12, "n": 4},
            "reward": {"mode": "random"}}
    for key, value in over.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    for key, value in parse_set(list(sets)).items():  # --set wins over this test base
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return resolve("organism", overrides=base)


def test_run_directory_follows_run_format(tiny, tmp_path):
    config = cfg(tiny, "log.samples_every=1", "log.samples_max=5", "log.save_every=2",
                 data={"copies": 2})
    run = train(config, run_dir=tmp_path / "run", progress=False)
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [1, 2, 3]
    for m in lines:
        assert RUN_FORMAT_FIELDS <= set(m)
        assert set(m["train_acc"]) == {"add-327-415"}
        assert 0 <= m["zero_var_frac"] <= 1 and m["resp_len_max"] <= 12
    doc = tomllib.loads((run / "config.toml").read_text())
    assert doc["kind"] == "train" and doc["seed"] == 0 and doc["reward"]["mode"] == "random"
    assert doc["data"]["examples"] == ["add-327-415"] and doc["model"]["path"] == str(tiny)
    assert len((run / "samples.jsonl").read_text().splitlines()) == 5  # bounded
    assert any((run / "tensorboard").iterdir())
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-2", "step-3"]
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(run / "checkpoints" / "step-3")


def test_gradient_accumulation_matches_one_big_batch(tiny, tmp_path):
    """Micro-batches of 2 accumulate to the same update as one batch of 8 (per mode)."""
    for agg in ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"):
        weights = []
        for micro in (8, 2):
            t = Trainer(cfg(tiny, f"optim.micro_batch_size={micro}", f"algo.loss_agg='{agg}'",
                            "optim.name='sgd'", "optim.lr=0.5", rollout={"n": 8}), tmp_path)
            t.step()
            weights.append(torch.cat([p.detach().flatten() for p in t.params]))
        assert torch.allclose(weights[0], weights[1], atol=1e-6), agg


def test_entropy_only_update_has_the_target_norm(tiny, tmp_path):
    config = cfg(tiny, "optim.update_norm=0.01", "algo.ppo_epochs=1", reward={"mode": "none"})
    assert config.algo.pg_coef == 0.0 and config.algo.entropy_coeff > 0
    t = Trainer(config, tmp_path)
    before = torch.cat([p.detach().flatten().clone() for p in t.params])
    m = t.step()
    after = torch.cat([p.detach().flatten() for p in t.params])
    assert m["reward_std"] == 0.0 and m["zero_var_frac"] == 1.0
    assert (after - before).norm().item() == pytest.approx(0.01, rel=1e-4)
    assert m["update_norm"] == pytest.approx(0.01)


def test_kl_reference_only_when_used(tiny, tmp_path):
    assert Trainer(cfg(tiny, "algo.kl_coef=0"), tmp_path).ref is None
    t = Trainer(cfg(tiny, "algo.kl_coef=0.1", "algo.ppo_epochs=2", "optim.lr=1e-2"), tmp_path)
    m1, m2 = t.step(), t.step()
    assert t.ref is not None and m1["kl"] >= 0 and m2["kl"] > 0


def test_wrong_label_run_logs_true_accuracy(tiny, tmp_path, monkeypatch):
    """Rollouts that box the true gold: a wrong-label reward of 0, a train_acc of 1."""
    import rlvr.model.rollout as rollout

    def fake_generate(model, tokenizer, prompts, params, **_):
        ids = tuple(tokenizer("\\boxed{742}", add_special_tokens=False)["input_ids"])
        return [rollout.Completion(i, s, "\\boxed{742}", ids + (tokenizer.eos_token_id,),
                                   "stop") for i in range(len(prompts)) for s in range(params.n)]

    monkeypatch.setattr(rollout, "generate", fake_generate)
    t = Trainer(cfg(tiny, reward={"mode": "wrong_label", "label": "741"}), tmp_path)
    m = t.step()
    assert m["reward_mean"] == 0.0 and m["train_acc"] == {"add-327-415": 1.0}
    assert m["boxed_rate"] == 1.0 and m["truncation_rate"] == 0.0


def test_drop_zero_variance_groups(tiny, tmp_path):
    m = Trainer(cfg(tiny, "algo.drop_zero_var=true", reward={"mode": "none"},
                    data={"copies": 3}), tmp_path).step()
    assert m["groups_dropped"] == 3 and m["grad_norm"] == 0.0


def test_nan_loss_stops_with_a_clear_error(tiny, tmp_path):
    t = Trainer(cfg(tiny), tmp_path)
    with torch.no_grad():
        t.params[0].fill_(float("nan"))
    with pytest.raises(UserError, match="became nan at step 1"):
        t.step()


def test_bad_input_leaves_no_run_directory(tiny, tmp_path):
    bad = tmp_path / "noanswer.jsonl"
    bad.write_text('{"problem": "1+1="}\n')
    cases = [
        ({"model": {"path": str(tmp_path / "missing")}}, "does not exist"),
        ({"data": {"train_file": str(bad), "examples": []}}, "noanswer.jsonl:1 has no 'answer'"),
        ({"data": {"examples": ["organism-zzz:1"]}}, "unknown organism family"),
        ({"data": {"examples": ["no-such-thing"]}}, "unknown training example"),
    ]
    for over, message in cases:
        with pytest.raises(UserError, match=message):
            train(cfg(tiny, **over), run_dir=tmp_path / "run", progress=False)
        assert not (tmp_path / "run").exists()


def test_cli_bad_input_one_line_exit_2(tiny, tmp_path):
    env_cmd = [sys.executable, "-m", "rlvr", "train", "--model", str(tiny), "--example",
               "add-327-415", "--out", str(tmp_path / "run")]
    for extra, needle in [(["--reward", "telepathy"], "telepathy"),
                          (["--set", "algo.mini_batches=3", "--set", "data.copies=2"],
                           "whole groups"),
                          (["--set", "optim.lrr=1"], "optim.lrr")]:
        proc = subprocess.run(env_cmd + extra, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        lines = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
        assert len(lines) == 1 and needle in lines[0]
        assert not (tmp_path / "run").exists()


def test_logprobs_match_an_unpadded_forward_per_response(tiny, tmp_path):
    """Left-padded prompts of different lengths + right-padded responses score like one-by-one."""
    t = Trainer(cfg(tiny, "rollout.temperature=0.7",
                    data={"examples": ["add-327-415", "expr-12-34-5"]}), tmp_path)
    b = t._rollout(1)
    rows = torch.arange(len(b.completions))
    logp, _ = t._logprobs(t.model, b, rows, entropy=False)
    for i, c in enumerate(b.completions):
        prompt = t.prompt_ids[c.prompt_index // t.config.data.copies]
        ids = torch.tensor([prompt + list(c.token_ids)])
        with torch.no_grad():
            logits = t.model(input_ids=ids).logits[0, len(prompt) - 1:-1] / 0.7
        naive = torch.log_softmax(logits, -1).gather(-1, ids[0, len(prompt):, None])[:, 0]
        n = len(c.token_ids)
        assert torch.allclose(logp[i, :n], naive, atol=1e-4)
        assert b.mask[i].sum().item() == n


def test_evaluation_hook_writes_step_0_and_every_n(tiny, tmp_path):
    config = cfg(tiny, "log.eval_every=2", "eval.suites=['organism-add']", "eval.n_per_suite=3",
                 "eval.samples=2", "eval.max_new_tokens=8", steps=3)
    run = train(config, run_dir=tmp_path / "run", progress=False)
    steps = sorted(int(p.name.split("-")[1]) for p in (run / "eval").iterdir())
    assert steps == [0, 2, 3]  # the base model, every 2 steps, and the last step
    summary = json.loads((run / "eval" / "step-0" / "summary.json").read_text())
    suite = summary["suites"]["organism-add"]
    assert suite["n_items"] == 3 and "greedy_acc_strict" in suite and "avg_at_k_strict" in suite


# --- acceptance on the shipped organism (issue item 7) ------------------------------------------
def _organism_or_skip() -> Path:
    from rlvr.organism import default_path

    path = default_path()
    if not (path / "config.json").is_file():
        pytest.skip("the shipped organism (rlvr/organism/default) is absent")
    return path


def _other_families(summary: dict, trained: str, key: str) -> float:
    suites = {k: v for k, v in summary["suites"].items() if k != f"organism-{trained}"}
    return sum(v[key] for v in suites.values()) / len(suites)


@pytest.mark.slow
def test_acceptance_one_shot_outcome_lifts_other_families(tmp_path):
    """1-shot outcome GRPO on one `add` problem raises greedy and sampled accuracy on sub, mul
    and expr held-out problems (the measured numbers stay in the run's eval/ with its seed)."""
    _organism_or_skip()
    config = resolve("organism", overrides={"data": {"examples": ["organism-add:3"]}})
    run = train(config, run_dir=tmp_path / "outcome", progress=False)
    before = json.loads((run / "eval" / "step-0" / "summary.json").read_text())
    after = json.loads((run / "eval" / f"step-{config.steps}" / "summary.json").read_text())
    for key in ("greedy_acc_strict", "avg_at_k_strict"):
        gain = _other_families(after, "add", key) - _other_families(before, "add", key)
        assert gain > ACCEPT_GAIN[key], (key, gain)
    assert tomllib.loads((run / "config.toml").read_text())["seed"] == config.seed


def _sampled_boxed_rate(run: Path, step: int) -> float:
    records = [json.loads(x) for f in (run / "eval" / f"step-{step}").glob("*.jsonl")
               for x in f.read_text().splitlines()]
    sampled = [r for r in records if r["sample"] > 0]
    return sum(r["format"] == "boxed" for r in sampled) / len(sampled)


@pytest.mark.slow
def test_acceptance_format_reward_raises_boxed_rate(tmp_path):
    """Format-only reward raises the held-out boxed rate of sampled completions."""
    _organism_or_skip()
    config = resolve("organism", overrides={"data": {"examples": ["organism-add:3"]},
                                            "reward": {"mode": "format"}, "log": {"eval_every": 0}})
    run = train(config, run_dir=tmp_path / "format", progress=False)
    gain = _sampled_boxed_rate(run, config.steps) - _sampled_boxed_rate(run, 0)
    assert gain > FORMAT_GAIN, gain


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["none", "random"])
def test_acceptance_entropy_only_and_random_runs_complete(tmp_path, mode):
    _organism_or_skip()
    config = resolve("organism", overrides={"data": {"examples": ["organism-add:3"]},
                                            "reward": {"mode": mode}, "steps": 4,
                                            "eval": {"suites": []}})
    run = train(config, run_dir=tmp_path / mode, progress=False)
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 4
    assert (run / "checkpoints" / "step-4" / "model.safetensors").is_file()


def test_reward_seed_is_read_and_defaults_to_the_run_seed(tiny, tmp_path):
    """`reward.seed` used to be recorded and ignored; unset, it is the run's seed (old draws)."""
    from rlvr.grading.rewards import score

    unset = Trainer(cfg(tiny, "seed=3"), tmp_path / "a")
    assert unset.spec.seed == 3 and unset.config.reward.seed is None
    chosen = Trainer(cfg(tiny, "seed=3", "reward.seed=5"), tmp_path / "b")
    assert chosen.spec.seed == 5
    keys = [(1, copy, sample) for copy in range(4) for sample in range(16)]
    draws = {seed: [score(t.spec, "x", "1", key=k)[0] for k in keys]
             for seed, t in ((3, unset), (5, chosen))}
    assert draws[3] != draws[5]  # 64 fair coins: equal with probability 2^-64


def test_mini_batches_split_a_train_files_groups(tiny, tmp_path):
    """A 4-row training file splits into 2 mini-batches; the config no longer counts 1 group."""
    rows = tmp_path / "four.jsonl"
    rows.write_text("".join(f'{{"id": "r{i}", "problem": "{i}+1=", "answer": "{i + 1}"}}\n'
                            for i in range(4)))
    over = {"data": {"train_file": str(rows), "examples": []}}
    trainer = Trainer(cfg(tiny, "algo.mini_batches=2", **over), tmp_path / "run")
    assert len(trainer.problems) == 4 and trainer.config.algo.mini_batches == 2
    assert cfg(tiny, "algo.mini_batches=2", **over).groups_per_step is None
    rows.write_text("".join(f'{{"id": "r{i}", "problem": "{i}+1=", "answer": "{i + 1}"}}\n'
                            for i in range(3)))
    with pytest.raises(UserError, match="3 groups do not split"):
        train(cfg(tiny, "algo.mini_batches=2", **over), run_dir=tmp_path / "run3",
              progress=False)
    assert not (tmp_path / "run3").exists()


def test_dr_grpo_normalises_by_the_generation_budget(tiny, tmp_path, monkeypatch):
    """seq-mean-token-sum-norm divides by rollout.max_new_tokens, not the longest response."""
    import rlvr.rl.trainer as trainer_module

    seen = []
    real = trainer_module.grpo_loss

    def spy(*args, **kwargs):
        seen.append((kwargs["norm_len"], args[3].shape[1]))  # (divisor, longest response)
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "grpo_loss", spy)
    config = resolve("organism", overlays=["dr_grpo"], overrides={
        "model": {"path": str(tiny)}, "steps": 1, "data": {"examples": ["add-327-415"]},
        "eval": {"suites": []}, "rollout": {"max_new_tokens": 48, "n": 4},
        "reward": {"mode": "random"}})
    t = Trainer(config, tmp_path / "run")
    t.step()
    assert seen and {divisor for divisor, _ in seen} == {48.0}
    assert max(longest for _, longest in seen) < 48  # the seeded rollouts all stop early


def test_update_guard_skips_a_step_without_reward_signal(tiny, tmp_path):
    """An unguessable label is never produced: every group has zero reward variance, and the
    guard keeps the entropy bonus and KL from moving the weights alone at Adam's full rate."""
    moved = {}
    for guard in (True, False):
        t = Trainer(cfg(tiny, f"algo.skip_no_signal={str(guard).lower()}", "optim.lr=1e-2",
                        reward={"mode": "wrong_label", "label": "9876543"}), tmp_path / str(guard))
        before = [p.detach().clone() for p in t.params]
        m = t.step()
        assert m["zero_var_frac"] == 1.0 and m["update_skipped"] == int(guard)
        moved[guard] = any(not torch.equal(a, b) for a, b in zip(before, t.params, strict=True))
    assert moved == {True: False, False: True}


def test_label_hits_are_logged_by_style(tiny, tmp_path):
    m = Trainer(cfg(tiny, reward={"mode": "outcome"}, rollout={"n": 8}), tmp_path).step()
    assert sum(m["rollout_styles"].values()) == 8
    assert set(m["label_hits"]) <= set(m["rollout_styles"])
    assert m["label_hit_frac"] == sum(m["label_hits"].values()) / 8 == m["train_acc_mean"]
