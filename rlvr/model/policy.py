"""The policy as trainer, rollout and diagnostics see it: one place for the batch of prompt +
response rows, the forward that scores them and the per-token log-probs.

- `Batch` / `to_batch`: a step's rollouts as tensors (left-padded prompts, right-padded
  responses), the layout every scoring forward here expects.
- `forward_extra(model, keep)`: `logits_to_keep=keep` when the model's forward takes it, so
  only the positions that are scored get vocabulary-sized logits (a (B, T, 150k) tensor would
  not fit); older or custom models get full logits and the caller's slice is the same.
- `response_stats`: per-token log-probs and entropy of the responses, through the fast
  functional forward (`rlvr.model.fast_forward`) when it reproduces the model, else the Hugging Face
  forward: the one choice between them for scoring. Only real tokens are projected onto the
  vocabulary, in chunks recomputed in the backward pass (`token_stats`).
- `make_decoder`: the same choice for token-by-token generation (the fast static K/V cache of
  `rlvr.model.kv_cache` or the model's own KV cache), driven by `rlvr.model.decode.decode`.
- `token_stats`, `token_logprobs`, `entropy_from_logits`: the per-token math on the logits.

It sits in the model package (it imports the fast forward and torch, never `rlvr.rl`), so the rollout
and the diagnostics use it without importing the trainer.
"""

from __future__ import annotations

import dataclasses
import inspect

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint as recompute_in_backward

from rlvr.model import fast_forward as fast_lm
from rlvr.model import native_score
from rlvr.model.kv_cache import DecodeCache

__all__ = ["Batch", "entropy_from_logits", "forward_extra", "make_decoder", "response_stats",
           "to_batch", "token_logprobs", "token_stats"]


@dataclasses.dataclass
class Batch:
    """One step's rollouts as tensors: left-padded prompts, right-padded responses."""

    completions: list  # rlvr.model.rollout.Completion, prompt-major: group g = rows g*n … g*n+n−1
    input_ids: Tensor  # (N, P + T)
    attention: Tensor  # (N, P + T)
    tokens: Tensor  # (N, T) response tokens
    mask: Tensor  # (N, T) 1 on real response tokens


def to_batch(completions: list, prompt_ids: list[list[int]], pad: int, device) -> Batch:
    P = max(len(p) for p in prompt_ids)
    T = max(1, max(len(c.token_ids) for c in completions))
    N = len(completions)
    ids = torch.full((N, P + T), pad, dtype=torch.long)
    attn = torch.zeros((N, P + T), dtype=torch.long)
    mask = torch.zeros((N, T), dtype=torch.float32)
    for i, (c, p) in enumerate(zip(completions, prompt_ids, strict=True)):
        ids[i, P - len(p):P] = torch.tensor(p)
        attn[i, P - len(p):P] = 1
        ids[i, P:P + len(c.token_ids)] = torch.tensor(c.token_ids, dtype=torch.long)
        attn[i, P:P + len(c.token_ids)] = 1
        mask[i, :len(c.token_ids)] = 1
    return Batch(completions, ids.to(device), attn.to(device), ids[:, P:].to(device),
                 mask.to(device))


def forward_extra(model, keep: int) -> dict:
    """`{"logits_to_keep": keep}` when `model.forward` takes it, else `{}`."""
    takes = "logits_to_keep" in inspect.signature(model.forward).parameters
    return {"logits_to_keep": keep} if takes else {}


