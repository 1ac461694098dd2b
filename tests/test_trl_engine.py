"""`rlvr train --engine trl`: the paper preset as a TRL GRPOConfig key by key, its ablations,
a few TRL steps on CPU into a run directory `rlvr report` reads, and the same loss and gradient
as the native engine on one fixed batch of rollouts."""

from __future__ import annotations

import json
import tempfile

import pytest
import torch
from _tiny_lm import make_tiny_lm

from rlvr.cli import main
from rlvr.errors import UserError
from rlvr.rl.presets import resolve

pytest.importorskip("trl")

from rlvr.rl.trl_engine import build_trainer, grpo_kwargs  # noqa: E402

# The paper's recipe (../shared/FACTS.md) in TRL 1.16's names.
PAPER_TRL = {
    "num_generations": 8, "temperature": 0.6, "top_p": 1.0, "max_completion_length": 3072,
    "generation_batch_size": 1024,  # 128 copies × 8 rollouts: one generation per step
    "num_iterations": 1, "learning_rate": 1e-6, "lr_scheduler_type": "constant",
    "warmup_steps": 0, "weight_decay": 0.01, "adam_beta1": 0.9, "adam_beta2": 0.999,
    "max_grad_norm": 1.0, "beta": 0.001, "use_bias_correction_kl": False, "epsilon": 0.2,
    "epsilon_high": 0.2, "loss_type": "dapo", "scale_rewards": "group",
    "entropy_coef": 0.001, "max_steps": 2000, "seed": 0,
}


def _paper(reward: str = "outcome", **over):
    return resolve("paper", reward_mode=reward, overrides={
        "data": {"examples": ["124"]}, "reward": {"mode": reward, **over}})


def _grpo_config(cfg, **kw):
    from trl import GRPOConfig

    from rlvr.rl.trl_engine import _renamed

    with tempfile.TemporaryDirectory() as out:
        return GRPOConfig(output_dir=out, **_renamed(grpo_kwargs(cfg, 128, gpu=False,
                                                                 vllm=False, **kw), GRPOConfig))


def test_paper_preset_is_the_papers_grpo_config_key_by_key():
    config = _grpo_config(_paper())
    for key, want in PAPER_TRL.items():
        got = getattr(config, key)
        print(f"{key:28s} {got!r:>12}   paper {want!r}")
        assert got == want, key
    # one optimizer update per generation: the whole step is one mini-batch
    assert config.steps_per_generation == config.gradient_accumulation_steps
    assert config.per_device_train_batch_size * config.gradient_accumulation_steps == 1024
    assert config.optim in ("adamw_torch", "OptimizerNames.ADAMW_TORCH") or \
        str(config.optim).endswith("adamw_torch")


def test_gpu_kwargs_use_vllm_colocate_sleep_bf16():
    kwargs = grpo_kwargs(_paper(), 128, gpu=True, vllm=True)
    assert kwargs["use_vllm"] and kwargs["vllm_mode"] == "colocate"
    assert kwargs["vllm_enable_sleep_mode"] and kwargs["bf16"] and not kwargs["use_cpu"]
    assert kwargs["vllm_max_model_length"] == 1024 + 3072
    assert kwargs["vllm_importance_sampling_correction"] is False


@pytest.mark.parametrize("reward,extra", [("format", {}), ("random", {}),
                                          ("wrong_label", {"label": "12.7"})])
def test_ablations_keep_the_recipe(reward, extra):
    assert grpo_kwargs(_paper(reward, **extra), 128, gpu=False, vllm=False) == grpo_kwargs(
        _paper(), 128, gpu=False, vllm=False)


def test_entropy_only_is_zero_reward_without_kl_or_weight_decay(tmp_path):
    cfg = _paper("none")
    kwargs = grpo_kwargs(cfg, 128, gpu=False, vllm=False)
    assert kwargs["beta"] == 0.0 and kwargs["weight_decay"] == 0.0
    assert kwargs["entropy_coef"] == 0.001
    from rlvr.rl.trl_record import Recorder

    recorder = Recorder(cfg, [], tmp_path, None, frozenset({0}))
    rewards = recorder.reward(completions=["\\boxed{12.8}", "no"], completion_ids=[[5, 0], [6]],
                              answer=["12.8", "12.8"], example=["124", "124"])
    assert rewards == [0.0, 0.0]  # so every GRPO advantage, and the policy gradient, is 0
    assert recorder.pending[0]["info"]["true_correct_strict"]  # the true accuracy is kept


