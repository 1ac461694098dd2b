"""examples/trl_grpo_organism.py trains for two tiny steps with rlvr's reward inside TRL."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("trl")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "trl_grpo_organism.py"


def _example():
    spec = importlib.util.spec_from_file_location("trl_grpo_organism", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_two_grpo_steps_with_the_rlvr_reward(tmp_path):
    from _tiny_lm import make_tiny_lm

    model = make_tiny_lm(tmp_path / "model", eos_scale=3.0)
    trainer = _example().build_trainer(
        model=str(model), example="organism-add:3", reward="format", steps=2,
        out=str(tmp_path / "trl"), num_generations=4, max_completion_length=12, seed=0)
    before = {k: v.detach().clone() for k, v in trainer.model.named_parameters()}
    trainer.train()
    logged = [r for r in trainer.state.log_history if "rewards/rlvr_format/mean" in r]
    assert [r["step"] for r in logged] == [1, 2]
    assert all(0.0 <= r["rewards/rlvr_format/mean"] <= 1.0 for r in logged)
    # the entropy bonus alone moves the weights even when every reward is equal
    after = dict(trainer.model.named_parameters())
    assert any(not before[k].equal(after[k].detach()) for k in before)


def test_bad_micro_batch_is_refused(tmp_path):
    with pytest.raises(ValueError, match="must divide"):
        _example().build_trainer(model=str(tmp_path), example="organism-add:3",
                                 num_generations=4, micro_batch_size=3)
