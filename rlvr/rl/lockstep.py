"""Several seeds of one training run, stepped together through one forward (`train_seeds`).

A study trains each condition with several seeds from the same base and anchor. On a tiny CPU
model each step is bound by per-op dispatch, so S runs cost little more than one when their
forwards are one (`rlvr.model.stacked`): the S × n rollouts are decoded together by the one
decode loop, `rlvr.model.decode.decode` (each seed's model on its own rows, each row's sampling
noise keyed exactly as `Trainer._rollout` keys it), and the S losses are one backward. Where
the C++ scoring stack (`rlvr.model.native_score`) serves the model (fp32 on a CPU), each seed
instead updates through its own `Trainer.update`: faster than the stacked eager forward, and
bit for bit what the run would do alone. Everything else is each run's own `Trainer`: rewards,
advantages, the update guard, clipping and its optimizer, metrics, samples, evaluation and
checkpoints, into an ordinary run directory per seed.

Requirements (checked): configs equal except for the seed, a model `rlvr.model.fast_forward` supports,
one PPO epoch and one mini-batch (the whole step is one on-policy update; the micro-batch size
is not used). In `metrics.jsonl`, `step_time_s` is the wall time of the group's step.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from rlvr.errors import UserError
from rlvr.model import fast_forward as fast_lm
from rlvr.model import native_score
from rlvr.model import stacked as stacked_lm
from rlvr.model.decode import decode, left_pad, row_keys
from rlvr.model.policy import to_batch
from rlvr.model.weights import rope_tables
from rlvr.rl.config import TrainConfig, config_to_dict
from rlvr.rl.core_algos import entropy_from_logits, token_logprobs
from rlvr.rl.eval_hook import eval_due
from rlvr.rl.problem_sets import eval_suites
from rlvr.rl.steps import Tally, update_totals
from rlvr.rl.trainer import Trainer, rollout_seed

__all__ = ["SeedGroup", "train_seeds"]


def _without_seed(config: TrainConfig) -> dict:
    data = config_to_dict(config)
    data.pop("seed")
    return data


class SeedGroup:
    """One `Trainer` per config; `step()` runs one GRPO step of all of them together."""

    def __init__(self, configs: list[TrainConfig], run_dirs: list[str | Path]):
        if not configs or len(configs) != len(run_dirs):
            raise UserError("a seed group needs one run directory per config")
        first = _without_seed(configs[0])
        if any(_without_seed(c) != first for c in configs[1:]):
            raise UserError("the runs of a seed group may differ only in their seed")
        a = configs[0].algo
        if a.ppo_epochs != 1 or a.mini_batches != 1:
            raise UserError("a seed group trains fully on-policy",
                            "set algo.ppo_epochs = 1 and algo.mini_batches = 1")
        self.trainers = [Trainer(c, d) for c, d in zip(configs, run_dirs, strict=True)]
        if not fast_lm.supports(self.trainers[0].model):
            raise UserError("a seed group needs a Llama/Qwen2 model that rlvr.model.fast_forward supports",
                            "train the seeds one at a time")

    @property
    def step_count(self) -> int:
        return self.trainers[0].step_count

    def step(self) -> list[dict]:
        t0 = time.perf_counter()
        batches = self._rollouts(self.step_count + 1)
        plans = [t.prepare(b) for t, b in zip(self.trainers, batches, strict=True)]
        updates = self._update(plans)
        elapsed = time.perf_counter() - t0
        return [t.finish(p, u, elapsed)
                for t, p, u in zip(self.trainers, plans, updates, strict=True)]

    # --- rollouts ---------------------------------------------------------------------------
    @torch.no_grad()
    def _rollouts(self, step: int) -> list:
        from rlvr.model.rollout import Completion, SamplingParams, eos_token_ids

        t0 = self.trainers[0]
        r, copies = t0.config.rollout, t0.config.data.copies
        jobs = [(i, s) for i in range(len(t0.prompt_ids) * copies) for s in range(r.n)]
        pad = t0.tokenizer.pad_token_id
        S, B = len(self.trainers), len(jobs)
        ids, mask, positions = left_pad([t0.prompt_ids[i // copies] for i, _ in jobs], pad)
        # Seed k decodes rows k·B … k·B + B − 1, its noise keyed as Trainer._rollout keys it.
        keys = torch.cat([row_keys(rollout_seed(t.config.seed, step), jobs, t0.device)
                          for t in self.trainers])
        params = SamplingParams(temperature=r.temperature, top_p=r.top_p, n=r.n,
                                max_new_tokens=r.max_new_tokens)
        weights = stacked_lm.stack([t.model for t in self.trainers])
        decoder = stacked_lm.StackedDecode(t0.model, weights, B, ids.shape[1] + r.max_new_tokens)
        rows = decode(decoder, *(x.repeat(S, 1).to(t0.device) for x in (ids, mask, positions)),
                      keys, params, eos_token_ids(t0.model, t0.tokenizer), pad)
        batches = []
        for k, t in enumerate(self.trainers):
            completions = []
            for j, (i, s) in enumerate(jobs):
                seq, reason = rows[k * B + j]
                body = seq[:-1] if reason == "stop" else seq
                text = t.tokenizer.decode(list(body), skip_special_tokens=True)
                completions.append(Completion(i, s, text, seq, reason))
            ids_of = [t.prompt_ids[c.prompt_index // copies] for c in completions]
            batches.append(to_batch(completions, ids_of, pad, t.device))
        return batches

    # --- one update for every seed ---------------------------------------------------------
    def _update(self, plans: list) -> list[dict]:
        if _scores_natively(self.trainers[0]):
            # The C++ scoring stack (rlvr.model.native_score) runs one seed's packed tokens
            # faster than the stacked eager forward runs all of them padded, and each run then
            # updates exactly as it would alone.
            return [t.update(p) for t, p in zip(self.trainers, plans, strict=True)]
        tallies = [Tally() for _ in self.trainers]
        active = [k for k, p in enumerate(plans) if p.rows.numel()]
        if not active:
            return [t.result() for t in tallies]
        t0 = self.trainers[0]
        T = max(p.batch.tokens.shape[1] for p in plans)
        ids = torch.stack([_pad_right(p.batch.input_ids, T - p.batch.tokens.shape[1],
                                      t0.tokenizer.pad_token_id) for p in plans])
        attn = torch.stack([_pad_right(p.batch.attention, T - p.batch.tokens.shape[1], 0)
                            for p in plans])
        positions = (attn.cumsum(-1) - 1).clamp(min=0)
        tokens = ids[:, :, -T:]
        rope = rope_tables(t0.model, int(positions.max()) + 1, t0.model.dtype, ids.device)
        weights = stacked_lm.stack([t.model for t in self.trainers])
        logits = stacked_lm.logits(weights, rope, ids, attn, positions, T + 1)[:, :, :-1]
        logits = logits.float() / t0.config.rollout.temperature
        logp, ent = token_logprobs(logits, tokens), entropy_from_logits(logits)  # (S, N, T)
        ref = self._reference(ids, attn, positions, tokens, T) if t0.ref is not None else None
        for t in self.trainers:
            t.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for k in active:
            t, plan = self.trainers[k], plans[k]
            rows, width = plan.rows, plan.batch.tokens.shape[1]
            lp = logp[k, rows, :width]
            total = total + t.micro_loss(
                plan.batch.mask[rows], lp, lp.detach(),
                None if ref is None else ref[k, rows, :width], ent[k, rows, :width],
                plan.adv.to(t.device)[rows],
                update_totals(plan.batch, rows, t.config.rollout.max_new_tokens), tallies[k])
        total.backward()
        for k in active:
            self.trainers[k].apply_update(tallies[k])
        return [t.result() for t in tallies]

    @torch.no_grad()
    def _reference(self, ids, attn, positions, tokens, T: int) -> torch.Tensor:
        """The frozen reference's log-probs (every seed starts from it: one model, S·N rows)."""
        S, N, L = ids.shape
        ref = self.trainers[0].ref
        logits = fast_lm.logits(ref, ids.view(S * N, L), attn.view(S * N, L),
                                positions.view(S * N, L), T + 1)[:, :-1]
        logits = logits.float() / self.trainers[0].config.rollout.temperature
        return token_logprobs(logits, tokens.reshape(S * N, T)).view(S, N, T)


