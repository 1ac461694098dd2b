"""The GRPO math as pure functions of tensors: advantages, PPO-clip, KL, entropy, aggregation.

Nothing here knows about models, optimizers or the trainer, so every formula is unit-tested on
tiny tensors. Shapes: `N` responses, `T` response tokens (right-padded), `mask` is 1 on real
response tokens. The total loss of one step is

    loss = pg_coef · pg_loss − entropy_coeff · entropy + kl_coef · kl

so a positive `entropy_coeff` (the paper's 0.001) is a *bonus* that raises entropy, and
`pg_coef = 0` with a positive `entropy_coeff` is the entropy-only control.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

# Per-token math on a forward's logits lives with the forward (rlvr.model.policy); re-exported here
# because the loss is written in terms of it.
from rlvr.model.policy import entropy_from_logits, token_logprobs, token_stats

__all__ = [
    "AGG_MODES",
    "KL_TYPES",
    "agg_loss",
    "entropy_from_logits",
    "grpo_loss",
    "group_advantages",
    "kl_penalty",
    "keep_groups",
    "ppo_clip_loss",
    "token_logprobs",
    "token_stats",
]

AggMode = Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"]
KlType = Literal["low_var_kl", "k1", "k2", "none"]
AGG_MODES: tuple[str, ...] = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm")
KL_TYPES: tuple[str, ...] = ("low_var_kl", "k1", "k2", "none")


def group_advantages(
    rewards: Tensor, group_size: int, *, scale_by_std: bool = True, eps: float = 1e-6
) -> tuple[Tensor, Tensor]:
    """Per-response advantage from its group of `group_size` consecutive rollouts.

    GRPO: (r − mean) / (std + eps) with the *unbiased* std, as the paper's verl fork does.
    Dr. GRPO (`scale_by_std=False`): r − mean, no std scaling.
    Returns (advantages (N,), zero_var (N // group_size,) bool): a group whose rewards all
    agree has zero advantage everywhere and so carries no policy gradient.
    """
    if rewards.dim() != 1 or rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {group_size}")
    grouped = rewards.float().view(-1, group_size)  # (G, n)
    centred = grouped - grouped.mean(dim=1, keepdim=True)  # (G, n)
    zero_var = (grouped == grouped[:, :1]).all(dim=1)  # (G,)
    if scale_by_std:
        if group_size < 2:
            raise ValueError("GRPO's std scaling needs a group size of at least 2")
        std = grouped.std(dim=1, unbiased=True, keepdim=True)  # (G, 1)
        centred = centred / (std + eps)
    return centred.reshape(-1), zero_var


def keep_groups(rewards: Tensor, group_size: int, *, min_std: float = 0.0) -> Tensor:
    """Online variance filter: True for groups whose reward std exceeds `min_std` (G,).

    With `min_std = 0` this drops exactly the zero-variance groups (DAPO's dynamic sampling
    without the resampling); the trainer removes the dropped groups' responses from the update.
    """
    grouped = rewards.float().view(-1, group_size)
    if group_size < 2:
        return torch.ones(grouped.shape[0], dtype=torch.bool)
    std = grouped.std(dim=1, unbiased=True)
    zero = (grouped == grouped[:, :1]).all(dim=1)
    return (~zero) & (std > min_std)


def agg_loss(
    values: Tensor,
    mask: Tensor,
    mode: AggMode,
    *,
    total_tokens: float | None = None,
    total_seqs: float | None = None,
    norm_len: float | None = None,
) -> Tensor:
    """Reduce a per-token (N, T) quantity to a scalar.

    token-mean: sum over all tokens / number of tokens (the paper's choice; long responses
      weigh more). seq-mean-token-mean: mean within each response, then mean over responses.
    seq-mean-token-sum-norm: sum within each response / a constant length (`norm_len`, default
      T; the trainer passes rollout.max_new_tokens), then mean over responses (Dr. GRPO: no
      length bias).
    `total_tokens` / `total_seqs` replace this batch's counts with those of the whole update, so
    micro-batch losses that are summed over gradient-accumulation steps equal the full-batch
    loss exactly. Every count is clamped to at least 1 so an all-padding batch gives 0, not NaN.
    """
    mask = mask.to(values.dtype)
    if mode == "token-mean":
        denom = mask.sum() if total_tokens is None else torch.tensor(float(total_tokens))
        return (values * mask).sum() / denom.clamp(min=1)
    n_seqs = torch.tensor(float(values.shape[0] if total_seqs is None else total_seqs))
    if mode == "seq-mean-token-mean":
        per_seq = (values * mask).sum(dim=-1) / mask.sum(dim=-1).clamp(min=1)  # (N,)
    elif mode == "seq-mean-token-sum-norm":
        length = float(values.shape[-1] if norm_len is None else norm_len)
        per_seq = (values * mask).sum(dim=-1) / max(length, 1.0)  # (N,)
    else:
        raise ValueError(f"unknown loss aggregation {mode!r}; valid: {', '.join(AGG_MODES)}")
    return per_seq.sum() / n_seqs.clamp(min=1)


def ppo_clip_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """PPO-clip per token against the rollout policy's log-probs.

    logp, old_logp, mask: (N, T); advantages: (N,) broadcast to every token of its response.
    Returns (per-token loss (N, T), clipped (N, T) bool, ratio (N, T)). The loss is the
    pessimistic max(−A·r, −A·clip(r, 1−ε_low, 1+ε_high)); on the first epoch of a fully
    on-policy step r = 1 and this is plain REINFORCE with the group baseline.
    """
    clip_high = clip_low if clip_high is None else clip_high
    adv = advantages.unsqueeze(-1)  # (N, 1)
    ratio = torch.exp(logp - old_logp)  # (N, T)
    unclipped = -adv * ratio
    clipped = -adv * torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    per_token = torch.maximum(unclipped, clipped)  # (N, T)
    was_clipped = (clipped > unclipped) & mask.bool()
    return per_token, was_clipped, ratio


def kl_penalty(logp: Tensor, ref_logp: Tensor, kind: KlType) -> Tensor:
    """Per-token estimate of KL(π ‖ π_ref) from sampled tokens (N, T).

    k1 = log π − log π_ref; k2 = ½ (log π − log π_ref)²;
    low_var_kl (k3, Schulman) = exp(log π_ref − log π) − (log π_ref − log π) − 1, clamped to
    [−10, 10] as verl does (the paper's choice); none = 0.
    """
    if kind == "none":
        return torch.zeros_like(logp)
    diff = logp - ref_logp
    if kind == "k1":
        return diff
    if kind == "k2":
        return 0.5 * diff.square()
    if kind == "low_var_kl":
        log_ratio = -diff  # log π_ref − log π
        return torch.clamp(torch.exp(log_ratio) - log_ratio - 1.0, min=-10.0, max=10.0)
    raise ValueError(f"unknown KL type {kind!r}; valid: {', '.join(KL_TYPES)}")


def grpo_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    entropy: Tensor | None = None,
    ref_logp: Tensor | None = None,
    pg_coef: float = 1.0,
    entropy_coeff: float = 0.0,
    kl_coef: float = 0.0,
    kl_type: KlType = "low_var_kl",
    clip_low: float = 0.2,
    clip_high: float | None = None,
    agg: AggMode = "token-mean",
    total_tokens: float | None = None,
    total_seqs: float | None = None,
    norm_len: float | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """loss = pg_coef·pg − entropy_coeff·entropy + kl_coef·kl, each aggregated with `agg`.

    `entropy` (N, T) is the policy's per-token entropy (with its graph, for the bonus);
    `ref_logp` (N, T) is needed only when kl_coef > 0. Metrics are detached floats; the
    clip fraction is always a token mean so it reads the same under every aggregation, and
    `entropy_sum` / `kl_sum` are token sums, which a caller accumulating micro-batches adds up.
    """
    counts = {"total_tokens": total_tokens, "total_seqs": total_seqs, "norm_len": norm_len}
    per_token, was_clipped, _ = ppo_clip_loss(
        logp, old_logp, advantages, mask, clip_low=clip_low, clip_high=clip_high
    )
    pg = agg_loss(per_token, mask, agg, **counts)
    loss = pg_coef * pg
    metrics = {"pg_loss": pg.item()}
    n_tok = mask.sum().clamp(min=1)
    metrics["clip_frac"] = (was_clipped.float().sum() / n_tok).item()
    metrics["n_tokens"] = n_tok.item()
    if entropy is not None:
        ent = agg_loss(entropy, mask, agg, **counts)
        loss = loss - entropy_coeff * ent
        metrics["entropy"] = ent.item()
        metrics["entropy_sum"] = float((entropy.detach() * mask).sum())
    if kl_coef > 0 and kl_type != "none":
        if ref_logp is None:
            raise ValueError("kl_coef > 0 needs the reference model's log-probs")
        per_token_kl = kl_penalty(logp, ref_logp, kl_type)
        kl = agg_loss(per_token_kl, mask, agg, **counts)
        loss = loss + kl_coef * kl
        metrics["kl"] = kl.item()
        metrics["kl_sum"] = float((per_token_kl.detach() * mask).sum())
    else:
        metrics["kl"], metrics["kl_sum"] = 0.0, 0.0
    metrics["loss"] = loss.item()
    return loss, metrics
