"""A Llama/Qwen2 model's parameters as plain tensors, and the layer math over them.

On tiny CPU models (the organism: 4 layers, hidden 96) a forward is bound by per-op dispatch
and module overhead, not by arithmetic: the Hugging Face decode step issues ~270 torch ops
per token. The math here does the same in far fewer: q/k/v and gate/up projections fused into
one matrix product each (`fused_weights`), rotary cos/sin gathered from a table computed once
by the model's own rotary module (`rope_tables`), `F.rms_norm` and
`F.scaled_dot_product_attention`.

`fused_weights` reads the parameters at call time (the trainer updates them in place), so the
forward built on it (`rlvr.model.fast_forward`) is differentiable and never stale; the decode
cache (`rlvr.model.kv_cache`) and the seed-stacked forward (`rlvr.model.stacked`) share it.
"""

from __future__ import annotations

import weakref
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint as recompute_in_backward

__all__ = ["Checkpointed", "Layer", "Weights", "decoder_layer", "default_positions", "final_norm",
           "full_mask", "fused_weights", "head_logits", "mlp", "residual", "rope_columns",
           "rope_tables", "rotate", "run_layers", "sdpa_attend"]


class Layer(NamedTuple):
    """One decoder layer's parameters, projections fused."""

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


class Weights(NamedTuple):
    """The whole model's parameters; `head_w` None means "stop at the final norm"."""

    embed: torch.Tensor
    layers: list[Layer]
    norm: torch.Tensor
    norm_eps: float
    head_w: torch.Tensor | None
    head_b: torch.Tensor | None
    heads: int
    kv_heads: int
    head_dim: int


def _cat_bias(*linears: nn.Linear) -> torch.Tensor | None:
    if all(lin.bias is None for lin in linears):
        return None
    return torch.cat([lin.bias if lin.bias is not None
                      else lin.weight.new_zeros(lin.out_features) for lin in linears])


def fused_weights(model) -> Weights:
    """The model's parameters, projections fused by torch.cat (differentiable, never stale)."""
    config, inner = model.config, model.model
    layers = []
    for layer in inner.layers:
        att, mlp = layer.self_attn, layer.mlp
        layers.append(Layer(
            layer.input_layernorm.variance_epsilon, layer.input_layernorm.weight,
            torch.cat([att.q_proj.weight, att.k_proj.weight, att.v_proj.weight]),
            _cat_bias(att.q_proj, att.k_proj, att.v_proj), att.o_proj.weight, att.o_proj.bias,
            layer.post_attention_layernorm.weight,
            torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]),
            _cat_bias(mlp.gate_proj, mlp.up_proj), mlp.down_proj.weight, mlp.down_proj.bias))
    head = model.get_output_embeddings()
    att = inner.layers[0].self_attn
    return Weights(inner.embed_tokens.weight, layers, inner.norm.weight,
                   inner.norm.variance_epsilon, head.weight, head.bias,
                   config.num_attention_heads, config.num_key_value_heads, att.head_dim)


