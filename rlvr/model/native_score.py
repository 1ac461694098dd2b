"""The scoring forward + backward of a Llama/Qwen2 model over real tokens only, in C++.

The trainer scores a GRPO step's responses with a forward and a backward over right-padded
rows that share a prompt. On the organism (hidden 96) the eager path spends as long around its
matrix products (rotary, norms, SwiGLU, their backward, autograd bookkeeping) as in them, and a
third of the products are pads. Here the rows are packed: the real tokens of every row one
after another, the shared prompt (when the caller found one) once at the front (`pack`). One
`torch.autograd.Function` (`run_model`) runs the embedding and the whole decoder stack on that
(N, E) sequence with a C++ forward and backward (`native_score.cpp`, shipped beside it): the
products through ATen's `mm`/`addmm` (the same MKL kernels as the eager path), everything
between them in loops. It takes the model's own parameters: the fused q/k/v and gate/up
matrices are concatenated without autograd (`plain_weights`) and their gradients cut back by
rows. The trainer's statistics (`head_stats`: final norm, output layer, log-probs, entropy)
are a second C++ node over the states of the scored positions only, gathered from the packed
tokens (`rlvr.model.fast_forward.hidden_at`). `run_layers` is the same stack over fused
weights that carry their own autograd (the decode cache's prefill uses `prefill_layers`).

`kernels()` returns the compiled module, or None when it cannot be had (no C++ compiler, a
build error, `RLVR_FAST_SCORE=0`): `rlvr.model.fast_forward` then keeps its eager forward. The
build (~1 minute) happens once per machine, cached by torch under `TORCH_EXTENSIONS_DIR`
(default `~/.cache/torch_extensions`); a failed build gives a one-line notice. Plain fp32
arithmetic without `-ffast-math` (`-fno-trapping-math` only lets the compiler turn the
comparisons of the exp/sigmoid loops into vector blends); AVX2 + FMA where torch itself runs
AVX2 kernels (the rule of `rlvr.model.cpp_build`). Logits equal the eager forward's within float rounding
(tests/test_native_score.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from rlvr.model import cpp_build, structure
from rlvr.model.weights import Layer, Weights

__all__ = ["Packed", "enabled", "head_stats", "kernels", "pack", "plain_weights",
           "prefill_layers", "run_layers", "run_model", "usable"]

_STATE: dict = {}
# The C++ source ships beside this module (package data).
_SOURCE_FILE = Path(__file__).with_name("native_score.cpp")


def enabled() -> bool:
    """False when `RLVR_FAST_SCORE=0`: the eager scoring forward (the path before this module)."""
    return os.environ.get("RLVR_FAST_SCORE", "1").strip() != "0"


def kernels():
    """The compiled module (`forward`, `backward`), built on first use; None when disabled or
    unavailable."""
    if not enabled():
        return None
    if "module" not in _STATE:
        # `_compile` looked up at each call: tests replace it with a failing build
        _STATE["module"] = cpp_build.build_or_none(lambda: _compile(), "scoring forward",
                                                   "scoring uses the eager forward", "RLVR_FAST_SCORE")
    return _STATE["module"]


def usable(embed: torch.Tensor, *, checkpoint: bool) -> bool:
    """Whether the packed C++ stack can run a model whose embedding is `embed` here: fp32 on
    the CPU, no autocast, no gradient checkpointing asked for, the extension built."""
    return (embed.device.type == "cpu" and embed.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu")
            and not (checkpoint and torch.is_grad_enabled())
            and kernels() is not None)


class Packed(NamedTuple):
    """Rows as one sequence of their real tokens (`pack`)."""

    ids: torch.Tensor  # (N,) token ids
    positions: torch.Tensor  # (N,) rotary positions
    prefix_end: torch.Tensor  # (N,) int64: keys [0, prefix_end) are the shared prompt's
    segment: torch.Tensor  # (N,) int64: the token's own keys are [segment, itself]
    index: torch.Tensor  # (B, S) packed index of each column, N at pads


def pack(input_ids: torch.Tensor, real: torch.Tensor, positions: torch.Tensor,
         shared: int) -> Packed:
    """The real tokens (`real` (B, S) bool) of rows whose first `shared` columns are the same
    in every row: those columns' real tokens once, then each row's own real tokens (in C++:
    a pass over the columns instead of a dozen small torch ops)."""
    return Packed(*kernels().pack(input_ids, real, positions, shared))


def run_layers(w, packed: Packed, rope) -> torch.Tensor:
    """The last decoder layer's hidden states (N, E) of the packed tokens, differentiable in
    `w`'s embedding and layer weights; `rope` = `rlvr.model.weights.rope_tables(...)`."""
    h = F.embedding(packed.ids, w.embed)
    plan = _plan(w, packed, rope)
    weights = [t for layer in w.layers for t in layer[1:]]
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad
                                       for t in (h, *weights)):
        return _FusedStack.apply(h, plan, *weights)
    with torch.no_grad():
        return kernels().forward(h, *plan[:4], _flat(weights, h), plan.eps, *plan.shape,
                                 False)[0]