def response_stats(model, ids: Tensor, attention: Tensor, tokens: Tensor, real: Tensor, *,
                   temperature: float, entropy: bool, chunk_size: int = 4096,
                   checkpoint: bool = False) -> tuple[Tensor, Tensor | None]:
    """Per-token log π (and entropy) of left-padded rows' last T tokens, from logits /
    temperature: ((n, T), (n, T) or None), zero at padding.

    `tokens` (n, T) are the scored tokens and `real` (n, T) marks them; only real tokens reach
    the vocabulary projection, `chunk_size` at a time (`token_stats`). Positions count real
    tokens only (as the rollout numbered them), so a left-padded row scores exactly like the
    same row unpadded. `checkpoint` asks the fast forward to keep only each layer's input.
    """
    T = tokens.shape[1]
    stats = {"temperature": temperature, "entropy": entropy, "chunk_size": chunk_size}
    if fast_lm.supports(model):  # same logits, less work: a group's prompt once
        head, norm = model.get_output_embeddings(), model.model.norm
        if native_score.usable(head.weight, checkpoint=checkpoint):
            # the C++ path: the states that predict the real tokens (one column before each)
            # through the final norm, output layer and statistics in one node; the positions
            # below are counted while packing
            h, index = fast_lm.packed_hidden(model, ids, attention, None)
            return native_score.scored_stats(h, index[:, ids.shape[1] - T - 1:-1], real, tokens,
                                             norm.weight, norm.variance_epsilon, head.weight,
                                             head.bias, **stats)
        positions = _counted(attention)
        where = torch.zeros_like(ids, dtype=torch.bool)
        where[:, ids.shape[1] - T - 1:-1] = real
        h = fast_lm.hidden_at(model, ids, attention, positions, where,
                              checkpoint=checkpoint)  # (M, E)
        logp, ent = token_stats(h, tokens[real], weight=head.weight, bias=head.bias, **stats)
    else:
        logits = model(input_ids=ids, attention_mask=attention, position_ids=_counted(attention),
                       **forward_extra(model, T + 1)).logits[:, -(T + 1):-1]  # (n, T, V)
        logp, ent = token_stats(logits[real], tokens[real], **stats)
    return _scatter(logp, real), (None if ent is None else _scatter(ent, real))


def _counted(attention: Tensor) -> Tensor:
    """Each column's count of real columns before it: a row's positions as the rollout numbered
    them, so a left-padded row scores like the same row unpadded."""
    return (attention.cumsum(-1) - 1).clamp(min=0)


def _scatter(values: Tensor, real: Tensor) -> Tensor:
    """(M,) values of the real positions → (n, T), zero at padding (differentiable)."""
    out = values.new_zeros(real.shape)
    out[real] = values
    return out


def entropy_from_logits(logits: Tensor) -> Tensor:
    """Entropy of softmax(logits) over the last dim: logsumexp(z) − Σ p·z. (…, V) → (…)."""
    logits = logits.float()
    p = torch.softmax(logits, dim=-1)
    return torch.logsumexp(logits, dim=-1) - (p * logits).sum(dim=-1)


def token_logprobs(logits: Tensor, tokens: Tensor) -> Tensor:
    """log π(token) from (N, T, V) logits (already divided by the temperature) → (N, T)."""
    logits = logits.float()
    picked = torch.gather(logits, -1, tokens.unsqueeze(-1)).squeeze(-1)  # (N, T)
    return picked - torch.logsumexp(logits, dim=-1)


