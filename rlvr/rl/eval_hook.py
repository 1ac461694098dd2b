"""When and how a training run evaluates: one hook for the native loop, the seed group, the TRL
engine (rlvr.rl.trl_record) and `rlvr eval --run`, so a run's checkpoints evaluated afterwards
get the settings its own evaluations had.

- `eval_due`: the schedule (step 0 unless `eval.at_start` is off, every `log.eval_every` steps,
  the `log.eval_steps`, the last step);
- `eval_settings` / `settings_from_run`: the `[eval]` table as `EvalSettings`, from a config in
  memory or from a run's config.toml (0 and "" fall back to the rollout's temperature and
  length and the data's template);
- `fit_evaluation`: the settings checked against the model before the run folder exists (every
  prompt encodable, `eval.max_new_tokens` capped to the context), with `eval.protocol`'s
  settings per suite (rlvr.evaluation.protocols);
- `run_evaluation`: one evaluation of the in-memory policy into `eval/step-N/`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

from rlvr.rl.config import TrainConfig

__all__ = ["eval_due", "eval_settings", "fit_evaluation", "fit_protocol", "protocol_settings",
           "run_evaluation", "settings_from_run"]


def eval_due(config: TrainConfig, step: int) -> bool:
    """The evaluation schedule of an uninterrupted run: step 0 (unless `eval.at_start` is off),
    the last step, every `log.eval_every` steps and the `log.eval_steps`."""
    lg = config.log
    if step == 0:
        return config.eval.at_start
    return (step == config.steps or bool(lg.eval_every and step % lg.eval_every == 0)
            or step in lg.eval_steps)


def eval_settings(config: TrainConfig):
    """The [eval] table as the EvalSettings of the periodic evaluation (both engines)."""
    from rlvr.evaluation.evaluate import EvalSettings

    e, r = config.eval, config.rollout
    return EvalSettings(
        template=e.template or config.data.template, greedy=e.greedy,
        samples=e.samples, temperature=e.temperature or r.temperature,  # 0: training temp.
        max_new_tokens=e.max_new_tokens or r.max_new_tokens, batch_size=e.batch_size,
        seed=e.seed)


def settings_from_run(config: dict) -> dict:
    """A run's config.toml (as read) → EvalSettings values, `eval_settings`'s mapping on the
    plain table (a run of either engine, or one imported from verl)."""
    table = dict(config.get("eval") or {})
    base = {key: table[key] for key in ("greedy", "samples", "temperature", "top_p", "seed",
                                        "batch_size", "backend", "input_dependence", "group_by")
            if key in table}
    if not base.get("temperature"):  # 0 = the training temperature, as in the trainer
        base["temperature"] = (config.get("rollout") or {}).get("temperature", 0.6)
    base["template"] = table.get("template") or (config.get("data") or {}).get("template") or "raw"
    max_new = table.get("max_new_tokens") or (config.get("rollout") or {}).get("max_new_tokens")
    if max_new:
        base["max_new_tokens"] = max_new
    return base


def fit_protocol(protocol: str | None, suites: dict, model, tokenizer, overrides: dict,
                 **fix: str) -> dict | None:
    """Per-suite settings of evaluation protocol `protocol` (non-None `overrides` win), each
    fitted to the model's context; None without a protocol. `fix` names the hints of
    `fit_settings`' errors."""
    if not protocol:
        return None
    from rlvr.evaluation.evaluate import fit_settings
    from rlvr.evaluation.protocols import protocol_settings as settings_of

    per_suite = settings_of(protocol, list(suites), overrides)
    return {suite: fit_settings(model, tokenizer, {suite: suites[suite]}, s, **fix)
            for suite, s in per_suite.items()}


def protocol_settings(config: TrainConfig, suites: dict, model, tokenizer) -> dict | None:
    """Per-suite evaluation settings under `eval.protocol` (rlvr.evaluation.protocols), fitted
    to the model's context; None without a protocol."""
    e = config.eval
    if not e.protocol or not suites:
        return None
    return fit_protocol(e.protocol, suites, model, tokenizer,
                        {"batch_size": e.batch_size, "seed": e.seed},
                        template_fix="--set eval.protocol=''", tokens_flag="eval.max_new_tokens")


def fit_evaluation(config: TrainConfig, suites: dict, model, tokenizer
                   ) -> tuple[TrainConfig, dict | None]:
    """Check the evaluation prompts against this model before the run folder exists: the
    config with `eval.max_new_tokens` capped to the context (so config.toml records the cap),
    and the protocol's settings per suite (None without one)."""
    from rlvr.evaluation.evaluate import fit_settings

    if not suites:
        return config, None
    asked = eval_settings(config)
    fitted = fit_settings(model, tokenizer, suites, asked, template_fix="--set eval.template=raw",
                          tokens_flag="eval.max_new_tokens")
    if fitted.max_new_tokens != asked.max_new_tokens:
        config = dataclasses.replace(config, eval=dataclasses.replace(
            config.eval, max_new_tokens=fitted.max_new_tokens))
    return config, protocol_settings(config, suites, model, tokenizer)


def run_evaluation(model, tokenizer, suites: dict, config: TrainConfig, per_suite: dict | None,
                   *, run_dir: str | Path, step: int, progress: bool = False,
                   autocast=None, backend: str = "hf") -> dict:
    """Evaluate the in-memory policy at `step` into run_dir/eval/step-N/; the summary.
    `backend="vllm"`: through an engine that already holds the policy's weights (the TRL
    engine's colocated one, rlvr.model.vllm_backend.borrowed)."""
    from rlvr.evaluation.evaluate import evaluate

    settings = dataclasses.replace(eval_settings(config), backend=backend)
    if per_suite:
        per_suite = {k: dataclasses.replace(v, backend=backend) for k, v in per_suite.items()}
    with contextlib.nullcontext() if autocast is None else autocast:
        return evaluate(model, tokenizer, suites, settings, run_dir=run_dir,
                        step=step, progress=progress, per_suite=per_suite)