def prefill_layers(w, packed: Packed, rope) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Without gradients: the last layer's hidden states (N, E) of the packed tokens and each
    layer's q/k/v projection after rotary (N, (H + 2·Hkv)·D), which a decode cache keeps as
    its keys and values (`rlvr.model.kv_cache`)."""
    with torch.no_grad():
        h = F.embedding(packed.ids, w.embed)
        cos = rope[0].index_select(0, packed.positions).contiguous()
        sin = rope[1].index_select(0, packed.positions).contiguous()
        weights = [t for layer in w.layers for t in layer[1:]]
        out = kernels().forward(h, cos, sin, packed.prefix_end, packed.segment,
                                _flat(weights, h), [layer.eps for layer in w.layers],
                                w.heads, w.kv_heads, w.head_dim, True)
    # out: the hidden states, then per layer the forward's kept tensors (kSaved of them in
    # native_score.cpp), of which q/k/v is the fourth
    return out[0], [out[1 + _KEPT_PER_LAYER * i + _KEPT_QKV] for i in range(len(w.layers))]


_KEPT_PER_LAYER, _KEPT_QKV = 12, 3


def run_model(model, w, packed: Packed, rope) -> torch.Tensor:
    """`run_layers` differentiable in the model's own parameters: `w` =
    `rlvr.model.weights.fused_weights(model)` taken under `torch.no_grad()` (its fused q/k/v
    and gate/up matrices plain copies), the gradients of the fused products split back onto
    q, k, v, gate and up here, without an autograd node per concatenation."""
    params = structure.cached(model, "score_parameters", _own_parameters)
    if not (torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in params)):
        with torch.no_grad():
            return run_layers(w, packed, rope)
    plan = _plan(w, packed, rope)
    flat = _flat([t for layer in w.layers for t in layer[1:]], w.embed)
    return _Stack.apply(packed.ids, plan, flat, *params)


def _plan(w, packed: Packed, rope) -> _Plan:
    cos = rope[0].index_select(0, packed.positions).contiguous()
    sin = rope[1].index_select(0, packed.positions).contiguous()
    return _Plan(cos, sin, packed.prefix_end, packed.segment, [layer.eps for layer in w.layers],
                 (w.heads, w.kv_heads, w.head_dim))


class _Plan(NamedTuple):
    cos: torch.Tensor
    sin: torch.Tensor
    prefix_end: torch.Tensor
    segment: torch.Tensor
    eps: list
    shape: tuple


def _flat(weights, like: torch.Tensor) -> list[torch.Tensor]:
    """The C++ side's layer tensors: detached, contiguous, an absent bias empty."""
    return [like.new_empty(0) if t is None else t.detach().contiguous() for t in weights]


