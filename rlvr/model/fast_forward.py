"""A functional forward over a Hugging Face Llama/Qwen2 causal LM's own parameters.

On tiny CPU models (the organism: 4 layers, hidden 96) a forward is bound by per-op dispatch
and module overhead, not by arithmetic: the Hugging Face decode step issues ~270 torch ops
per token. This module does the same math in far fewer: q/k/v and gate/up projections fused
into one matrix product each, rotary cos/sin gathered from a table computed once by the
model's own rotary module, `F.rms_norm`, `F.scaled_dot_product_attention`, and for decoding a
K/V cache preallocated for the whole response (written in place, never concatenated).

Decoding is where this pays on CPU (≈ 1.7-1.9× per token at 16 rows). A full-sequence forward
+ backward is bound by its matrix products instead, so `logits` saves work rather than ops:
columns every row shares (a GRPO group's prompt) are computed once, and right-padded rows
run in length buckets cut to their own longest row. Organism pretraining (batch 64, no
padding, no shared prefix) gains nothing and keeps the HF forward (docs/benchmarks.md).

Parameters are read from the model at call time (the trainer updates them in place), so
`logits` is differentiable and never stale. A `DecodeCache` fuses the weights once when it is
created: it lives for one rollout, during which the weights do not change.

`supports(model)` says whether a model is one this forward reproduces exactly (fp32 logits
within 1e-5 of `model(...).logits`, tests/test_fast_lm.py); callers fall back to the plain
Hugging Face forward otherwise. `RLVR_FAST_LM=0` in the environment turns the fast path off
everywhere (debugging, benchmarks of the "before").
"""

from __future__ import annotations

import os
import weakref
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint as _checkpoint

__all__ = ["DecodeCache", "forward_logits", "hidden", "logits", "supports"]

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


class _Layer(NamedTuple):
    eps: float
    norm1: torch.Tensor
    qkv_w: torch.Tensor
    qkv_b: torch.Tensor | None
    o_w: torch.Tensor
    o_b: torch.Tensor | None
    norm2: torch.Tensor
    gate_up_w: torch.Tensor
    gate_up_b: torch.Tensor | None
    down_w: torch.Tensor
    down_b: torch.Tensor | None


class _Weights(NamedTuple):
    embed: torch.Tensor
    layers: list[_Layer]
    norm: torch.Tensor
    norm_eps: float
    head_w: torch.Tensor
    head_b: torch.Tensor | None
    heads: int
    kv_heads: int
    head_dim: int


def _cat_bias(*linears: nn.Linear) -> torch.Tensor | None:
    if all(lin.bias is None for lin in linears):
        return None
    return torch.cat([lin.bias if lin.bias is not None
                      else lin.weight.new_zeros(lin.out_features) for lin in linears])


def _weights(model) -> _Weights:
    """The model's parameters, projections fused by torch.cat (differentiable, never stale)."""
    config, inner = model.config, model.model
    layers = []
    for layer in inner.layers:
        att, mlp = layer.self_attn, layer.mlp
        layers.append(_Layer(
            layer.input_layernorm.variance_epsilon, layer.input_layernorm.weight,
            torch.cat([att.q_proj.weight, att.k_proj.weight, att.v_proj.weight]),
            _cat_bias(att.q_proj, att.k_proj, att.v_proj), att.o_proj.weight, att.o_proj.bias,
            layer.post_attention_layernorm.weight,
            torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]),
            _cat_bias(mlp.gate_proj, mlp.up_proj), mlp.down_proj.weight, mlp.down_proj.bias))
    head = model.get_output_embeddings()
    att = inner.layers[0].self_attn
    return _Weights(inner.embed_tokens.weight, layers, inner.norm.weight,
                    inner.norm.variance_epsilon, head.weight, head.bias,
                    config.num_attention_heads, config.num_key_value_heads, att.head_dim)


