"""The scoring forward + backward of a Llama/Qwen2 model over real tokens only, in C++.

The trainer scores a GRPO step's responses with a forward and a backward over right-padded
rows that share a prompt. On the organism (hidden 96) the eager path spends as long around its
matrix products (rotary, norms, SwiGLU, their backward, autograd bookkeeping) as in them, and a
third of the products are pads. Here the rows are packed: the real tokens of every row one
after another, the shared prompt (when the caller found one) once at the front (`pack`). One
autograd node (`run_model`) runs the embedding and the whole decoder stack on that
(N, E) sequence with a C++ forward and backward (`native_score.cpp`, shipped beside it): the
forward's products and the backward's input gradients through the decode step's panels
(`native_gemm.h`), the weight gradients through a kernel of the same kind that reduces over
the tokens, everything between them in loops. It takes the model's own parameters: the C++ side reads the q/k/v and gate/up
matrices as one fused matrix where they lie (no concatenation) and returns each parameter's
gradient as rows of the fused one. The trainer's statistics (`scored_stats`: final norm, output layer, log-probs, entropy)
are a second C++ node, which reads the scored positions' states from the packed tokens and
places its results back in the (B, T) layout. Both nodes are C++ `torch::autograd::Function`s
(a Python one costs ~0.3 ms of the organism's 16 ms update converting its ~40 parameters each
way); the engine accumulates the parameters' gradients as for any node.

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

from rlvr.model import cpp_build, structure
from rlvr.model.weights import Weights

__all__ = ["Packed", "enabled", "kernels", "output_weights", "pack",
           "run_model", "scored_stats", "usable"]

_STATE: dict = {}
# Attention probabilities (floats per layer) at most this many (16 MB) are kept from the
# forward for the backward, which otherwise recomputes them from the scores.
KEPT_PROBABILITIES = 1 << 22
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


def pack(input_ids: torch.Tensor, real: torch.Tensor, positions: torch.Tensor | None,
         shared: int) -> Packed:
    """The real tokens (`real` (B, S) bool) of rows whose first `shared` columns are the same
    in every row (-1: as many as are, ids, mask and positions alike): those columns' real
    tokens once, then each row's own real tokens (in C++: a pass over the columns instead of
    a dozen small torch ops). `positions` None: each token's count of real tokens before it
    in its row, as `(real.cumsum(-1) - 1).clamp(min=0)` numbers them (counted there, not by
    three torch ops)."""
    return Packed(*kernels().pack(input_ids, real, positions, shared))


def run_model(model, packed: Packed, rope) -> torch.Tensor:
    """The last decoder layer's hidden states (N, E) of the packed tokens, differentiable in
    the model's own parameters; `rope` = `rlvr.model.weights.rope_tables(...)`. The C++ side
    reads the q/k/v and gate/up matrices as fused ones where they lie and hands back each
    parameter's gradient (rows of the fused ones): no concatenation, no Python per parameter."""
    facts = structure.cached(model, "score_model", _facts)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in facts.params):
        # one C++ autograd node (`StackNode`) over the embedding and the layers
        return kernels().stack_node(packed.ids, *rope, *packed[1:4], facts.plain, facts.eps,
                                    *facts.shape, KEPT_PROBABILITIES)
    with torch.no_grad():
        return kernels().forward_model(packed.ids, facts.plain[0], *rope, *packed[1:4],
                                       facts.plain[1:], facts.eps, *facts.shape, False, 0)[0]


class _Facts(NamedTuple):
    """What the C++ stack needs of a model, found once per module tree (`structure.cached`)."""

    params: list  # [embedding, then per layer the 16 of `_own_parameters`], None if absent
    plain: list  # the same, an absent bias an empty tensor (the C++ side's convention)
    eps: list  # per layer
    shape: tuple  # (heads, K/V heads, head dim)


def _facts(model) -> _Facts:
    params = _own_parameters(model)
    embed = params[0]
    att = model.model.layers[0].self_attn
    return _Facts(params, [embed.new_empty(0) if t is None else t for t in params],
                  [layer.input_layernorm.variance_epsilon for layer in model.model.layers],
                  (model.config.num_attention_heads, model.config.num_key_value_heads,
                   att.head_dim))


def _own_parameters(model) -> list:
    """[embedding, then per layer norm1, q, k, v, q_b, k_b, v_b, o, o_b, norm2, gate, up,
    gate_b, up_b, down, down_b] (None where a bias is absent): `forward_model`'s order."""
    out = [model.model.embed_tokens.weight]
    for layer in model.model.layers:
        att, mlp = layer.self_attn, layer.mlp
        out += [layer.input_layernorm.weight, att.q_proj.weight, att.k_proj.weight,
                att.v_proj.weight, att.q_proj.bias, att.k_proj.bias, att.v_proj.bias,
                att.o_proj.weight, att.o_proj.bias, layer.post_attention_layernorm.weight,
                mlp.gate_proj.weight, mlp.up_proj.weight, mlp.gate_proj.bias, mlp.up_proj.bias,
                mlp.down_proj.weight, mlp.down_proj.bias]
    return out


def output_weights(model) -> Weights:
    """`rlvr.model.weights.fused_weights(model)` without its layers: the embedding, final norm
    and output layer, which the packed path applies after `run_model`."""
    inner, head = model.model, model.get_output_embeddings()
    shape = structure.cached(model, "score_model", _facts).shape
    return Weights(inner.embed_tokens.weight, [], inner.norm.weight, inner.norm.variance_epsilon,
                   head.weight, head.bias, *shape)


def scored_stats(h: torch.Tensor, index: torch.Tensor, real: torch.Tensor, tokens: torch.Tensor,
                 norm: torch.Tensor, eps: float, weight: torch.Tensor, bias: torch.Tensor | None,
                 *, temperature: float, entropy: bool,
                 chunk_size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`rlvr.model.policy.token_stats` of the final-normed states (the final RMS norm `norm`,
    `eps` applied here) at the positions `real` (B, T) marks, read from the packed states `h`
    (N, E) at `index` (B, T): log π(token) and the entropy, each placed back in a (B, T) table,
    zero elsewhere (entropy None unless asked for). One autograd node instead of a gather
    before and two scatters after."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    logp, ent = kernels().scored_node(h, norm, weight, bias, index, real, tokens, eps,
                                      temperature, entropy, chunk_size)
    return logp, (ent if entropy else None)


def _compile():
    # -fno-trapping-math lets the compiler turn the exp/sigmoid loops' comparisons into
    # vector blends; it changes no result.
    return cpp_build.compile_module("rlvr_score_stack", _SOURCE_FILE,
                                    ["forward_model", "stack_node", "scored_node", "pack"],
                                    "scoring forward", "RLVR_FAST_SCORE",
                                    ("-fno-trapping-math",), headers=("native_gemm.h",))
