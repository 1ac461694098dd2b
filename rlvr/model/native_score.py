"""The scoring forward + backward of a Llama/Qwen2 model over real tokens only, in C++.

The trainer scores a GRPO step's responses with a forward and a backward over right-padded
rows that share a prompt. On the organism (hidden 96) the eager path spends as long around its
matrix products (rotary, norms, SwiGLU, their backward, autograd bookkeeping) as in them, and a
third of the products are pads. Here the rows are packed: the real tokens of every row one
after another, the shared prompt (when the caller found one) once at the front (`pack`). One
`torch.autograd.Function` (`run_layers`) runs the whole decoder stack on that (N, E) sequence
with a C++ forward and backward (`native_score.cpp`, shipped beside it): the products through ATen's
`mm`/`addmm` (the same MKL kernels as the eager path), everything between them in loops. The
embedding before it and the final norm / output layer after it stay in torch autograd; the
fused weights of `rlvr.model.weights.fused_weights` carry the gradients back to the model's
own parameters as in the eager path.

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

from rlvr.model import cpp_build

__all__ = ["Packed", "enabled", "kernels", "pack", "prefill_layers", "run_layers", "usable"]

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
    in every row: those columns' real tokens once, then each row's own real tokens."""
    batch, seq = input_ids.shape
    head = real[0, :shared]
    prompt = int(head.sum())
    own = real[:, shared:]
    counts = own.sum(1)
    total = prompt + int(counts.sum())
    ids = torch.cat([input_ids[0, :shared][head], input_ids[:, shared:][own]])
    pos = torch.cat([positions[0, :shared][head], positions[:, shared:][own]])
    starts = prompt + counts.cumsum(0) - counts
    zeros = counts.new_zeros(prompt)
    segment = torch.cat([zeros, torch.repeat_interleave(starts, counts)])
    prefix_end = torch.cat([zeros, counts.new_full((total - prompt,), prompt)])
    first = torch.where(head, head.cumsum(0) - 1, total)
    rest = torch.where(own, prompt + own.flatten().cumsum(0).view_as(own) - 1, total)
    index = torch.cat([first.expand(batch, -1), rest], dim=1)
    return Packed(ids, pos.long(), prefix_end.long().contiguous(), segment.long().contiguous(),
                  index)


def run_layers(w, packed: Packed, rope) -> torch.Tensor:
    """The last decoder layer's hidden states (N, E) of the packed tokens, differentiable in
    `w`'s embedding and layer weights; `rope` = `rlvr.model.weights.rope_tables(...)`."""
    h = F.embedding(packed.ids, w.embed)
    cos = rope[0].index_select(0, packed.positions).contiguous()
    sin = rope[1].index_select(0, packed.positions).contiguous()
    plan = _Plan(cos, sin, packed.prefix_end, packed.segment, [layer.eps for layer in w.layers],
                 (w.heads, w.kv_heads, w.head_dim))
    weights = [t for layer in w.layers for t in layer[1:]]
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad
                                       for t in (h, *weights)):
        return _Stack.apply(h, plan, *weights)
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


class _Stack(torch.autograd.Function):
    """The decoder layers as one autograd node: C++ forward, C++ backward."""

    @staticmethod
    def forward(ctx, h, plan, *weights):
        flat = _flat(weights, h)
        out = kernels().forward(h.detach().contiguous(), *plan[:4], flat, plan.eps, *plan.shape,
                                True)
        # Intermediates of the C++ forward (not inputs or outputs), kept until the backward.
        ctx.kept, ctx.flat, ctx.plan = out[1:], flat, plan
        ctx.present = [t is not None for t in weights]
        return out[0]

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        plan = ctx.plan
        grads = kernels().backward(grad.contiguous(), ctx.kept, *plan[:4], ctx.flat,
                                   *plan.shape)
        ctx.kept = None
        return (grads[0], None, *[g if present else None
                                  for g, present in zip(grads[1:], ctx.present, strict=True)])


def _compile():
    # -fno-trapping-math lets the compiler turn the exp/sigmoid loops' comparisons into
    # vector blends; it changes no result.
    return cpp_build.compile_module("rlvr_score_stack", _SOURCE_FILE, ["forward", "backward"],
                                    "scoring forward", "RLVR_FAST_SCORE",
                                    ("-fno-trapping-math",))
