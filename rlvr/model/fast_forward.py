"""A functional forward over a Hugging Face Llama/Qwen2 causal LM's own parameters, for scoring.

`logits` / `hidden` run the fused layer math of `rlvr.model.weights` over a full sequence, with
autograd; token-by-token decoding is `rlvr.model.kv_cache.DecodeCache`. Decoding is where the
fused math pays on CPU (≈ 1.7-1.9× per token at 16 rows). A full-sequence forward + backward is
bound by its matrix products instead, so this forward saves work rather than ops: columns every
row shares (a GRPO group's prompt) are computed once, and right-padded rows run in length
buckets cut to their own longest row. In fp32 on a CPU (no autocast, no checkpointing) the
layers run instead over the real tokens only, packed, through the C++ forward + backward of
`rlvr.model.native_score` (`RLVR_FAST_SCORE=0`: the eager layers). Organism pretraining (batch 64, no padding, no shared
prefix) gains nothing and keeps the HF forward (docs/benchmarks.md).

`supports(model)` says whether a model is one this forward (and the decode cache) reproduces
exactly (fp32 logits within 1e-5 of `model(...).logits`, tests/test_fast_lm.py); callers fall
back to the plain Hugging Face forward otherwise. `RLVR_FAST_LM=0` in the environment turns the
fast path off everywhere (debugging, benchmarks of the "before").
"""

from __future__ import annotations

import os
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from rlvr.model import native_score, structure
from rlvr.model.weights import (
    Checkpointed,
    Weights,
    default_positions,
    final_norm,
    full_mask,
    fused_weights,
    head_logits,
    rope_tables,
    run_layers,
    sdpa_attend,
)

__all__ = ["forward_logits", "hidden", "hidden_at", "logits", "packed_hidden", "supports"]

_CLASSES = {"LlamaForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2"}
# Rope types whose cos/sin depend on the position alone (not on the sequence length seen).
_ROPE_TYPES = frozenset({"default", "linear", "llama3", "yarn"})
_PROJECTIONS = (("self_attn", "q_proj"), ("self_attn", "k_proj"), ("self_attn", "v_proj"),
                ("self_attn", "o_proj"), ("mlp", "gate_proj"), ("mlp", "up_proj"),
                ("mlp", "down_proj"))


def supports(model) -> bool:
    """True when `logits`/`DecodeCache` reproduce this model's forward; False → use HF's."""
    if os.environ.get("RLVR_FAST_LM", "1").strip() == "0":
        return False
    if getattr(getattr(model, "model", None), "gradient_checkpointing", False):
        return False
    if not isinstance(model, nn.Module):
        return _supports(model)
    return structure.cached(model, "fast_forward", _supports)


def _supports(model) -> bool:
    config = getattr(model, "config", None)
    expected = _CLASSES.get(type(model).__name__)
    if expected is None or expected != getattr(config, "model_type", None):
        return False
    try:
        rotary, layers = model.model.rotary_emb, model.model.layers
        head = model.get_output_embeddings()
    except AttributeError:
        return False
    if (getattr(config, "hidden_act", None) != "silu"
            or "sliding_attention" in (getattr(config, "layer_types", None) or ())
            or getattr(rotary, "rope_type", None) not in _ROPE_TYPES
            or float(getattr(config, "attention_dropout", 0.0) or 0.0) != 0.0
            or getattr(config, "pretraining_tp", 1) not in (None, 1)
            or getattr(model.model, "gradient_checkpointing", False)
            or len(layers) != config.num_hidden_layers
            or type(head) is not nn.Linear):
        return False
    # Adapters (LoRA) or quantised layers swap the nn.Linear modules: their forward differs.
    for layer in layers:
        for parent, name in _PROJECTIONS:
            if type(getattr(getattr(layer, parent, None), name, None)) is not nn.Linear:
                return False
        for norm in (layer.input_layernorm, layer.post_attention_layernorm):
            if not type(norm).__name__.endswith("RMSNorm"):
                return False
    return True


def logits(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
           position_ids: torch.Tensor | None = None, logits_to_keep: int = 0, *,
           checkpoint: bool = False) -> torch.Tensor:
    """`model(input_ids, attention_mask, position_ids, logits_to_keep).logits`, with autograd.

    `attention_mask` None means no padding. Rows may be left-padded (prompts) and right-padded
    (responses): logits at pad positions are finite and meaningless (zero after a row's last
    real token). `logits_to_keep` > 0 keeps only the last that many positions.

    Right-padded rows of unequal length are run in a few length buckets, each cut to its own
    longest row (GRPO responses stop at scattered lengths: up to half the positions of a
    padded batch are pads, and on CPU the forward is bound by their matrix products).
    `checkpoint`: each decoder layer keeps only its input for the backward pass and recomputes
    the rest (gradient checkpointing; same gradients, a fraction of the activation memory).
    """
    return _outputs(model, input_ids, attention_mask, position_ids, logits_to_keep, True,
                    checkpoint)