def _scores_natively(trainer: Trainer) -> bool:
    """Whether `Trainer.update` scores through `rlvr.model.native_score`."""
    embed = trainer.model.get_input_embeddings().weight
    return native_score.usable(embed, checkpoint=trainer.checkpoint)


def _pad_right(x: torch.Tensor, extra: int, value: int) -> torch.Tensor:
    if extra == 0:
        return x
    return torch.cat([x, x.new_full((x.shape[0], extra), value)], dim=1)


def train_seeds(configs: list[TrainConfig], run_dirs: list[str | Path]) -> list[Path]:
    """`rlvr.rl.loop.train` for runs that differ only in their seed, stepped together (no
    resume: a seed group's runs start and finish together)."""
    from rlvr.rl.runlog import RunLog
    from rlvr.rundir.snapshot import write_snapshot
    from rlvr.rundir.write import new_run_dir, write_config_toml

    run_dirs = [Path(d) for d in run_dirs]
    for d in run_dirs:
        if d.exists() and (not d.is_dir() or any(d.iterdir())):
            new_run_dir(d)  # raises the "already exists" error before any work
    group = SeedGroup(configs, run_dirs)
    suites = eval_suites(configs[0].eval)
    for t in group.trainers:
        t.fit_evaluation(suites)
    configs = [t.config for t in group.trainers]  # with any cap to the model's context
    cfg = configs[0]
    logs = []
    for t, c, d in zip(group.trainers, configs, run_dirs, strict=True):
        new_run_dir(d)
        write_config_toml(d / "config.toml", config_to_dict(c), seed=c.seed)
        write_snapshot(d, t.problems)
        logs.append(RunLog(d, config_dict=config_to_dict(c), start_step=0, total_steps=c.steps,
                           progress=False, wandb=False, wandb_project=c.log.wandb_project,
                           samples_max=c.log.samples_max))
    try:
        if suites and eval_due(cfg, 0):
            for t, log in zip(group.trainers, logs, strict=True):
                log.evaluation(0, t.evaluate(suites))
        while group.step_count < cfg.steps:
            for t, log, metrics in zip(group.trainers, logs, group.step(), strict=True):
                log.step(metrics)
                log.samples(t.samples)
            step = group.step_count
            for t, log in zip(group.trainers, logs, strict=True):
                if suites and eval_due(cfg, step):
                    log.evaluation(step, t.evaluate(suites))
                if step == cfg.steps or (cfg.log.save_every and step % cfg.log.save_every == 0):
                    t.save()
    finally:
        for log in logs:
            log.close()
    return run_dirs