def test_the_recorder_draws_the_native_trainers_rewards(tmp_path):
    """reward.seed, when set, keys the random draws in both engines (not the run's seed)."""
    from rlvr.rl.trl_record import Recorder

    cfg = _paper("random", seed=7)
    recorder = Recorder(cfg, [], tmp_path, None, frozenset({0}))
    assert recorder.spec == cfg.reward_spec and recorder.spec.seed == 7 != cfg.seed


def test_keys_trl_cannot_express_are_refused():
    # a matched entropy-only control runs under TRL too: its update_norm is a callback
    organism = resolve("organism", reward_mode="none",
                       overrides={"data": {"examples": ["organism-add:3"]},
                                  "reward": {"mode": "none"}, "optim": {"update_norm": 0.04}})
    assert organism.optim.update_norm > 0
    assert grpo_kwargs(organism, 1, gpu=False, vllm=False)["beta"] == 0.0
    with pytest.raises(UserError, match="kl_type"):
        grpo_kwargs(resolve("paper", sets=["algo.kl_type='k2'", "data.examples=['1']"]), 128,
                    gpu=False, vllm=False)


@pytest.mark.slow
def test_trl_trains_the_organism_into_a_run_directory_report_reads(tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["train", "--engine", "trl", "--example", "organism-add:3", "--steps", "2",
                 "--out", str(run), "--no-progress", "--set", "rollout.n=4",
                 "--set", "rollout.max_new_tokens=16", "--set", "optim.micro_batch_size=4",
                 "--set", "eval.n_per_suite=4", "--set", "log.samples_every=1"])
    assert code == 0, capsys.readouterr().err
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [1, 2]
    from test_trainer import RUN_FORMAT_FIELDS

    for m in lines:
        assert RUN_FORMAT_FIELDS <= set(m) and m["entropy"] > 0
    assert (run / "checkpoints" / "step-2" / "config.json").is_file()
    assert {p.name for p in (run / "eval").iterdir()} == {"step-0", "step-2"}
    import tomllib

    doc = tomllib.loads((run / "config.toml").read_text())
    assert doc["engine"] == "trl" and doc["trl"]["num_iterations"] == 1  # organism: 1 epoch
    assert doc["trl"]["max_steps"] == 2  # 2 rlvr steps × 1 TRL update each
    capsys.readouterr()
    assert main(["report", str(run), "--out", str(tmp_path / "r.html"), "--quiet"]) == 0
    assert (tmp_path / "r.html").stat().st_size > 1000


