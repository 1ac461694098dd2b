"""One GRPO step's bookkeeping between rollout and update, shared by `Trainer` and seed groups.

`StepPlan`: a step's rollouts with their rewards, advantages and the responses the update uses
(`Trainer.prepare`); `Tally`: the update's metrics summed over micro-batches (and seeds' shares
of one backward in a seed group); `update_totals`: one update's token and sequence counts.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from rlvr.model.policy import Batch

__all__ = ["StepPlan", "Tally", "update_totals"]


@dataclasses.dataclass
class StepPlan:
    """One step between rollout and update: rewards, advantages, the rows the update uses."""

    step: int
    batch: Batch
    rewards: torch.Tensor  # (N,)
    infos: list[dict]
    adv: torch.Tensor  # (N,)
    zero_var: torch.Tensor  # (G,) bool
    rows: torch.Tensor  # (M,) responses in the update
    skipped: bool  # the update guard fired: no group had a reward signal
    dropped: int  # groups the variance filter removed


class Tally:
    """A step's update metrics: per-update means and token means over every micro-batch."""

    def __init__(self):
        self.sums = dict.fromkeys(("pg_loss", "loss", "grad_norm", "update_norm"), 0.0)
        self.tok = dict.fromkeys(("entropy", "kl", "clip_frac", "tokens"), 0.0)
        self.updates = 0

    def add(self, m: dict) -> None:
        """One micro-batch's `grpo_loss` metrics (its entropy and KL come as token sums)."""
        self.sums["pg_loss"] += m["pg_loss"]
        self.sums["loss"] += m["loss"]
        self.tok["tokens"] += m["n_tokens"]
        self.tok["clip_frac"] += m["clip_frac"] * m["n_tokens"]
        self.tok["entropy"] += m["entropy_sum"]
        self.tok["kl"] += m["kl_sum"]

    def applied(self, grad_norm: float, update_norm: float) -> None:
        self.sums["grad_norm"] += grad_norm
        self.sums["update_norm"] += update_norm
        self.updates += 1

    def result(self) -> dict:
        out = {k: v / max(self.updates, 1) for k, v in self.sums.items()}
        out.update({k: self.tok[k] / max(self.tok["tokens"], 1)
                    for k in ("entropy", "kl", "clip_frac")})
        return out


def update_totals(b: Batch, rows: torch.Tensor, norm_len: int) -> dict:
    """One update's token / sequence counts, so micro-batch losses sum to the full loss;
    `norm_len` is seq-mean-token-sum-norm's constant (the generation budget, as Dr. GRPO)."""
    return {"total_tokens": float(b.mask[rows].sum()), "total_seqs": len(rows),
            "norm_len": float(norm_len)}