def hidden(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
           position_ids: torch.Tensor | None = None, keep: int = 0, *,
           checkpoint: bool = False) -> torch.Tensor:
    """As `logits`, but the final-normed hidden states (B, keep, E) that the output layer
    would read: a caller that needs log-probs of a few tokens projects them onto the
    vocabulary in chunks instead of holding (B, keep, V) logits (V is 152k for Qwen)."""
    return _outputs(model, input_ids, attention_mask, position_ids, keep, False, checkpoint)


def hidden_at(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
              position_ids: torch.Tensor | None, where: torch.Tensor, *,
              checkpoint: bool = False) -> torch.Tensor:
    """`hidden(model, ...)[where]`: the final-normed hidden states (M, E) at the positions
    `where` ((B, S) bool) marks, in row-major order. On the packed C++ path they are gathered
    from the packed tokens directly."""
    batch, seq = input_ids.shape
    positions = default_positions(position_ids, batch, seq, input_ids.device)
    if native_score.usable(model.model.embed_tokens.weight, checkpoint=checkpoint):
        h, index = packed_hidden(model, input_ids, attention_mask, positions)
        h = h.index_select(0, index[where])
        return final_norm(h, native_score.output_weights(model))
    return _outputs(model, input_ids, attention_mask, positions, 0, False, checkpoint)[where]