def token_stats(
    inputs: Tensor,
    tokens: Tensor,
    *,
    temperature: float = 1.0,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    chunk_size: int = 4096,
    entropy: bool = True,
) -> tuple[Tensor, Tensor | None]:
    """log π(token) and the entropy at M positions, `chunk_size` positions at a time.

    inputs: (M, V) logits, or (M, E) final hidden states with the output layer's `weight`
    (V, E) and `bias`; tokens: (M,). Returns ((M,), (M,) or None), float32. Each chunk's
    vocabulary-sized logits (and their fp32 softmax) exist only while that chunk is computed
    and are recomputed in the backward pass, so the peak is one chunk, not the whole batch:
    at a 152k vocabulary one 4,096-token response is 2.5 GB of fp32 logits.
    Values and gradients equal `token_logprobs` / `entropy_from_logits` on the full logits.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    logps, ents = [], []
    for part, toks in zip(inputs.split(chunk_size), tokens.split(chunk_size), strict=True):
        args = (part, toks, weight, bias, temperature, entropy)
        if torch.is_grad_enabled() and _fused(part):
            logp, ent = _ChunkStats.apply(*args)
            ent = ent if entropy else None
        elif torch.is_grad_enabled():
            logp, ent = recompute_in_backward(_chunk_stats, *args, use_reentrant=False)
        else:
            logp, ent = _chunk_stats(*args)
        logps.append(logp)
        ents.append(ent)
    if not logps:
        empty = inputs.new_zeros(0, dtype=torch.float32)
        return empty, (empty if entropy else None)
    return torch.cat(logps), (torch.cat(ents) if entropy else None)


def _chunk_stats(inputs, tokens, weight, bias, temperature: float, entropy: bool):
    logits = inputs if weight is None else F.linear(inputs, weight, bias)  # (m, V)
    logits = logits.float() / temperature
    lse = torch.logsumexp(logits, dim=-1)  # (m,)
    logp = torch.gather(logits, -1, tokens.unsqueeze(-1)).squeeze(-1) - lse
    if not entropy:
        return logp, None
    return logp, lse - (torch.softmax(logits, dim=-1) * logits).sum(dim=-1)


def _fused(inputs: Tensor) -> bool:
    """`_ChunkStats` where its plain fp32 math is the forward's (no autocast: under it the
    recomputed logits would round differently)."""
    return inputs.dtype == torch.float32 and not torch.is_autocast_enabled(inputs.device.type)


class _ChunkStats(torch.autograd.Function):
    """`_chunk_stats` with its backward written out: the chunk's logits are recomputed there
    (one product, as checkpointing would) and the softmax algebra is a few fused ops instead of
    autograd through logsumexp, gather, softmax and their recomputation (on the organism these
    ops cost as long as the layers' products). Entropy H = lse − Σ p·z has ∂H/∂z = −p (z − Σ p·z);
    log p_t has ∂/∂z = onehot(t) − p."""

    @staticmethod
    def forward(ctx, inputs, tokens, weight, bias, temperature: float, entropy: bool):
        ctx.save_for_backward(inputs, tokens, weight, bias)
        ctx.temperature, ctx.entropy = temperature, entropy
        logp, ent = _chunk_stats(inputs, tokens, weight, bias, temperature, entropy)
        return logp, (ent if entropy else logp.new_zeros(0))

    @staticmethod
    def backward(ctx, d_logp, d_ent):
        inputs, tokens, weight, bias = ctx.saved_tensors
        logits = inputs if weight is None else F.linear(inputs, weight, bias)
        z = logits.float() / ctx.temperature
        p = torch.softmax(z, dim=-1)
        if d_logp is None:
            dz = torch.zeros_like(z)
        else:
            dz = p * -d_logp[:, None]
            dz[torch.arange(len(tokens), device=z.device), tokens] += d_logp
        if ctx.entropy and d_ent is not None:
            mean = (p * z).sum(-1, keepdim=True)
            dz -= p * (z - mean) * d_ent[:, None]
        dz = (dz / ctx.temperature).to(logits.dtype)
        if weight is None:
            return dz, None, None, None, None, None
        d_inputs = dz @ weight if ctx.needs_input_grad[0] else None
        d_weight = dz.t() @ inputs if ctx.needs_input_grad[2] else None
        d_bias = dz.sum(0) if bias is not None and ctx.needs_input_grad[3] else None
        return d_inputs, None, d_weight, d_bias, None, None


def make_decoder(model, batch: int, max_length: int):
    """rlvr.model.kv_cache's static-cache decoder when fast_forward reproduces this model, else
    the model's own forward and cache."""
    if fast_lm.supports(model):
        return _FastDecoder(model, batch, max_length)
    return _HFDecoder(model)


class _FastDecoder:
    def __init__(self, model, batch: int, max_length: int):
        self.cache = DecodeCache(model, batch, max_length)
        self.prefill, self.step = self.cache.prefill, self.cache.step
        self.select_rows = self.cache.select_rows
        # the C++ loop of the first iterations (rlvr.model.decode), where the step is C++
        self.run = self.cache.run if self.cache.native is not None else None

    def can_select(self) -> bool:
        return True


class _HFDecoder:
    """Any Hugging Face causal LM: its own KV cache, one forward per token."""

    def __init__(self, model):
        self.model, self.cache, self.mask = model, None, None
        params = inspect.signature(model.forward).parameters
        # transformers 5 renamed the KV-cache argument `past_key_values` to `cache`
        self.cache_arg = "cache" if "cache" in params else "past_key_values"
        # The prefill needs only the last position's logits.
        self.prefill_extra = forward_extra(model, 1)

    def prefill(self, ids, mask, positions):
        self.mask = mask
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                         use_cache=True, **self.prefill_extra)
        return self._logits(out)

    def step(self, token, position):
        self.mask = torch.cat([self.mask, torch.ones_like(self.mask[:, :1])], dim=1)
        out = self.model(input_ids=token[:, None], attention_mask=self.mask,
                         position_ids=position[:, None], use_cache=True,
                         **{self.cache_arg: self.cache})
        return self._logits(out)

    def _logits(self, out):
        self.cache = out.cache if self.cache_arg == "cache" else out.past_key_values
        return out.logits[:, -1, :]

    def can_select(self) -> bool:
        return (hasattr(self.cache, "batch_select_indices")
                or hasattr(self.cache, "reorder_cache"))

    def select_rows(self, index: torch.Tensor) -> None:
        self.mask = self.mask[index]
        if hasattr(self.cache, "batch_select_indices"):
            self.cache.batch_select_indices(index)
        else:
            self.cache.reorder_cache(index)