# Per decoder layer, the parameters behind `forward`'s ten tensors: the fused q/k/v and
# gate/up matrices (and biases) come from several.
_PER_LAYER = 16


def _own_parameters(model) -> list:
    """[embedding, then per layer norm1, q, k, v, q_b, k_b, v_b, o, o_b, norm2, gate, up,
    gate_b, up_b, down, down_b] (None where a bias is absent)."""
    out = [model.model.embed_tokens.weight]
    for layer in model.model.layers:
        att, mlp = layer.self_attn, layer.mlp
        out += [layer.input_layernorm.weight, att.q_proj.weight, att.k_proj.weight,
                att.v_proj.weight, att.q_proj.bias, att.k_proj.bias, att.v_proj.bias,
                att.o_proj.weight, att.o_proj.bias, layer.post_attention_layernorm.weight,
                mlp.gate_proj.weight, mlp.up_proj.weight, mlp.gate_proj.bias, mlp.up_proj.bias,
                mlp.down_proj.weight, mlp.down_proj.bias]
    return out


def plain_weights(model) -> Weights:
    """`rlvr.model.weights.fused_weights(model)` without autograd (`run_model` routes the
    gradients itself): the fused matrices are plain concatenations of the parameters' current
    values; which parameters, and the model's shapes, come from a cached walk of the model."""
    params = structure.cached(model, "score_parameters", _own_parameters)
    fixed = structure.cached(model, "score_constants", _constants)
    layers = []
    with torch.no_grad():
        for i, eps in enumerate(fixed[0]):
            p = params[1 + _PER_LAYER * i:1 + _PER_LAYER * (i + 1)]
            layers.append(Layer(eps, p[0], torch.cat(p[1:4]), _cat_bias(p[1:4], p[4:7]), p[7],
                                p[8], p[9], torch.cat(p[10:12]), _cat_bias(p[10:12], p[12:14]),
                                p[14], p[15]))
    return Weights(params[0], layers, *fixed[1:])


def _constants(model) -> tuple:
    """(per-layer eps, final norm, its eps, head weight, head bias, heads, K/V heads, head
    dim), as `fused_weights` reads them."""
    inner, head = model.model, model.get_output_embeddings()
    att = inner.layers[0].self_attn
    return ([layer.input_layernorm.variance_epsilon for layer in inner.layers], inner.norm.weight,
            inner.norm.variance_epsilon, head.weight, head.bias, model.config.num_attention_heads,
            model.config.num_key_value_heads, att.head_dim)


def _cat_bias(weights, biases) -> torch.Tensor | None:
    if all(b is None for b in biases):
        return None
    return torch.cat([b if b is not None else w.new_zeros(w.shape[0])
                      for w, b in zip(weights, biases, strict=True)])


def _split(grad: torch.Tensor, rows: list, present: list) -> list:
    """A fused product's gradient cut back into its sources' (`rows` each; None where a source
    is absent: its rows of the fused bias were zeros)."""
    if not grad.numel():
        return [None] * len(rows)
    return [g if kept else None for g, kept in zip(grad.split(rows), present, strict=True)]