def packed_hidden(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                  positions: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """On the packed C++ path (`native_score.usable`): the last decoder layer's states (N, E)
    of the real tokens, packed, and the packed row (B, S) of each column (N at pads).
    `positions` None: each row numbered by its real tokens (`native_score.pack`)."""
    # a counted position is below the width: no pass over the positions for their largest
    top = input_ids.shape[1] if positions is None else int(positions.max()) + 1
    rope = rope_tables(model, top, model.model.embed_tokens.weight.dtype, input_ids.device)
    packed = _pack(input_ids, attention_mask, positions)
    return native_score.run_model(model, packed, rope), packed.index


def _output_weights(model, positions) -> tuple[Weights, tuple]:
    """What the packed path applies around `native_score.run_model` (the final norm, the
    output layer: it fuses the layers' weights itself) and the rotary tables up to the
    largest position."""
    w = native_score.output_weights(model)
    return w, rope_tables(model, int(positions.max()) + 1, w.embed.dtype, positions.device)


def _pack(input_ids, attention_mask, positions) -> native_score.Packed:
    # the mask as it is (C++ reads it as bool); the shared prompt is found there too
    real = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask
    return native_score.pack(input_ids, real, positions, -1)



def _outputs(model, input_ids, attention_mask, position_ids, logits_to_keep: int,
             project: bool, checkpoint: bool) -> torch.Tensor:
    batch, seq = input_ids.shape
    keep = min(logits_to_keep, seq) if logits_to_keep > 0 else seq
    positions = default_positions(position_ids, batch, seq, input_ids.device)
    if native_score.usable(model.model.embed_tokens.weight, checkpoint=checkpoint):
        w, rope = _output_weights(model, positions)
        if not project:
            w = w._replace(head_w=None)
        return _packed(model, w, input_ids, attention_mask, positions, rope, keep)
    w = fused_weights(model)
    if checkpoint and torch.is_grad_enabled():
        w = w._replace(layers=[Checkpointed(layer) for layer in w.layers])
    if not project:
        w = w._replace(head_w=None)
    cos, sin = rope_tables(model, int(positions.max()) + 1, w.embed.dtype, input_ids.device)
    if attention_mask is None:
        return _forward(w, input_ids, None, positions, (cos, sin), keep)
    widths = seq - attention_mask.flip(-1).to(torch.int8).argmax(-1)  # last real column + 1
    order = torch.argsort(widths, stable=True)
    ordered = widths[order].tolist()
    shared = _shared_prefix(input_ids, attention_mask, positions, ordered[0] - 1)
    in_window = max(0, shared - (seq - keep))  # shared columns inside the kept window
    prefix = None
    if shared >= 8:
        prefix = _run_prefix(w, input_ids[:1, :shared], attention_mask[:1, :shared],
                             positions[:1, :shared], (cos, sin), in_window)
    else:
        shared = 0
    plan = _buckets(ordered, seq)
    if len(plan) == 1:  # one chunk: keep the caller's row order
        order = torch.arange(batch, device=input_ids.device)
    # Filled in place (autograd follows index_put), not padded and concatenated: at a 150k
    # vocabulary each extra copy of the logits is gigabytes.
    out, start = None, 0
    for rows, width in plan:
        index = order[start:start + rows]
        start += rows
        kept = width - (seq - keep)  # positions of the chunk inside the kept window
        if kept <= 0:  # only pads in the window: their logits stay zero
            continue
        cols = slice(shared, width)
        part = _forward(w, input_ids[index, cols], attention_mask[index, cols],
                        positions[index, cols], (cos, sin), kept, prefix)
        if prefix is not None and in_window:
            part = torch.cat([prefix.logits.expand(rows, -1, -1), part], dim=1)
        if len(plan) == 1 and kept == keep:
            return part
        if out is None:
            out = part.new_zeros(batch, keep, part.shape[-1])
        out[index, :kept] = part
    width = w.embed.shape[1] if w.head_w is None else w.head_w.shape[0]
    return out if out is not None else w.embed.new_zeros(batch, keep, width)


def _packed(model, w: Weights, input_ids, attention_mask, positions, rope, keep: int):
    """`_outputs` through `rlvr.model.native_score`: the layers over real tokens only (the
    shared prompt once), then the final norm / output layer over the tokens in the kept
    window, placed back in (B, keep, ·) with zeros at pads."""
    seq = input_ids.shape[1]
    packed = _pack(input_ids, attention_mask, positions)
    h = native_score.run_model(model, packed, rope)
    total = h.shape[0]
    index = packed.index[:, seq - keep:]
    if w.head_w is not None:  # the output layer only over the tokens the window shows
        used = torch.zeros(total + 1, dtype=torch.bool, device=h.device)
        used[index] = True
        if not used[:total].all():
            chosen = used[:total].nonzero().squeeze(1)
            h = h[chosen]
            remap = torch.full((total + 1,), len(chosen), dtype=torch.long, device=h.device)
            remap[chosen] = torch.arange(len(chosen), device=h.device)
            index = remap[index]
    out = _project(h, w)
    return torch.cat([out, out.new_zeros(1, out.shape[1])])[index]


def _buckets(widths: list[int], seq: int) -> list[tuple[int, int]]:
    """(rows, width) chunks of the rows sorted by width: 1-4 equal-count chunks, the count
    that minimises padded positions plus a per-chunk overhead of 3 % of the batch."""
    batch = len(widths)
    best, plan = None, []
    for count in range(1, min(4, batch) + 1):
        bounds = [round(batch * i / count) for i in range(count + 1)]
        chunks = [(hi - lo, widths[hi - 1]) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
                  if hi > lo]
        cost = sum(rows * width for rows, width in chunks) + 0.03 * batch * seq * count
        if best is None or cost < best:
            best, plan = cost, chunks
    return plan


class _Prefix(NamedTuple):
    """Columns every row shares (a GRPO group's prompt), computed once for all rows."""

    kv: list  # per layer (keys, values), each (1, kv_heads, C, D)
    mask: torch.Tensor  # (C,) bool: real keys
    logits: torch.Tensor | None  # (1, C', V): its positions inside the kept window


def _shared_prefix(input_ids, attention_mask, positions, limit: int) -> int:
    """How many leading columns are identical in every row (ids, mask, positions)."""
    if input_ids.shape[0] < 2 or limit < 1:
        return 0
    same = ((input_ids == input_ids[:1]) & (attention_mask == attention_mask[:1])
            & (positions == positions[:1])).all(0)
    differ = (~same).nonzero()
    return min(int(differ[0, 0]) if len(differ) else same.shape[0], limit)


def _run_prefix(w: Weights, input_ids, attention_mask, positions, rope, in_window: int):
    kv = []
    inner = sdpa_attend(full_mask(attention_mask, input_ids.shape[1], input_ids.device),
                        w.kv_heads != w.heads)

    def attend(q, k, v):
        kv.append((k, v))
        return inner(q, k, v)
    h = run_layers(w, input_ids, positions, rope, lambda i: attend, checkpoint=False)
    logits = _project(h[:, h.shape[1] - in_window:], w) if in_window else None
    return _Prefix(kv, attention_mask[0].bool(), logits)


def _project(h: torch.Tensor, w: Weights) -> torch.Tensor:
    """Logits, or the final-normed hidden states when the weights carry no head."""
    return final_norm(h, w) if w.head_w is None else head_logits(h, w)


def _forward(w: Weights, input_ids, attention_mask, positions, rope, keep: int,
             prefix: _Prefix | None = None):
    """Logits of the last `keep` positions (at most all) of rows that may continue `prefix`."""
    rows, seq = input_ids.shape
    gqa = w.kv_heads != w.heads
    mask = full_mask(attention_mask, seq, input_ids.device)
    if prefix is None:
        attend = sdpa_attend(mask, gqa)
        h = run_layers(w, input_ids, positions, rope, lambda i: attend)
    else:
        # Prefix keys are visible to every query (causally earlier); its K/V are expanded,
        # not copied, so their gradients sum over the rows as if each row had its own.
        mask = torch.cat([prefix.mask.expand(rows, 1, seq, -1), mask], dim=-1)

        def attend_of(i):
            keys, values = prefix.kv[i]

            def attend(q, k, v):
                k = torch.cat([keys.expand(rows, -1, -1, -1), k], dim=2)
                v = torch.cat([values.expand(rows, -1, -1, -1), v], dim=2)
                return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)
            return attend
        h = run_layers(w, input_ids, positions, rope, attend_of)
    return _project(h[:, max(seq - keep, 0):], w)


def forward_logits(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                   position_ids: torch.Tensor | None = None) -> torch.Tensor:
    """All positions' logits: `logits` when `supports(model)`, else the model's own forward."""
    if supports(model):
        return logits(model, input_ids, attention_mask, position_ids)
    return model(input_ids=input_ids, attention_mask=attention_mask,
                 position_ids=position_ids).logits
