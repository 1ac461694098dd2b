"""The run directory of a TRL run (rlvr.rl.trl_engine): rewards, metrics, samples, checkpoints.

`Recorder.reward` is the run's TRL reward function: it scores each completion with
rlvr.grading.rewards (the native trainer's reward, keyed by (step, example, copy, sample) as the native
trainer keys it, so a `random` run draws the same rewards at the same step) and remembers the
grades. A step's grades and TRL's logs of its optimizer updates become one metrics.jsonl line
with the native trainer's fields (docs/run-format.md); then samples, evaluation and checkpoint
follow the native run's schedule and settings (rlvr.rl.eval_hook).

TRL counts optimizer updates; rlvr counts generations. One rlvr step is
`algo.ppo_epochs × algo.mini_batches` TRL updates (the engine sets `max_steps` so).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from pathlib import Path
from typing import Any

from rlvr.rl.config import TrainConfig, config_to_dict
from rlvr.rl.eval_hook import eval_due, fit_evaluation, run_evaluation

__all__ = ["Recorder"]

_TRL_EPS = 1e-4  # TRL's fixed ε in (r − mean) / (std + ε)


class Recorder:
    def __init__(self, cfg: TrainConfig, problems: list, run_dir: str | Path, tokenizer,
                 stops: frozenset[int]):
        self.cfg, self.problems, self.run_dir = cfg, problems, Path(run_dir)
        self.tokenizer, self.stops = tokenizer, stops
        self.spec = cfg.reward_spec  # the native trainer's, reward.seed included
        self.updates = cfg.algo.ppo_epochs * cfg.algo.mini_batches  # TRL steps per rlvr step
        self.pending: list[dict] = []  # this step's graded completions
        self.logs: list[dict] = []  # TRL's logs of this step's updates
        self.grpo_config: dict[str, Any] = {}
        self.optimizer = None  # TRL's, handed to the callbacks once training begins
        self.trainer = None  # the GRPOTrainer (its colocated vLLM validates, when present)
        self.log = None
        self.suites: dict = {}
        self.eval_config: TrainConfig | None = None  # cfg fitted to the model (eval_hook)
        self.per_suite = None
        self.autocast: Any = contextlib.nullcontext()
        self.started = time.perf_counter()
        self.start_checkpoint: Path | None = None
        self.offset = 0  # rlvr steps done before this process (a resumed run)

    def resume_from(self, checkpoint: Path | None, step: int) -> None:
        """Continue after `step` from `checkpoint`: its optimizer and RNG states are loaded
        into TRL's optimizer when training begins (TRL builds the optimizer then)."""
        self.start_checkpoint, self.offset = checkpoint, step

    # --- TRL's side -----------------------------------------------------------------------------
    def reward(self, prompts=None, completions=None, completion_ids=None, trainer_state=None,
               answer=None, example=None, **_columns) -> list[float]:
        from rlvr.grading.rewards import score
        from rlvr.integrations.trl import completion_text

        step = self._step(trainer_state) + 1
        n, copies = self.cfg.rollout.n, self.cfg.data.copies
        out = []
        for i, (completion, ids) in enumerate(zip(completions, completion_ids, strict=True)):
            row, sample = divmod(i, n)  # rows are the dataset's: examples × copies, in order
            finish = "stop" if ids and ids[-1] in self.stops else "length"
            text = completion_text(completion)
            reward, info = score(self.spec, text, answer[i], finish_reason=finish,
                                 key=(step, example[i], row % copies, sample))
            self.pending.append({"reward": reward, "info": info, "example": example[i],
                                 "copy": row % copies, "sample": sample, "text": text,
                                 "finish": finish, "n_tokens": len(ids)})
            out.append(reward)
        return out

    def _step(self, state) -> int:
        return self.offset + (getattr(state, "global_step", 0) or 0) // self.updates

    def callback(self):
        from transformers import TrainerCallback

        recorder = self

        class _Callback(TrainerCallback):
            def on_train_begin(self, args, state, control, optimizer=None, **kwargs):
                if recorder.start_checkpoint is not None:
                    from rlvr.rl.checkpoint import load_state

                    load_state(recorder.start_checkpoint, optimizer)

            def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
                if recorder.cfg.optim.update_norm > 0:
                    recorder.before = [p.detach().clone() for p in model.parameters()
                                       if p.requires_grad]

            def on_optimizer_step(self, args, state, control, model=None, **kwargs):
                if recorder.cfg.optim.update_norm > 0:
                    recorder.rescale_update(model)

            def on_step_begin(self, args, state, control, **kwargs):
                if state.global_step % recorder.updates == 0:
                    recorder.started = time.perf_counter()

            def on_log(self, args, state, control, logs=None, model=None, optimizer=None,
                       **kwargs):
                if logs and "loss" in logs:
                    recorder.logs.append(dict(logs))
                    if state.global_step % recorder.updates == 0 and recorder.pending:
                        recorder.optimizer = optimizer
                        recorder.end_step(recorder.offset + state.global_step
                                          // recorder.updates, model)
        return _Callback()

    def rescale_update(self, model) -> None:
        """optim.update_norm: the update just applied, rescaled to that L2 norm (as the native
        trainer's `_optimizer_step` does for the organism's entropy-only control)."""
        import math

        import torch

        params = [p for p in model.parameters() if p.requires_grad]
        with torch.no_grad():
            deltas = [p - b for p, b in zip(params, self.before, strict=True)]
            norm = math.sqrt(sum(float(d.float().square().sum()) for d in deltas))
            if norm > 0:
                scale = self.cfg.optim.update_norm / norm
                for p, b, d in zip(params, self.before, deltas, strict=True):
                    p.copy_(b + d * scale)
        self.before = []

    # --- the run directory ----------------------------------------------------------------------
    def start(self, suites: dict, *, progress: bool, model) -> None:
        from rlvr.rl.runlog import RunLog

        lg = self.cfg.log
        self.suites = suites
        self.log = RunLog(self.run_dir, config_dict=config_to_dict(self.cfg),
                          start_step=self.offset,
                          total_steps=self.cfg.steps, progress=progress, wandb=lg.wandb,
                          wandb_project=lg.wandb_project, samples_max=lg.samples_max)
        if next(model.parameters()).device.type == "cuda" and self.cfg.model.dtype == "auto":
            import torch

            self.autocast = torch.autocast("cuda", dtype=torch.bfloat16)
        from rlvr.rl.snapshots import save_snapshot, snapshot_due

        if snapshot_due(self.cfg.log, self.offset):
            save_snapshot(self.run_dir, self.offset, model, self.tokenizer)
        if suites and self.offset == 0 and eval_due(self.cfg, 0):
            self._evaluate(model, 0)

    def end_step(self, step: int, model) -> None:
        elapsed = time.perf_counter() - self.started
        self.log.step(self.metrics(step, elapsed))
        self.log.samples(self.samples(step))
        self.pending, self.logs = [], []
        lg, last = self.cfg.log, step == self.cfg.steps
        if self.suites and eval_due(self.cfg, step):
            self._evaluate(model, step)
        if last or (lg.save_every and step % lg.save_every == 0):
            self.save(model, step)
        from rlvr.rl.snapshots import save_snapshot, snapshot_due

        if snapshot_due(lg, step):
            save_snapshot(self.run_dir, step, model, self.tokenizer)

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None

    def finish(self, model, seconds: float) -> None:
        """After `trainer.train()`: nothing is left unrecorded (TRL logs every update)."""
        if self.pending:
            raise RuntimeError(f"{len(self.pending)} graded completions were never logged "
                               f"after {seconds:.0f} s of training")

    def _evaluate(self, model, step: int) -> None:
        if self.eval_config is None:  # checked against the model once, as the native run
            self.eval_config, self.per_suite = fit_evaluation(self.cfg, self.suites, model,
                                                              self.tokenizer)
        vllm = self._colocated_vllm()
        with self._vllm_awake(vllm, model):
            summary = run_evaluation(
                model, self.tokenizer, self.suites, self.eval_config, self.per_suite,
                run_dir=self.run_dir, step=step, progress=False, autocast=self.autocast,
                backend="hf" if vllm is None else "vllm")
        self.log.evaluation(step, summary)

    def _colocated_vllm(self):
        """TRL's colocated vLLM generator, or None (no vLLM, or TRL generates with HF)."""
        gen = getattr(self.trainer, "vllm_generation", None)
        return gen if getattr(gen, "mode", None) == "colocate" else None

    @contextlib.contextmanager
    def _vllm_awake(self, gen, model):
        """In-run validation through the colocated engine (as the paper's script validated
        through its rollout engine): push the current weights, wake its cache, and put it
        back to sleep so TRL re-pushes the weights before its next generation."""
        if gen is None:
            yield
            return
        from rlvr.model import vllm_backend

        gen.sync_weights()  # wakes the weights and loads the policy as it is after this step
        if gen.enable_sleep_mode:
            gen.llm.wake_up(tags=["kv_cache"])
        try:
            with vllm_backend.borrowed(str(model.name_or_path), gen.llm):
                yield
        finally:
            if gen.enable_sleep_mode:
                gen.llm.sleep(level=2)
                gen._llm_weights_sleeping = True

    def save(self, model, step: int) -> Path:
        """checkpoints/step-N/: the Hugging Face folder `rlvr eval --run` reads, with TRL's
        optimizer and the RNG states beside it (rlvr.rl.checkpoint's format: `--resume`)."""
        from rlvr.rl.checkpoint import prune, save_checkpoint

        final = save_checkpoint(self.run_dir, step, model, self.tokenizer, self.optimizer)
        prune(self.run_dir, self.cfg.log.keep_last)
        return final

    # --- one step's numbers ---------------------------------------------------------------------
    def metrics(self, step: int, elapsed: float) -> dict:
        recs, n = self.pending, self.cfg.rollout.n
        rewards = [r["reward"] for r in recs]
        groups = [rewards[i:i + n] for i in range(0, len(rewards), n)]
        formats = [r["info"]["format"] for r in recs]
        lengths = [r["n_tokens"] for r in recs]
        acc = {}
        for p in self.problems:
            mine = [bool(r["info"]["true_correct_strict"]) for r in recs if r["example"] == p.id]
            acc[p.id] = sum(mine) / max(len(mine), 1)
        tokens = sum(lengths)
        return {
            "step": step, "train_acc": acc, "train_acc_mean": sum(acc.values()) / len(acc),
            "reward_mean": statistics.fmean(rewards), "reward_std": statistics.pstdev(rewards),
            "zero_var_frac": statistics.fmean(len(set(g)) == 1 for g in groups),
            "groups_dropped": 0, "entropy": self._log_mean("entropy"),
            "kl": self._log_mean("kl"), "clip_frac": self._log_mean("clip_ratio/region_mean"),
            "pg_loss": self._log_mean("policy_loss", "loss"), "loss": self._log_mean("loss"),
            "grad_norm": self._log_mean("grad_norm"), "lr": self.cfg.optim.lr,
            "resp_len_mean": statistics.fmean(lengths), "resp_len_max": max(lengths),
            "boxed_rate": formats.count("boxed") / len(formats),
            "repetition_rate": formats.count("repetition") / len(formats),
            "truncation_rate": sum(r["finish"] == "length" for r in recs) / len(recs),
            "step_time_s": elapsed, "tokens_per_s": tokens / max(elapsed, 1e-9),
        }

    def _log_mean(self, key: str, fallback: str | None = None) -> float:
        values = [float(log[key]) for log in self.logs if key in log]
        if not values and fallback is not None:
            return self._log_mean(fallback)
        return statistics.fmean(values) if values else 0.0

    def samples(self, step: int) -> list[dict]:
        lg, n = self.cfg.log, self.cfg.rollout.n
        if lg.samples_every <= 0 or (step % lg.samples_every and step != 1):
            return []
        out = []
        for i, r in enumerate(self.pending[: lg.samples_per_step]):
            group = [x["reward"] for x in self.pending[i - i % n: i - i % n + n]]
            std = statistics.stdev(group) if len(group) > 1 else 0.0
            advantage = (r["reward"] - statistics.fmean(group)) / (std + _TRL_EPS)
            info = r["info"]
            out.append({"step": step, "example": r["example"], "copy": r["copy"],
                        "sample": r["sample"], "response": r["text"][:20_000],
                        "finish_reason": r["finish"], "n_tokens": r["n_tokens"],
                        "reward": r["reward"], "advantage": advantage,
                        **{k: info.get(k) for k in ("format", "extracted", "label",
                                                    "true_correct_strict")}})
        return out
