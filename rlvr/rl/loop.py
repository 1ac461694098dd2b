"""A training run: the run directory around `Trainer.step` (rlvr.rl.trainer).

`train` validates every input (model, device, examples, suites) before the folder exists, then
writes config.toml and the training rows' snapshot, evaluates at step 0 and on the schedule of
`rlvr.rl.eval_hook`, logs each step (metrics.jsonl, samples.jsonl, TensorBoard; rlvr.rl.runlog)
and saves checkpoints. `--resume` continues from the newest complete checkpoint with the rows
the run started with; a new run that stops before its first logged step leaves no folder.
"""

from __future__ import annotations

import contextlib
import importlib.util
from pathlib import Path

from rlvr.errors import UserError
from rlvr.rl import checkpoint as ckpt
from rlvr.rl.config import TrainConfig, config_to_dict
from rlvr.rl.eval_hook import eval_due
from rlvr.rl.problem_sets import eval_suites
from rlvr.rl.snapshots import save_snapshot, snapshot_due
from rlvr.rl.trainer import Trainer
from rlvr.rundir.snapshot import SNAPSHOT, write_snapshot
from rlvr.rundir.write import fresh_run_dir, new_run_dir, write_config_toml

__all__ = ["train"]


def train(config: TrainConfig, *, run_dir: str | Path, resume: bool = False,
          progress: bool = True) -> Path:
    """Run (or resume) a training run into `run_dir`; returns the run directory.

    Everything is validated (model, device, examples, suites) before the folder is created; a
    new run that stops before its first logged step leaves no folder behind.
    """
    run_dir = Path(run_dir)
    if not resume and run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        new_run_dir(run_dir, resumable=True)  # raises the "already exists" error before any work
    if resume and not (run_dir / "config.toml").is_file():
        raise UserError(f"cannot resume: {run_dir} has no config.toml", "drop --resume")
    if config.log.wandb and importlib.util.find_spec("wandb") is None:
        raise UserError("log.wandb = true but the wandb package is not installed",
                        "pip install wandb, or drop log.wandb")
    trainer = Trainer(config, run_dir, resume=resume)  # validates every input first
    trainer.progress = progress
    suites = eval_suites(config.eval)
    trainer.fit_evaluation(suites)
    config = trainer.config  # with any cap to the model's context (rlvr.model.context)
    if resume:
        folder = contextlib.nullcontext(new_run_dir(run_dir, resume=True))
        ckpt.clean_scratch(run_dir)  # what a kill mid-write left: never loaded, never kept
    else:
        folder = fresh_run_dir(run_dir, resumable=True,
                               keep=lambda: (run_dir / "metrics.jsonl").is_file())
    with folder:
        # On resume this re-records the config (e.g. a --steps extension) with today's versions.
        write_config_toml(run_dir / "config.toml", config_to_dict(config), seed=config.seed)
        if not resume or not (run_dir / SNAPSHOT).is_file():
            write_snapshot(run_dir, trainer.problems)
        _loop(trainer, suites, progress)
    return run_dir


def _loop(trainer: Trainer, suites: dict, progress: bool) -> None:
    from rlvr.rl.runlog import RunLog

    config, run_dir, lg = trainer.config, trainer.run_dir, trainer.config.log

    def due(step: int) -> bool:
        return bool(suites) and eval_due(config, step)

    log = RunLog(run_dir, config_dict=config_to_dict(config), start_step=trainer.step_count,
                 total_steps=config.steps, progress=progress, wandb=config.log.wandb,
                 wandb_project=config.log.wandb_project, samples_max=config.log.samples_max)
    trainer.on_phase = log.phase
    try:
        start = trainer.step_count
        if snapshot_due(lg, start):
            save_snapshot(run_dir, start, trainer.model, trainer.tokenizer)
        if due(start) and not (run_dir / "eval" / f"step-{start}" / "summary.json").is_file():
            log.evaluation(start, trainer.evaluate(suites, progress=progress))
        while trainer.step_count < config.steps:
            metrics = trainer.step()
            log.step(metrics)
            log.samples(trainer.samples)
            step, last = trainer.step_count, trainer.step_count == config.steps
            if due(step):
                log.evaluation(step, trainer.evaluate(suites, progress=progress))
            if last or (lg.save_every and step % lg.save_every == 0):
                trainer.save()
            if snapshot_due(lg, step):
                save_snapshot(run_dir, step, trainer.model, trainer.tokenizer)
    finally:
        log.close()