# rotary module → {(device, dtype): (inv_freq it was built from, cos table, sin table)}
_TABLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def rope_tables(model, length: int, dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
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


def rope_columns(rope, w) -> tuple[torch.Tensor, torch.Tensor]:
    """`rope_tables`' cos/sin (L, D) repeated over the q and k heads, with v's columns passing
    through (cos 1, sin 0): (L, (H + 2·Hkv)·D) tables that `step` indexes by position."""
    cos, sin = rope
    qk, v = w.heads + w.kv_heads, w.kv_heads * w.head_dim
    return (torch.cat([cos.repeat(1, qk), cos.new_ones(cos.shape[0], v)], dim=1),
            torch.cat([sin.repeat(1, qk), sin.new_zeros(sin.shape[0], v)], dim=1))


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding of x (B, S, heads, D) with cos/sin (B, S, 1, D) from `rope_tables`."""
    flipped = x.unflatten(-1, (2, -1)).flip(-2).flatten(-2)
    return x * cos + flipped * sin


def default_positions(position_ids, batch: int, seq: int, device) -> torch.Tensor:
    """The caller's positions, or 0 … seq−1 for every row when it gave none."""
    if position_ids is None:
        return torch.arange(seq, device=device).expand(batch, seq)
    return position_ids


def decoder_layer(h: torch.Tensor, w: Layer, cos, sin, shape, attend) -> torch.Tensor:
    """One decoder layer on h (B, S, E); `attend(q, k, v)` (B, heads, S, D) → (B, H, S, D)."""
    heads, kv_heads, head_dim = shape
    batch, seq, width = h.shape
    x = F.rms_norm(h, (width,), w.norm1, w.eps)
    qkv = F.linear(x, w.qkv_w, w.qkv_b).view(batch, seq, heads + 2 * kv_heads, head_dim)
    qk = rotate(qkv[:, :, :heads + kv_heads], cos, sin)
    q, k = qk[:, :, :heads].transpose(1, 2), qk[:, :, heads:].transpose(1, 2)
    v = qkv[:, :, heads + kv_heads:].transpose(1, 2)
    out = attend(q, k, v).transpose(1, 2).reshape(batch, seq, heads * head_dim)
    h = residual(h, out, w.o_w, w.o_b)
    return mlp(h, w)


def mlp(h: torch.Tensor, w: Layer) -> torch.Tensor:
    """The layer's second half: norm, SwiGLU, residual."""
    x = F.rms_norm(h, (h.shape[-1],), w.norm2, w.eps)
    gate, up = F.linear(x, w.gate_up_w, w.gate_up_b).chunk(2, dim=-1)
    return residual(h, F.silu(gate) * up, w.down_w, w.down_b)


def residual(h: torch.Tensor, x: torch.Tensor, weight, bias) -> torch.Tensor:
    """h + linear(x): one addmm instead of a matrix product and an add. Under autocast the
    addmm would run in bf16 and round the residual stream, which HF keeps in fp32."""
    if bias is not None or torch.is_autocast_enabled(h.device.type):
        return h + F.linear(x, weight, bias)
    return torch.addmm(h.flatten(0, -2), x.flatten(0, -2), weight.t()).view(h.shape)


def final_norm(h: torch.Tensor, w: Weights) -> torch.Tensor:
    return F.rms_norm(h, (h.shape[-1],), w.norm, w.norm_eps)


def head_logits(h: torch.Tensor, w: Weights) -> torch.Tensor:
    """Logits of the last layer's hidden states h (…, E): final norm, then the output layer."""
    return F.linear(final_norm(h, w), w.head_w, w.head_b)


def full_mask(attention_mask: torch.Tensor | None, seq: int, device) -> torch.Tensor | None:
    """(B, 1, S, S) bool: causal and not a pad key. Every query keeps itself, so a pad query
    with only pad keys gets a finite (ignored) output instead of SDPA's NaN, whose
    NaN × 0 would poison the gradients."""
    if attention_mask is None:
        return None
    causal = torch.ones(seq, seq, dtype=torch.bool, device=device).tril()
    mask = causal & attention_mask.bool()[:, None, :]  # (B, S, S)
    return (mask | torch.eye(seq, dtype=torch.bool, device=device))[:, None]


def sdpa_attend(mask, gqa: bool):
    """`attend(q, k, v)` for `decoder_layer`: SDPA under `mask` (causal when None)."""
    def attend(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None,
                                              enable_gqa=gqa)
    return attend


class Checkpointed:
    """A layer's weights marked for gradient checkpointing (see `run_layers`)."""

    def __init__(self, layer: Layer):
        self.layer = layer


def run_layers(w: Weights, input_ids, positions, rope, attend_of, *,
               checkpoint: bool = True) -> torch.Tensor:
    """The last layer's hidden states (B, S, E) of `input_ids` (B, S) at `positions`, with
    `rope` = `rope_tables(...)` and layer i attending through `attend_of(i)`. Layers wrapped
    in `Checkpointed` keep only their input for the backward pass when `checkpoint`."""
    cos, sin = rope[0][positions].unsqueeze(2), rope[1][positions].unsqueeze(2)  # (B,S,1,D)
    h = F.embedding(input_ids, w.embed)
    shape = (w.heads, w.kv_heads, w.head_dim)
    for i, layer in enumerate(w.layers):
        if isinstance(layer, Checkpointed):
            # The prefix's attention records its K/V as a side effect, so the shared prompt
            # (one row, computed once) is never checkpointed: `checkpoint=False` there.
            if checkpoint:
                h = recompute_in_backward(decoder_layer, h, layer.layer, cos, sin, shape,
                                          attend_of(i), use_reentrant=False)
                continue
            layer = layer.layer
        h = decoder_layer(h, layer, cos, sin, shape, attend_of(i))
    return h