class _Stack(torch.autograd.Function):
    """The embedding and the decoder layers as one autograd node over the model's own
    parameters: C++ forward and backward, the gradients of fused weights split by rows."""

    @staticmethod
    def forward(ctx, ids, plan, flat, embed, *params):
        ctx.ids, ctx.embed_shape = ids, embed.shape
        ctx.rows = [None if t is None else t.shape[0] for t in params]
        return _forward_keeping(ctx, embed.detach().index_select(0, ids), plan, flat)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        grads = _backward_of_kept(ctx, grad)
        embed = grads[0].new_zeros(ctx.embed_shape).index_add_(0, ctx.ids, grads[0])
        out = [None, None, None, embed]
        for i in range(len(ctx.rows) // _PER_LAYER):
            G, R = grads[1 + 10 * i:11 + 10 * i], ctx.rows[_PER_LAYER * i:_PER_LAYER * (i + 1)]
            has = [r is not None for r in R]
            out += [G[0], *_split(G[1], R[1:4], has[1:4]), *_split(G[2], R[1:4], has[4:7]),
                    G[3], G[4] if has[8] else None, G[5],
                    *_split(G[6], R[10:12], has[10:12]), *_split(G[7], R[10:12], has[12:14]),
                    G[8], G[9] if has[15] else None]
        return tuple(out)


def _forward_keeping(ctx, h: torch.Tensor, plan, flat) -> torch.Tensor:
    """The C++ forward of an autograd node; its intermediates (not inputs or outputs) stay on
    `ctx` until `_backward_of_kept`."""
    out = kernels().forward(h, *plan[:4], flat, plan.eps, *plan.shape, True)
    ctx.kept, ctx.flat, ctx.plan = out[1:], flat, plan
    return out[0]


def _backward_of_kept(ctx, grad: torch.Tensor) -> list[torch.Tensor]:
    """The C++ backward from what `_forward_keeping` kept (released after)."""
    plan = ctx.plan
    grads = kernels().backward(grad.contiguous(), ctx.kept, *plan[:4], ctx.flat, *plan.shape)
    ctx.kept = None
    return grads


class _FusedStack(torch.autograd.Function):
    """The decoder layers as one autograd node over fused weights: C++ forward and backward."""

    @staticmethod
    def forward(ctx, h, plan, *weights):
        ctx.present = [t is not None for t in weights]
        return _forward_keeping(ctx, h.detach().contiguous(), plan, _flat(weights, h))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        grads = _backward_of_kept(ctx, grad)
        return (grads[0], None, *[g if present else None
                                  for g, present in zip(grads[1:], ctx.present, strict=True)])


def head_stats(h: torch.Tensor, norm: torch.Tensor, eps: float, weight: torch.Tensor,
               bias: torch.Tensor | None, tokens: torch.Tensor, *, temperature: float,
               entropy: bool, chunk_size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`rlvr.model.policy.token_stats` of the final-normed `h` (M, E) (the final RMS norm
    `norm`, `eps` applied here), in C++: log π(token) and the entropy, ((M,), (M,) or None)."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    logp, ent = _Head.apply(h, norm, weight, bias, tokens, eps, temperature, entropy,
                            chunk_size)
    return logp, (ent if entropy else None)


class _Head(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, norm, weight, bias, tokens, eps, temperature, entropy, chunk):
        h = h.detach().contiguous()
        b = weight.new_empty(0) if bias is None else bias.detach()
        logp, ent, x, inv = kernels().head_stats(h, norm.detach(), eps, weight.detach(), b,
                                                 tokens, temperature, entropy, chunk)
        ctx.save_for_backward(h, x, inv, norm, weight, b, tokens)
        ctx.temperature, ctx.chunk, ctx.has_bias = temperature, chunk, bias is not None
        return logp, ent

    @staticmethod
    @once_differentiable
    def backward(ctx, d_logp, d_ent):
        h, x, inv, norm, weight, b, tokens = ctx.saved_tensors
        empty = h.new_empty(0)
        dh, dnorm, dw, db = kernels().head_stats_back(
            h, x, inv, norm.detach(), weight.detach(), b, tokens, ctx.temperature,
            empty if d_logp is None else d_logp.contiguous(),
            empty if d_ent is None or not d_ent.numel() else d_ent.contiguous(), ctx.chunk)
        return dh, dnorm, dw, (db if ctx.has_bias else None), None, None, None, None, None


def _compile():
    # -fno-trapping-math lets the compiler turn the exp/sigmoid loops' comparisons into
    # vector blends; it changes no result.
    return cpp_build.compile_module("rlvr_score_stack", _SOURCE_FILE, ["forward", "backward", "head_stats",
                                                              "head_stats_back", "pack"],
                                    "scoring forward", "RLVR_FAST_SCORE",
                                    ("-fno-trapping-math",), headers=("native_gemm.h",))
