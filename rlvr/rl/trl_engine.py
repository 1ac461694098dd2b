"""`rlvr train --engine trl`: the same config through TRL 1.16's `GRPOTrainer`, the same run dir.

The native trainer (rlvr.rl.trainer, rlvr.rl.loop) is the CPU/organism engine and the reference; this one is
the one-GPU path: TRL generates with vLLM in colocate mode (sleep mode, bf16) when vLLM and a
GPU are present, and with `model.generate` otherwise (CPU, tests). What it writes follows
docs/run-format.md, so `rlvr eval --run`, `report` and `decompose` read it unchanged:
config.toml (the rlvr config, `engine = "trl"` and the `[trl]` GRPOConfig it resolved to),
metrics.jsonl (one line per optimizer step, from our reward bookkeeping and TRL's logs),
samples.jsonl, checkpoints/step-N/ (Hugging Face folders) and eval/step-N/ (rlvr.evaluation.evaluate
on the in-memory policy, at step 0, every `log.eval_every` steps and at the end).

One step is the paper's: `data.copies` × examples prompts × `rollout.n` completions, one
generation, gradient accumulation over micro-batches of `optim.micro_batch_size`,
`algo.mini_batches` optimizer updates per pass (`steps_per_generation` / accumulation).

Where TRL cannot say exactly what rlvr says (docs/gpu.md lists them):
- `algo.adv_eps`: TRL's ε in (r − mean)/(std + ε) is fixed at 1e-4 (rlvr and verl: 1e-6).
- `algo.kl_type`: TRL's `beta` term is k3 (`low_var_kl`) without verl's clamp to ±10; other
  types are refused. `use_bias_correction_kl=False` keeps its gradient the paper's.
- `algo.pg_coef`: no TRL key. Entropy-only is reward mode `none`: every reward is 0, so every
  advantage and the policy gradient are exactly 0 (as in the verl export); other values are
  refused, as are `algo.drop_zero_var`, `optim.update_norm` and SGD momentum.
- the entropy bonus: TRL averages it per micro-batch, rlvr over the step's tokens: equal when
  a step is one micro-batch or its micro-batches hold equal token counts.
- `rollout.max_prompt_tokens`: TRL 1.16 has no prompt limit; the engine checks it first.
- `rollout.batch_size`: no key (vLLM schedules its own batches).
- the samplers differ (TRL/vLLM draw their own noise), so rollouts differ from the native
  engine's at the same seed; the loss and gradient on the same rollouts agree (tests).
- with vLLM, TRL's importance-sampling correction for the vLLM/trainer mismatch is turned off
  (`vllm_importance_sampling_correction=False`): the paper's verl had none.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rlvr.errors import UserError
from rlvr.rl.config import TrainConfig, config_to_dict
from rlvr.rl.keymap import trl_kwargs

__all__ = ["build_trainer", "grpo_kwargs", "train_trl"]

def grpo_kwargs(cfg: TrainConfig, groups: int, *, gpu: bool, vllm: bool) -> dict[str, Any]:
    """`trl.GRPOConfig` keyword arguments for `cfg` with `groups` GRPO groups per step.

    Every key of the config maps through the one key map (`rlvr.rl.keymap.trl_kwargs`, which
    refuses what TRL cannot express; docs/mapping.md); this adds the device and the engine's
    own fixed settings. output_dir and the like are the caller's.
    """
    kwargs = trl_kwargs(cfg, groups=groups)
    kwargs.update({
        "use_cpu": not gpu, "bf16": gpu and cfg.model.dtype in ("auto", "bfloat16"),
        "fp16": gpu and cfg.model.dtype == "float16",
        # Fixed: the run directory is ours (checkpoints, logs); rows keep their order so the
        # groups are the examples' copies in order; dropout off as the native trainer has it.
        "save_strategy": "no", "logging_steps": 1, "report_to": "none",
        "shuffle_dataset": False, "disable_dropout": True, "dataloader_num_workers": 0,
        "disable_tqdm": True,
    })
    kwargs.pop("save_steps", None)
    if vllm:
        kwargs.update({
            "use_vllm": True, "vllm_mode": "colocate", "vllm_enable_sleep_mode": True,
            "vllm_gpu_memory_utilization": cfg.rollout.vllm_memory,
            "vllm_max_model_length": cfg.rollout.max_prompt_tokens + cfg.rollout.max_new_tokens,
            "vllm_importance_sampling_correction": False,
        })
    return kwargs


def _devices(cfg: TrainConfig) -> tuple[bool, bool]:
    """(GPU, vLLM) for this run: a GPU when asked or present; vLLM where it is installed."""
    import importlib.util

    import torch

    gpu = cfg.model.device == "cuda" or (cfg.model.device == "auto"
                                         and torch.cuda.is_available())
    if gpu and not torch.cuda.is_available():
        raise UserError("model.device = cuda but no CUDA GPU is visible")
    return gpu, gpu and importlib.util.find_spec("vllm") is not None


def build_trainer(cfg: TrainConfig, run_dir: str | Path, scratch: str | Path,
                  start: Path | None = None):
    """The ready `GRPOTrainer` and its recorder (the run directory's bookkeeping). TRL wants
    an output folder of its own at once: `scratch` (nothing of the run is kept there).
    `start`: a resumable checkpoint (rlvr.rl.checkpoint) to continue from."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from rlvr.data.prompts import render_many
    from rlvr.model.locate import model_path
    from rlvr.model.rollout import encode_prompts, load_model, stop_token_ids
    from rlvr.rl.problem_sets import training_problems
    from rlvr.rl.trl_record import Recorder

    problems = training_problems(cfg.data)
    gpu, vllm = _devices(cfg)
    if gpu and not vllm:
        from rlvr.errors import warn

        responses = len(problems) * cfg.data.copies * cfg.rollout.n
        warn(f"vLLM is not installed: TRL generates each step's {responses} responses in one "
             "model.generate call, slowly and with a cache the paper's shapes may not fit "
             "(pip install vllm; docs/gpu.md)")
    base = model_path(cfg.model.path)
    model, tokenizer = load_model(start or base, device="cuda" if gpu else "cpu",
                                  dtype=_dtype(cfg.model.dtype))
    if start is not None:  # TRL loads the KL reference from the model's name: the base's
        from rlvr.model.locate import resolve_model

        model.config._name_or_path = str(resolve_model(str(base)))
    prompts = render_many(cfg.data.template, [p.problem for p in problems], tokenizer)
    longest = max(len(ids) for ids in encode_prompts(tokenizer, prompts))
    if longest > cfg.rollout.max_prompt_tokens:
        raise UserError(f"a training prompt has {longest} tokens, more than "
                        f"rollout.max_prompt_tokens = {cfg.rollout.max_prompt_tokens}")
    stops = sorted(stop_token_ids(model, tokenizer, cfg.rollout.stop))
    model.generation_config.eos_token_id = stops  # rollout.stop: EOS, or also end of turn
    kwargs = grpo_kwargs(cfg, len(problems) * cfg.data.copies, gpu=gpu, vllm=vllm)
    done = _checkpoint_step(start)
    updates = cfg.algo.ppo_epochs * cfg.algo.mini_batches
    kwargs["max_steps"] = (cfg.steps - done) * updates
    if vllm:
        kwargs["generation_kwargs"] = {"stop_token_ids": stops}
    args = GRPOConfig(output_dir=str(scratch), **_renamed(kwargs, GRPOConfig))
    rows = [{"prompt": text, "answer": p.answer, "example": p.id}
            for p, text in zip(problems, prompts, strict=True) for _ in range(cfg.data.copies)]
    recorder = Recorder(cfg, problems, run_dir, tokenizer, frozenset(stops))
    recorder.resume_from(start, done)
    trainer = GRPOTrainer(model=model, reward_funcs=[recorder.reward], args=args,
                          train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                          callbacks=[recorder.callback()])
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # the run's own log and bar report each step
    recorder.grpo_config = kwargs
    recorder.trainer = trainer
    return trainer, recorder


def _checkpoint_step(start: Path | None) -> int:
    if start is None:
        return 0
    import torch

    from rlvr.rl.checkpoint import STATE_FILE

    state = torch.load(Path(start) / STATE_FILE, map_location="cpu", weights_only=False)
    return int(state["step"])


def _renamed(kwargs: dict[str, Any], config_class) -> dict[str, Any]:
    """transformers 5.2x renamed `gradient_checkpointing` to `activation_checkpointing`."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(config_class)}
    if "activation_checkpointing" in names and "gradient_checkpointing" in kwargs:
        kwargs = dict(kwargs)
        kwargs["activation_checkpointing"] = kwargs.pop("gradient_checkpointing")
    return kwargs


def _dtype(name: str):
    import torch

    # auto: fp32 weights and bf16 autocast (TRL's bf16=True), as the native trainer does:
    # an lr of 1e-6 is below bf16's resolution for a weight.
    return {"auto": torch.float32, "float32": torch.float32, "bfloat16": torch.bfloat16,
            "float16": torch.float16}[name]


def train_trl(cfg: TrainConfig, *, run_dir: str | Path, progress: bool = True,
              resume: bool = False) -> Path:
    """Train `cfg` with TRL into `run_dir` (a new run directory, or with `resume` the run's
    own, continued from its newest resumable checkpoint); returns it."""
    import tempfile

    from rlvr.rl import checkpoint as ckpt
    from rlvr.rl.problem_sets import eval_suites
    from rlvr.rundir.write import new_run_dir, write_config_toml

    run_dir = Path(run_dir)
    start = ckpt.latest_checkpoint(run_dir) if resume else None
    if resume and start is None:
        raise UserError(f"cannot resume: {run_dir} has no resumable checkpoint",
                        "start a new run (checkpoints are written every log.save_every steps)")
    if not resume and run_dir.exists() and any(run_dir.iterdir()):
        new_run_dir(run_dir)  # raises the "already exists" error before any work
    _quiet_third_party()
    with tempfile.TemporaryDirectory(prefix="rlvr-trl-") as scratch:
        trainer, recorder = build_trainer(cfg, run_dir, scratch, start)  # validates inputs
        suites = eval_suites(cfg.eval)
        if resume:
            new_run_dir(run_dir, resume=True)
            ckpt.clean_scratch(run_dir)
        else:
            new_run_dir(run_dir, resumable=True)
        write_config_toml(run_dir / "config.toml", {
            **config_to_dict(cfg), "engine": "trl", "trl": _toml_record(recorder.grpo_config)},
            seed=cfg.seed)
        recorder.start(suites, progress=progress, model=trainer.model)
        started = time.perf_counter()
        try:
            trainer.train()
        finally:
            recorder.close()
        recorder.finish(trainer.model, time.perf_counter() - started)
    return run_dir


def _quiet_third_party() -> None:
    """TRL, transformers and accelerate warn at length on every run; rlvr's own notices say
    what matters (as the native engine's terminal has only its own lines)."""
    import logging
    import warnings

    for name in ("trl", "transformers", "accelerate", "datasets"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for module in ("trl", "transformers", "accelerate", "torch"):
        warnings.filterwarnings("ignore", module=module)


def _toml_record(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if isinstance(v, (bool, int, float, str, list))}