def test_same_loss_and_gradient_as_the_native_engine(tmp_path):
    """One fixed batch of rollouts (advantages and reference log-probs given) through the
    native engine's log-prob/loss code and through TRL's `_compute_loss`."""
    from rlvr.rl.core_algos import grpo_loss
    from rlvr.rl.trainer import Trainer

    model = make_tiny_lm(tmp_path / "lm", eos_scale=3.0)
    cfg = resolve("paper", overrides={
        "model": {"path": str(model), "device": "cpu", "dtype": "float32",
                  "gradient_checkpointing": False},
        "data": {"examples": ["add-327-415"], "copies": 2, "template": "raw"},
        "rollout": {"n": 4, "max_new_tokens": 12, "temperature": 0.7},
        "algo": {"entropy_coeff": 0.01, "kl_coef": 0.05}, "optim": {"micro_batch_size": 8},
        "eval": {"suites": []}, "steps": 1})
    native = Trainer(cfg, tmp_path / "native")
    batch = native._rollout(1)
    rows = torch.arange(len(batch.completions))
    mask = batch.mask
    assert (mask.sum(-1) < mask.shape[1]).any()  # unequal lengths: padding in play
    gen = torch.Generator().manual_seed(0)
    adv = torch.randn(len(rows), generator=gen)
    logp, ent = native._logprobs(native.model, batch, rows, entropy=True)
    ref = (logp.detach() + 0.2 * torch.randn(logp.shape, generator=gen)) * mask
    a = cfg.algo
    loss, _ = grpo_loss(logp, logp.detach(), adv, mask, entropy=ent, ref_logp=ref,
                        entropy_coeff=a.entropy_coeff, kl_coef=a.kl_coef, clip_low=a.clip_low,
                        clip_high=a.clip_high, agg=a.loss_agg)
    loss.backward()
    with tempfile.TemporaryDirectory() as scratch:
        trl_trainer, _ = build_trainer(cfg, tmp_path / "trl", scratch)
        T = batch.tokens.shape[1]
        P = batch.input_ids.shape[1] - T
        inputs = {"prompt_ids": batch.input_ids[:, :P], "prompt_mask": batch.attention[:, :P],
                  "completion_ids": batch.tokens, "completion_mask": mask.long(),
                  "advantages": adv, "ref_per_token_logps": ref,
                  "num_items_in_batch": mask.sum()}
        trl_trainer.model.train()
        trl_trainer.current_gradient_accumulation_steps = 1
        trl_loss = trl_trainer._compute_loss(trl_trainer.model, inputs)
        trl_loss.backward()
        torch.testing.assert_close(trl_loss.detach(), loss.detach(), atol=1e-6, rtol=1e-5)
        theirs = dict(trl_trainer.model.named_parameters())
        pad = native.tokenizer.pad_token_id
        for name, param in native.model.named_parameters():
            mine, other = param.grad, theirs[name].grad
            if name.endswith("embed_tokens.weight"):
                # A sampled pad token (a real token of the tiny model) trains its embedding
                # in the native engine; HF's nn.Embedding(padding_idx=pad), which TRL's
                # forward goes through, gives that row no gradient. Every other row agrees.
                mine, other = _without_row(mine, pad), _without_row(other, pad)
            torch.testing.assert_close(other, mine, atol=1e-5, rtol=1e-4, msg=name)


def _without_row(grad: torch.Tensor, row: int) -> torch.Tensor:
    return torch.cat([grad[:row], grad[row + 1:]])


def _organism_args(run, *extra):
    return ["train", "--engine", "trl", "--example", "organism-add:3", "--out", str(run),
            "--no-progress", "--set", "rollout.n=4", "--set", "rollout.max_new_tokens=12",
            "--set", "optim.micro_batch_size=4", "--no-eval", "--set", "log.save_every=1",
            "--set", "log.keep_last=2", "--set", "log.snapshot_steps=[0,2]", *extra]


@pytest.mark.slow
def test_trl_resume_continues_from_the_newest_checkpoint(tmp_path, capsys):
    import torch

    run = tmp_path / "run"
    assert main(_organism_args(run, "--steps", "2")) == 0, capsys.readouterr().err
    state = torch.load(run / "checkpoints" / "step-2" / "trainer_state.pt", weights_only=False)
    assert state["step"] == 2 and state["optimizer"]["state"]  # Adam moments saved
    assert main(["train", "--engine", "trl", "--out", str(run), "--resume", "--steps", "3",
                 "--no-progress"]) == 0, capsys.readouterr().err
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [1, 2, 3]
    # the last 2 resumable checkpoints, bf16 snapshots at the named steps
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-2", "step-3"]
    assert sorted(p.name for p in (run / "snapshots").iterdir()) == ["step-0", "step-2"]
    after = torch.load(run / "checkpoints" / "step-3" / "trainer_state.pt", weights_only=False)
    steps = {int(s["step"]) for s in after["optimizer"]["state"].values()}
    assert steps == {3}  # Adam went on counting from the loaded state, not from 0
    from safetensors.torch import load_file

    weights = load_file(run / "snapshots" / "step-2" / "model.safetensors")
    assert all(t.dtype == torch.bfloat16 for t in weights.values())


@pytest.mark.slow
def test_trl_runs_the_organisms_entropy_only_control(tmp_path, capsys):
    run = tmp_path / "none"
    assert main(_organism_args(run, "--steps", "1", "--reward", "none")) == 0, \
        capsys.readouterr().err
    line = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert line["reward_mean"] == 0.0