# rotary module → {(device, dtype): (inv_freq it was built from, cos table, sin table)}
_TABLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _rope_tables(model, length: int, dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and (sign-folded) sin for positions 0 … ≥length−1, each (L, head_dim), from the
    model's own rotary module (so linear/llama3/yarn scaling is whatever HF computes)."""
    rotary = model.model.rotary_emb
    per_module = _TABLES.setdefault(rotary, {})
    found = per_module.get((device, dtype))
    if found is not None and found[0] is rotary.inv_freq and found[1].shape[0] >= length:
        return found[1], found[2]
    size = max(256, 1 << (length - 1).bit_length())
    # Plain tensors even when called under inference_mode: training reuses them for autograd.
    with torch.inference_mode(False), torch.no_grad():
        positions = torch.arange(size, device=device)[None]
        cos, sin = rotary(torch.empty(0, dtype=dtype, device=device), positions)
        cos, sin = cos[0].to(dtype).contiguous(), sin[0].to(dtype)
        half = sin.shape[-1] // 2
        # rotate_half(x) * sin == flip_halves(x) * [−sin_lo, sin_hi]: one flip, no cat/neg.
        sin = torch.cat([-sin[:, :half], sin[:, half:]], dim=-1).contiguous()
    per_module[(device, dtype)] = (rotary.inv_freq, cos, sin)
    return cos, sin


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding of x (B, S, heads, D) with cos/sin (B, S, 1, D)."""
    flipped = x.unflatten(-1, (2, -1)).flip(-2).flatten(-2)
    return x * cos + flipped * sin


def _layer(h: torch.Tensor, w: _Layer, cos, sin, shape, attend) -> torch.Tensor:
    """One decoder layer on h (B, S, E); `attend(q, k, v)` (B, heads, S, D) → (B, H, S, D)."""
    heads, kv_heads, head_dim = shape
    batch, seq, width = h.shape
    x = F.rms_norm(h, (width,), w.norm1, w.eps)
    qkv = F.linear(x, w.qkv_w, w.qkv_b).view(batch, seq, heads + 2 * kv_heads, head_dim)
    qk = _rotate(qkv[:, :, :heads + kv_heads], cos, sin)
    q, k = qk[:, :, :heads].transpose(1, 2), qk[:, :, heads:].transpose(1, 2)
    v = qkv[:, :, heads + kv_heads:].transpose(1, 2)
    out = attend(q, k, v).transpose(1, 2).reshape(batch, seq, heads * head_dim)
    h = _residual(h, out, w.o_w, w.o_b)
    x = F.rms_norm(h, (width,), w.norm2, w.eps)
    gate, up = F.linear(x, w.gate_up_w, w.gate_up_b).chunk(2, dim=-1)
    return _residual(h, F.silu(gate) * up, w.down_w, w.down_b)


def _residual(h: torch.Tensor, x: torch.Tensor, weight, bias) -> torch.Tensor:
    """h + linear(x): one addmm instead of a matrix product and an add. Under autocast the
    addmm would run in bf16 and round the residual stream, which HF keeps in fp32."""
    if bias is not None or torch.is_autocast_enabled(h.device.type):
        return h + F.linear(x, weight, bias)
    return torch.addmm(h.flatten(0, -2), x.flatten(0, -2), weight.t()).view(h.shape)


def _final_norm(h: torch.Tensor, w: _Weights) -> torch.Tensor:
    return F.rms_norm(h, (h.shape[-1],), w.norm, w.norm_eps)


def _head(h: torch.Tensor, w: _Weights) -> torch.Tensor:
    return F.linear(_final_norm(h, w), w.head_w, w.head_b)


def _full_mask(attention_mask: torch.Tensor | None, seq: int, device) -> torch.Tensor | None:
    """(B, 1, S, S) bool: causal and not a pad key. Every query keeps itself, so a pad query
    with only pad keys gets a finite (ignored) output instead of SDPA's NaN, whose
    NaN × 0 would poison the gradients."""
    if attention_mask is None:
        return None
    causal = torch.ones(seq, seq, dtype=torch.bool, device=device).tril()
    mask = causal & attention_mask.bool()[:, None, :]  # (B, S, S)
    return (mask | torch.eye(seq, dtype=torch.bool, device=device))[:, None]


def _sdpa(mask, gqa: bool):
    def attend(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None,
                                              enable_gqa=gqa)
    return attend


def _positions(position_ids, batch: int, seq: int, device) -> torch.Tensor:
    if position_ids is None:
        return torch.arange(seq, device=device).expand(batch, seq)
    return position_ids


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


def _outputs(model, input_ids, attention_mask, position_ids, logits_to_keep: int,
             project: bool, checkpoint: bool) -> torch.Tensor:
    w = _weights(model)
    if checkpoint and torch.is_grad_enabled():
        w = w._replace(layers=[_Checkpointed(layer) for layer in w.layers])
    if not project:
        w = w._replace(head_w=None)
    batch, seq = input_ids.shape
    keep = min(logits_to_keep, seq) if logits_to_keep > 0 else seq
    positions = _positions(position_ids, batch, seq, input_ids.device)
    cos, sin = _rope_tables(model, int(positions.max()) + 1, w.embed.dtype, input_ids.device)
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


def _run_prefix(w: _Weights, input_ids, attention_mask, positions, rope, in_window: int):
    kv = []
    inner = _sdpa(_full_mask(attention_mask, input_ids.shape[1], input_ids.device),
                  w.kv_heads != w.heads)

    def attend(q, k, v):
        kv.append((k, v))
        return inner(q, k, v)
    h = _hidden(w, input_ids, positions, rope, lambda i: attend, checkpoint=False)
    logits = _project(h[:, h.shape[1] - in_window:], w) if in_window else None
    return _Prefix(kv, attention_mask[0].bool(), logits)


def _project(h: torch.Tensor, w: _Weights) -> torch.Tensor:
    """Logits, or the final-normed hidden states when the weights carry no head."""
    return _final_norm(h, w) if w.head_w is None else _head(h, w)


class _Checkpointed:
    """A layer's weights marked for gradient checkpointing (see `_hidden`)."""

    def __init__(self, layer: _Layer):
        self.layer = layer


def _hidden(w: _Weights, input_ids, positions, rope, attend_of, *,
            checkpoint: bool = True) -> torch.Tensor:
    cos, sin = rope[0][positions].unsqueeze(2), rope[1][positions].unsqueeze(2)  # (B,S,1,D)
    h = F.embedding(input_ids, w.embed)
    shape = (w.heads, w.kv_heads, w.head_dim)
    for i, layer in enumerate(w.layers):
        if isinstance(layer, _Checkpointed):
            # The prefix's attention records its K/V as a side effect, so the shared prompt
            # (one row, computed once) is never checkpointed: `checkpoint=False` there.
            if checkpoint:
                h = _checkpoint(_layer, h, layer.layer, cos, sin, shape, attend_of(i),
                                use_reentrant=False)
                continue
            layer = layer.layer
        h = _layer(h, layer, cos, sin, shape, attend_of(i))
    return h


def _forward(w: _Weights, input_ids, attention_mask, positions, rope, keep: int,
             prefix: _Prefix | None = None):
    """Logits of the last `keep` positions (at most all) of rows that may continue `prefix`."""
    rows, seq = input_ids.shape
    gqa = w.kv_heads != w.heads
    mask = _full_mask(attention_mask, seq, input_ids.device)
    if prefix is None:
        attend = _sdpa(mask, gqa)
        h = _hidden(w, input_ids, positions, rope, lambda i: attend)
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
        h = _hidden(w, input_ids, positions, rope, attend_of)
    return _project(h[:, max(seq - keep, 0):], w)


def forward_logits(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                   position_ids: torch.Tensor | None = None) -> torch.Tensor:
    """All positions' logits: `logits` when `supports(model)`, else the model's own forward."""
    if supports(model):
        return logits(model, input_ids, attention_mask, position_ids)
    return model(input_ids=input_ids, attention_mask=attention_mask,
                 position_ids=position_ids).logits


class DecodeCache:
    """Incremental decoding with a K/V cache preallocated for `max_length` positions per row.

    prefill(ids, mask, positions) with a left-padded (B, P) batch → last-position logits
    (B, V); then step(token (B,), position (B,)) → logits (B, V) once per new token;
    select_rows(index) keeps only those rows. The fused weights are taken at creation: use a
    cache for one rollout, while the parameters do not change.
    """

    def __init__(self, model, batch_size: int, max_length: int):
        self.model = model
        with torch.no_grad():
            self.w = w = _weights(model)
        self.shape = (w.heads, w.kv_heads, w.head_dim)
        self.gqa = w.kv_heads != w.heads
        self.max_length, self.length = max_length, 0
        device, dtype = w.embed.device, w.embed.dtype
        if torch.is_autocast_enabled(device.type):
            # Under autocast the projections come out in bf16: a cache in the weights' fp32
            # would double its memory (at 1.5B and 4k tokens: 57 KB instead of 29 KB a token)
            # and hold no more precision than was computed.
            dtype = torch.get_autocast_dtype(device.type)
        # Keys and values of a layer in one tensor, so a step writes both with one copy.
        size = (2, batch_size, w.kv_heads, max_length, w.head_dim)
        self.kv = [torch.zeros(size, dtype=dtype, device=device) for _ in w.layers]
        # Additive key mask (0 or −inf), one copy per K/V head so that a step's scores are
        # a single baddbmm over (B·kv_heads) matrices.
        self.bias = torch.zeros(batch_size, w.kv_heads, 1, max_length, dtype=dtype,
                                device=device)
        self.cos = self.sin = None

    @torch.no_grad()
    def prefill(self, input_ids, attention_mask, position_ids) -> torch.Tensor:
        w, (batch, seq) = self.w, input_ids.shape
        if seq > self.max_length:
            raise ValueError(f"a prompt of {seq} tokens exceeds the cache's {self.max_length}")
        device = input_ids.device
        positions = _positions(position_ids, batch, seq, device)
        # Positions grow by one per step, so this table covers every step too.
        needed = int(positions.max()) + 1 + self.max_length - seq
        cos, sin = _rope_tables(self.model, needed, w.embed.dtype, device)
        # Per-step tables over all q/k/v heads: v passes through (cos 1, sin 0).
        qk, v = w.heads + w.kv_heads, w.kv_heads * w.head_dim
        self.cos = torch.cat([cos.repeat(1, qk), cos.new_ones(cos.shape[0], v)], dim=1)
        self.sin = torch.cat([sin.repeat(1, qk), sin.new_zeros(sin.shape[0], v)], dim=1)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        pad = (attention_mask == 0)[:, None, None, :]  # (B, 1, 1, P)
        self.bias[..., :seq].masked_fill_(pad, float("-inf"))
        # The n samples of a prompt are identical rows: run each distinct row once.
        _, inverse = torch.unique(torch.cat([input_ids, attention_mask, positions], dim=1),
                                  dim=0, return_inverse=True)
        first = torch.full((int(inverse.max()) + 1,), batch, device=device).scatter_reduce(
            0, inverse, torch.arange(batch, device=device), "amin")
        attend = _sdpa(_full_mask(attention_mask[first], seq, device), self.gqa)

        def attend_of(i):
            kv = self.kv[i]

            def run(q, k, v):
                kv[0, :, :, :seq] = k[inverse]
                kv[1, :, :, :seq] = v[inverse]
                return attend(q, k, v)
            return run
        h = _hidden(w, input_ids[first], positions[first], (cos, sin), attend_of)
        self.length = seq
        return _head(h[:, -1], w)[inverse]

    @torch.no_grad()
    def step(self, token: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        t = self.length
        if t >= self.max_length:
            raise ValueError(f"the cache holds {self.max_length} positions; all are used")
        cos, sin = self.cos[position], self.sin[position]  # (B, (H + 2·Hkv)·D)
        h = F.embedding(token, self.w.embed)  # (B, E)
        for kv, layer in zip(self.kv, self.w.layers, strict=True):
            h = self._step_layer(h, layer, kv, cos, sin, t)
        self.length = t + 1
        return _head(h, self.w)

    def _step_layer(self, h, w: _Layer, kv, cos, sin, t: int) -> torch.Tensor:
        """One layer for one token per row, h (B, E). Attention is plain batched matrix
        products (cheaper than SDPA's dispatch at one query); the G = heads / kv_heads query
        heads that share a K/V head form one (G, D) matrix."""
        heads, kv_heads, dim = self.shape
        batch, width = h.shape
        x = F.rms_norm(h, (width,), w.norm1, w.eps)
        qkv = F.linear(x, w.qkv_w, w.qkv_b)  # (B, (H + 2·Hkv)·D)
        flipped = qkv.view(batch, -1, 2, dim // 2).flip(2).view(batch, -1)
        qkv = torch.addcmul(qkv * cos, flipped, sin).view(batch, -1, dim)  # rotary applied
        kv[:, :, :, t] = qkv[:, heads:].view(batch, 2, kv_heads, dim).transpose(0, 1)
        rows = batch * kv_heads
        q = qkv[:, :heads].reshape(rows, heads // kv_heads, dim)
        keys = kv[0, :, :, :t + 1].reshape(rows, t + 1, dim)
        scores = torch.baddbmm(self.bias[..., :t + 1].reshape(rows, 1, t + 1), q,
                               keys.transpose(1, 2), alpha=dim ** -0.5)
        out = torch.bmm(scores.softmax(-1), kv[1, :, :, :t + 1].reshape(rows, t + 1, dim))
        h = _residual(h, out.view(batch, heads * dim), w.o_w, w.o_b)
        x = F.rms_norm(h, (width,), w.norm2, w.eps)
        gate, up = F.linear(x, w.gate_up_w, w.gate_up_b).chunk(2, dim=-1)
        return _residual(h, F.silu(gate) * up, w.down_w, w.down_b)

    def select_rows(self, index: torch.Tensor) -> None:
        """Keep only rows `index` (B',) of the batch, in that order."""
        self.kv = [kv.index_select(1, index) for kv in self.kv]
        self.bias = self.bias.index_select(0, index)
