"""Several seeds through one forward (rlvr.model.stacked, rlvr.rl.lockstep) = the seeds one by one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from _tiny_lm import make_tiny_lm

from rlvr.errors import UserError
from rlvr.model import stacked as stacked_lm
from rlvr.model import weights
from rlvr.model.rollout import load_model
from rlvr.rl.lockstep import SeedGroup, train_seeds
from rlvr.rl.presets import resolve
from rlvr.rl.trainer import Trainer

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_lm(tmp_path_factory.mktemp("tiny") / "lm", eos_scale=3.0)


def cfg(tiny: Path, seed: int, **over):
    base = {"seed": seed, "model": {"path": str(tiny)}, "steps": 3,
            "data": {"examples": ["add-327-415"]}, "eval": {"suites": []},
            "rollout": {"max_new_tokens": 12, "n": 4}, "reward": {"mode": "random"},
            "optim": {"name": "sgd", "lr": 0.5}, "algo": {"kl_coef": 0.01}}
    base.update(over)
    return resolve("organism", overrides=base)


def test_stacked_logits_equal_each_models_own(tiny):
    models = []
    for k in range(3):
        model, _ = load_model(tiny)
        with torch.no_grad():  # three different weight sets of one architecture
            for p in model.parameters():
                p.add_(0.05 * k * torch.randn_like(p))
        models.append(model)
    ids = torch.randint(3, 60, (3, 4, 9))
    attn = torch.ones_like(ids)
    attn[:, 1, :3] = 0  # a left-padded row
    pos = (attn.cumsum(-1) - 1).clamp(min=0)
    rope = weights.rope_tables(models[0], 16, torch.float32, "cpu")
    out = stacked_lm.logits(stacked_lm.stack(models), rope, ids, attn, pos, 5)
    for k, model in enumerate(models):
        own = model(input_ids=ids[k], attention_mask=attn[k], position_ids=pos[k]).logits
        real = attn[k, :, -5:].bool()
        assert torch.allclose(out[k][real], own[:, -5:][real], atol=1e-5)


@pytest.mark.parametrize("native", ["1", "0"])
def test_seed_group_equals_the_seeds_one_by_one(tiny, tmp_path, monkeypatch, native):
    """With the C++ scoring stack (RLVR_FAST_SCORE=1, where it builds) the group updates each
    seed through the run's own `Trainer.update`: bit for bit the single runs. Without it the
    group's one stacked forward (and autograd through its token statistics, where a single run
    uses `token_stats`' written-out backward) is the same math in another rounding order,
    which two SGD steps at lr 0.5 amplify to ~3e-5."""
    from rlvr.model import native_score

    monkeypatch.setenv("RLVR_FAST_SCORE", native)
    exact = native_score.kernels() is not None
    if native == "1" and not exact:
        pytest.skip("no C++ compiler for rlvr.model.native_score")
    seeds = (0, 1, 2)
    group = SeedGroup([cfg(tiny, s) for s in seeds], [tmp_path / f"g{s}" for s in seeds])
    singles = [Trainer(cfg(tiny, s), tmp_path / f"s{s}") for s in seeds]
    for _ in range(2):
        together = group.step()
        alone = [t.step() for t in singles]
        for a, b in zip(alone, together, strict=True):
            assert a["reward_mean"] == b["reward_mean"] and a["resp_len_mean"] == b["resp_len_mean"]
            assert a["loss"] == pytest.approx(b["loss"], abs=0 if exact else 1e-5)
    for a, b in zip(singles, group.trainers, strict=True):
        for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
            assert torch.equal(p, q) if exact else torch.allclose(p, q, atol=1e-4)


def test_lockstep_rollouts_are_the_single_runs_token_for_token(tiny, tmp_path):
    """One decode loop (rlvr.model.decode.decode) behind both: a seed group's stacked rollouts
    (every row to the end) are each single run's (length-sorted batches, finished rows dropped)."""
    seeds = (0, 1, 2)
    group = SeedGroup([cfg(tiny, s) for s in seeds], [tmp_path / f"g{s}" for s in seeds])
    singles = [Trainer(cfg(tiny, s), tmp_path / f"s{s}") for s in seeds]
    seen, reasons = [], set()
    for step in (1, 2):
        for single, batch in zip(singles, group._rollouts(step), strict=True):
            alone = single._rollout(step).completions
            assert batch.completions == alone  # indices, tokens, text, finish reason
            seen.append(tuple(c.token_ids for c in alone))
            reasons |= {c.finish_reason for c in alone}
    assert reasons == {"stop", "length"}  # rows end both ways
    assert len(set(seen)) == len(seen)  # each seed and step samples its own tokens


def test_train_seeds_writes_one_ordinary_run_per_seed(tiny, tmp_path):
    configs = [cfg(tiny, s, eval={"suites": ["organism-add"], "n_per_suite": 2, "samples": 2,
                                  "at_start": False}, log={"eval_steps": [1]}) for s in (3, 4)]
    runs = train_seeds(configs, [tmp_path / "a", tmp_path / "b"])
    for run, seed in zip(runs, (3, 4), strict=True):
        metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        assert [m["step"] for m in metrics] == [1, 2, 3]
        assert sorted(p.name for p in (run / "eval").iterdir()) == ["step-1", "step-3"]
        assert (run / "checkpoints" / "step-3" / "model.safetensors").is_file()
        assert f"seed = {seed}" in (run / "config.toml").read_text()


def test_seed_group_refuses_runs_that_differ_beyond_the_seed(tiny, tmp_path):
    with pytest.raises(UserError, match="differ only in their seed"):
        SeedGroup([cfg(tiny, 0), cfg(tiny, 1, steps=4)], [tmp_path / "a", tmp_path / "b"])
    off_policy = {"algo": {"ppo_epochs": 2, "kl_coef": 0.01}}
    with pytest.raises(UserError, match="on-policy"):
        SeedGroup([cfg(tiny, 0, **off_policy)], [tmp_path / "c"])
