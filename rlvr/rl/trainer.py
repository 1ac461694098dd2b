"""The GRPO loop for 1-shot RLVR on any Hugging Face causal LM from a local folder.

One step (`Trainer.step`, all on one screen):
  k examples × copies prompts ─► rollout.generate (n samples each, keyed noise)
  ─► rewards.score against the (possibly wrong) label; true accuracy against the real gold
  ─► group_advantages (GRPO / Dr. GRPO), optional variance filter
  ─► log-probs recomputed by a forward pass on logits / temperature
  ─► ppo_epochs × mini_batches optimizer updates, each accumulated over micro-batches
`rlvr.rl.loop.train` adds the run directory around it (config.toml, metrics.jsonl,
samples.jsonl, TensorBoard, checkpoints, `--resume`); `rlvr.rl.eval_hook` says when and how the
run evaluates.

Precision: on a GPU with `model.dtype = "auto"` the weights and Adam state stay float32 and the
forward passes run under bf16 autocast (an lr of 1e-6 is below bf16's resolution for a weight,
so bf16 weights would silently not learn); the rollout's K/V cache is bf16 then. On a CPU
everything is float32.

Memory of the update (docs/gpu.md): only real response tokens are projected onto the
vocabulary, `_LOGIT_CHUNK` tokens at a time and recomputed in the backward pass
(`policy.token_stats`), so no (responses × window × vocabulary) tensor exists; with
`model.gradient_checkpointing` each decoder layer keeps only its input (inside
`rlvr.model.fast_forward`'s forward, or Hugging Face's checkpointing with the model in train mode and
dropout off for other architectures).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from pathlib import Path

import torch

from rlvr.errors import UserError
from rlvr.model import fast_forward as fast_lm
from rlvr.model.locate import model_path
from rlvr.model.policy import Batch, response_stats, to_batch
from rlvr.rl import checkpoint as ckpt
from rlvr.rl import eval_hook
from rlvr.rl.config import TrainConfig, check_mini_batches
from rlvr.rl.core_algos import group_advantages, grpo_loss, keep_groups
from rlvr.rl.labelhits import classifier_for, label_hits
from rlvr.rl.problem_sets import training_problems
from rlvr.rl.steps import StepPlan, Tally, update_totals
from rlvr.rundir.snapshot import read_snapshot

__all__ = ["StepPlan", "Trainer", "rollout_seed"]

# Response tokens projected onto the vocabulary at once: 4,096 × 152k fp32 logits ≈ 2.5 GB.
_LOGIT_CHUNK = 4096


def rollout_seed(run_seed: int, step: int) -> int:
    """The sampling seed of a step's rollouts: the native trainer and lock-step seeds share it,
    so a seed group samples exactly what each run alone would."""
    return run_seed * 1_000_003 + step


class Trainer:
    """Holds the policy, optimizer and training examples; `step()` runs one GRPO step."""

    def __init__(self, config: TrainConfig, run_dir: str | Path, *, resume: bool = False):
        from rlvr.data.prompts import render_checked
        from rlvr.model.context import fit_new_tokens
        from rlvr.model.rollout import encode_prompts, load_model

        self.config, self.run_dir = config, Path(run_dir)
        cfg = config
        # A resumed run trains on the rows it started with, wherever the source file is now.
        self.problems = (resume and read_snapshot(self.run_dir)) or training_problems(cfg.data)
        self.progress = False  # a bar per rollout (`train` turns it on with its own bar)
        self.on_phase = _silent  # told "sampling", "grading", "updating": a long step shows it
        check_mini_batches(len(self.problems) * cfg.data.copies, cfg.algo.mini_batches)
        self.spec = cfg.reward_spec
        base = model_path(cfg.model.path)
        self.device = "cuda" if cfg.model.device == "auto" and torch.cuda.is_available() else (
            "cpu" if cfg.model.device == "auto" else cfg.model.device)
        dtype = {"auto": torch.float32, "float32": torch.float32, "bfloat16": torch.bfloat16,
                 "float16": torch.float16}[cfg.model.dtype]
        self.autocast = (torch.autocast("cuda", dtype=torch.bfloat16)
                         if self.device == "cuda" and cfg.model.dtype == "auto"
                         else contextlib.nullcontext())
        start = ckpt.latest_checkpoint(self.run_dir) if resume else None
        self.model, self.tokenizer = load_model(start or base, device=self.device, dtype=dtype)
        self.checkpoint = cfg.model.gradient_checkpointing
        # fast_lm checkpoints inside its own forward; other models use Hugging Face's, which
        # only acts in train mode (so `_update` switches to it, with dropout turned off).
        self.hf_checkpoint = self.checkpoint and not fast_lm.supports(self.model)
        if self.hf_checkpoint:
            _enable_hf_checkpointing(self.model)
        self.ref = None
        if cfg.algo.kl_coef > 0 and cfg.algo.kl_type != "none":  # reference only when used
            self.ref, _ = load_model(base, device=self.device, dtype=dtype)
            self.ref.requires_grad_(False)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = _optimizer(cfg, self.params)
        torch.manual_seed(cfg.seed)
        self.step_count = ckpt.load_state(start, self.optimizer) if start else 0
        prompts = render_checked(cfg.data.template, self.problems, self.tokenizer,
                                 fix="--template raw")
        self.prompt_ids = encode_prompts(self.tokenizer, prompts)
        self.prompts = prompts
        longest = max(len(ids) for ids in self.prompt_ids)
        if longest > cfg.rollout.max_prompt_tokens:
            raise UserError(f"a training prompt has {longest} tokens, more than "
                            f"rollout.max_prompt_tokens = {cfg.rollout.max_prompt_tokens}")
        cap = fit_new_tokens(self.model, longest, cfg.rollout.max_new_tokens, what="training",
                             setting="rollout.max_new_tokens")
        if cap != cfg.rollout.max_new_tokens:  # recorded in config.toml, so resume keeps it
            self.config = dataclasses.replace(
                cfg, rollout=dataclasses.replace(cfg.rollout, max_new_tokens=cap))
        from rlvr.model.rollout import stop_token_ids

        self.stop_ids = stop_token_ids(self.model, self.tokenizer, cfg.rollout.stop)
        self.samples: list[dict] = []  # the last step's rollouts, for samples.jsonl
        self.per_suite = None  # eval.protocol's settings per suite, set by fit_evaluation
        self.classifier = classifier_for(cfg.model.path)

    # --- one GRPO step ------------------------------------------------------------------------
    def step(self) -> dict:
        t0 = time.perf_counter()
        step = self.step_count + 1
        self.on_phase(f"step {step}: sampling")
        batch = self._rollout(step)
        self.on_phase(f"step {step}: grading")
        plan = self.prepare(batch)
        self.on_phase(f"step {step}: updating")
        upd = self.update(plan)
        return self.finish(plan, upd, time.perf_counter() - t0)

    def update(self, plan: StepPlan) -> dict:
        """The policy update of a prepared step (`prepare`): its metrics."""
        return self._update(plan.batch, plan.adv.to(self.device), plan.rows)

    def prepare(self, batch: Batch) -> StepPlan:
        """Rewards, advantages and the responses the update uses, for this step's rollouts."""
        cfg, n = self.config, self.config.rollout.n
        step = self.step_count + 1
        rewards, infos = self._rewards(step, batch.completions)
        adv, zero_var = group_advantages(rewards, n, eps=cfg.algo.adv_eps,
                                         scale_by_std=cfg.algo.adv_estimator == "grpo")
        keep = (keep_groups(rewards, n, min_std=cfg.algo.min_group_std) if cfg.algo.drop_zero_var
                else torch.ones_like(zero_var))
        # The update guard: no group carries a reward signal, so no update at all.
        skipped = cfg.algo.skip_no_signal and cfg.algo.pg_coef > 0 and bool(zero_var.all())
        dropped = int((~keep).sum())
        if skipped:
            keep = torch.zeros_like(keep)
        rows = keep.repeat_interleave(n).nonzero().squeeze(-1)  # kept responses (M,)
        return StepPlan(step, batch, rewards, infos, adv, zero_var, rows, skipped,
                        0 if skipped else dropped)

    def finish(self, plan: StepPlan, upd: dict, elapsed: float) -> dict:
        """Advance the step count and return the step's metrics.jsonl record."""
        cfg, batch, infos = self.config, plan.batch, plan.infos
        self.step_count = plan.step
        n_tok = int(batch.mask.sum())
        fmts = [i["format"] for i in infos]
        lens = batch.mask.sum(-1).float()
        acc = _per_example(self.problems, cfg.data.copies * cfg.rollout.n, infos)
        metrics = {
            "step": plan.step, "train_acc": acc, "train_acc_mean": sum(acc.values()) / len(acc),
            "reward_mean": plan.rewards.mean().item(),
            "reward_std": plan.rewards.std(unbiased=False).item(),
            "zero_var_frac": plan.zero_var.float().mean().item(),
            "groups_dropped": plan.dropped, "update_skipped": int(plan.skipped), **upd,
            "lr": cfg.optim.lr, "resp_len_mean": lens.mean().item(),
            "resp_len_max": int(lens.max()),
            "boxed_rate": fmts.count("boxed") / len(fmts),
            "repetition_rate": fmts.count("repetition") / len(fmts),
            "truncation_rate": sum(c.finish_reason == "length" for c in batch.completions)
            / len(fmts),
            "step_time_s": elapsed, "tokens_per_s": n_tok / max(elapsed, 1e-9),
            **label_hits(batch.completions, infos, self.classifier),
        }
        self.samples = self._sample_records(plan.step, batch, plan.rewards, plan.adv, infos)
        return metrics

    def _rollout(self, step: int) -> Batch:
        from rlvr.model.rollout import SamplingParams, generate

        r = self.config.rollout
        prompts = [p for p in self.prompts for _ in range(self.config.data.copies)]
        # The rollout noise is a hash of (seed, prompt, sample, token): a step's rollouts
        # depend only on the weights and this seed, so a resumed run samples the same ones.
        params = SamplingParams(temperature=r.temperature, top_p=r.top_p, n=r.n,
                                max_new_tokens=r.max_new_tokens, seed=rollout_seed(self.config.seed, step))
        with self.autocast:
            completions = generate(self.model, self.tokenizer, prompts, params,
                                   batch_size=r.batch_size, progress=self.progress,
                                   stop_ids=self.stop_ids)
        copies = self.config.data.copies
        prompt_ids = [self.prompt_ids[c.prompt_index // copies] for c in completions]
        return to_batch(completions, prompt_ids, self.tokenizer.pad_token_id, self.device)

    def _rewards(self, step: int, completions: list) -> tuple[torch.Tensor, list[dict]]:
        from rlvr.grading.rewards import score

        copies = self.config.data.copies
        rewards, infos = [], []
        for c in completions:
            problem = self.problems[c.prompt_index // copies]
            # `random` is keyed by (step, example, copy, sample): reproducible on resume.
            key = (step, problem.id, c.prompt_index % copies, c.sample_index)
            reward, info = score(self.spec, c.text, problem.answer,
                                 finish_reason=c.finish_reason, key=key)
            rewards.append(reward)
            infos.append(info)
        return torch.tensor(rewards, dtype=torch.float32), infos

    def _logprobs(self, model, b: Batch, rows: torch.Tensor, *, entropy: bool):
        """Per-token log π (and entropy) of the responses `rows`, from logits / temperature;
        zero at padding. Only real tokens reach the vocabulary projection, in chunks."""
        with self.autocast:
            return response_stats(model, b.input_ids[rows], b.attention[rows], b.tokens[rows],
                                  b.mask[rows].bool(), temperature=self.config.rollout.temperature,
                                  entropy=entropy, chunk_size=_LOGIT_CHUNK,
                                  checkpoint=self.checkpoint)

    @torch.no_grad()
    def _score_all(self, model, b: Batch, rows: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(b.tokens.shape, device=self.device)
        for micro in rows.split(self.config.optim.micro_batch_size):
            out[micro] = self._logprobs(model, b, micro, entropy=False)[0]
        return out

    def _update(self, b: Batch, adv: torch.Tensor, rows: torch.Tensor) -> dict:
        a = self.config.algo
        tally = Tally()
        if rows.numel() == 0:  # every group filtered out: nothing to learn from this step
            return tally.result()
        on_policy = a.ppo_epochs == 1 and a.mini_batches == 1
        # Fully on-policy: the rollout log-probs equal this forward's, so reuse them detached.
        old = None if on_policy else self._score_all(self.model, b, rows)
        ref = self._score_all(self.ref, b, rows) if self.ref is not None else None
        with _train_mode(self.model, self.hf_checkpoint):
            return self._updates(b, adv, rows, old, ref, tally)

    def _updates(self, b: Batch, adv, rows, old, ref, tally: Tally) -> dict:
        a, o = self.config.algo, self.config.optim
        for _epoch in range(a.ppo_epochs):
            for mini in rows.tensor_split(a.mini_batches):
                self.optimizer.zero_grad(set_to_none=True)
                totals = update_totals(b, mini, self.config.rollout.max_new_tokens)
                for micro in mini.split(o.micro_batch_size):
                    logp, ent = self._logprobs(self.model, b, micro, entropy=True)
                    old_logp = logp.detach() if old is None else old[micro]
                    ref_logp = None if ref is None else ref[micro]
                    self.micro_loss(b.mask[micro], logp, old_logp, ref_logp, ent, adv[micro],
                                    totals, tally).backward()
                self.apply_update(tally)
        return tally.result()

    def micro_loss(self, mask, logp, old_logp, ref_logp, ent, adv, totals: dict,
                   tally: Tally) -> torch.Tensor:
        """The GRPO loss of one micro-batch (its metrics go into `tally`)."""
        a = self.config.algo
        loss, m = grpo_loss(
            logp, old_logp, adv, mask, entropy=ent if a.entropy_coeff else ent.detach(),
            ref_logp=ref_logp, pg_coef=a.pg_coef, entropy_coeff=a.entropy_coeff,
            kl_coef=a.kl_coef, kl_type=a.kl_type, clip_low=a.clip_low, clip_high=a.clip_high,
            agg=a.loss_agg, **totals)
        _finite(loss, self.step_count + 1, "loss")
        tally.add(m)
        return loss

    def apply_update(self, tally: Tally) -> None:
        """Clip the accumulated gradient and take one optimizer step."""
        o = self.config.optim
        norm = torch.nn.utils.clip_grad_norm_(self.params, o.grad_clip or math.inf)
        _finite(norm, self.step_count + 1, "gradient norm")
        tally.applied(float(norm), _optimizer_step(self.optimizer, self.params, o.update_norm))

    def _sample_records(self, step, b: Batch, rewards, adv, infos) -> list[dict]:
        lg = self.config.log
        if lg.samples_every <= 0 or (step % lg.samples_every and step != 1):
            return []
        copies = self.config.data.copies
        out = []
        for i, c in enumerate(b.completions[: lg.samples_per_step]):
            info = infos[i]
            out.append({"step": step, "example": self.problems[c.prompt_index // copies].id,
                        "copy": c.prompt_index % copies, "sample": c.sample_index,
                        "response": c.text[:20_000], "finish_reason": c.finish_reason,
                        "n_tokens": len(c.token_ids), "reward": rewards[i].item(),
                        "advantage": adv[i].item(), **{k: info.get(k) for k in (
                            "format", "extracted", "label", "true_correct_strict")}})
        return out

    # --- evaluation and checkpoints (rlvr.rl.eval_hook) ---------------------------------------
    def fit_evaluation(self, suites: dict) -> None:
        """Check the evaluation prompts against this model before the run folder exists:
        encodable, and eval.max_new_tokens capped to the context (recorded in the config)."""
        self.config, self.per_suite = eval_hook.fit_evaluation(self.config, suites, self.model,
                                                               self.tokenizer)

    def evaluate(self, suites: dict, *, progress: bool = False) -> dict:
        return eval_hook.run_evaluation(self.model, self.tokenizer, suites, self.config,
                                        self.per_suite, run_dir=self.run_dir,
                                        step=self.step_count, progress=progress,
                                        autocast=self.autocast)

    def save(self) -> Path:
        path = ckpt.save_checkpoint(self.run_dir, self.step_count, self.model, self.tokenizer,
                                    self.optimizer)
        ckpt.prune(self.run_dir, self.config.log.keep_last)
        return path


# --- helpers ----------------------------------------------------------------------------------
@contextlib.contextmanager
def _train_mode(model, enabled: bool):
    """Train mode for the update when Hugging Face's checkpointing needs it (it is off in eval
    mode); dropout was zeroed by `_disable_dropout`, so the maths is the eval-mode forward."""
    if not enabled:
        yield
        return
    was = model.training
    model.train()
    try:
        yield
    finally:
        model.train(was)


def _enable_hf_checkpointing(model) -> None:
    """Hugging Face's checkpointing (renamed "activation checkpointing" in transformers 5.2x),
    with dropout off so that the train-mode forward it needs is the eval-mode maths."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    _disable_dropout(model)


def _disable_dropout(model) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if isinstance(getattr(module, "attention_dropout", None), float):
            module.attention_dropout = 0.0


def _silent(_text: str) -> None:
    return None


def _optimizer(cfg: TrainConfig, params: list) -> torch.optim.Optimizer:
    o = cfg.optim
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    return torch.optim.AdamW(params, lr=o.lr, betas=o.betas, eps=o.eps,
                             weight_decay=o.weight_decay)


@torch.no_grad()
def _optimizer_step(optimizer, params: list, target_norm: float) -> float:
    """optimizer.step(); with target_norm > 0 rescale the whole update to that L2 norm.

    Adam normalises each coordinate, so a lone entropy term moves the weights at the full lr
    whatever its coefficient; fixing the update norm to that of an outcome run's updates makes
    the entropy-only control move the weights as far as a reward run (docs/training.md).
    Returns the L2 norm of the applied update.
    """
    before = [p.detach().clone() for p in params]
    optimizer.step()
    deltas = [p.detach() - b for p, b in zip(params, before, strict=True)]
    norm = math.sqrt(sum(float(d.float().square().sum()) for d in deltas))
    if target_norm > 0 and norm > 0:
        scale = target_norm / norm
        for p, b, d in zip(params, before, deltas, strict=True):
            p.copy_(b + d * scale)
        norm = target_norm
    return norm


def _finite(value: torch.Tensor, step: int, what: str) -> None:
    if not torch.isfinite(value).all():
        raise UserError(f"the {what} became {float(value.detach())} at step {step}; training stopped "
                        "before the optimizer step (the last checkpoint is intact)",
                        "lower optim.lr or raise optim.grad_clip's strictness")


def _per_example(problems: list, per_example: int, infos: list[dict]) -> dict[str, float]:
    out = {}
    for k, p in enumerate(problems):
        chunk = infos[k * per_example:(k + 1) * per_example]
        out[p.id] = sum(bool(i["true_correct_strict"]) for i in chunk) / len(chunk)
    return out
