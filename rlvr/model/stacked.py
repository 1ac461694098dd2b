"""Several copies of one Llama/Qwen2 architecture (the seeds of a study) in one forward.

On the organism a training step is bound by per-op dispatch, not arithmetic: a 16-row decode
step costs about as much as a 64-row one. S runs that differ only in their weights (seeds
trained from one base) therefore run together here: every weight gets a leading S dimension
(`stack`), every matrix product becomes a batched one (`torch.bmm` over the S models), and
normalisation, rotary embedding and attention run on the S × B rows at once. The ops per token
are those of one model; the arithmetic is S models'.

The math is `rlvr.model.weights`' (same fused projections, rotary tables from the model's own
module); `tests/test_seeds.py` checks logits against each model's own forward. Only models
`rlvr.model.fast_forward.supports` are accepted. `stack` is differentiable: gradients of the stacked
tensors flow back into each model's own parameters, so each run keeps its own optimizer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rlvr.model import native_step
from rlvr.model.fast_forward import supports
from rlvr.model.kv_cache import distinct_rows
from rlvr.model.weights import (
    Layer,
    Weights,
    full_mask,
    fused_weights,
    rope_columns,
    rope_tables,
    rotate,
)

__all__ = ["StackedDecode", "logits", "stack"]


def _stack(parts: list) -> torch.Tensor | None:
    if all(p is None for p in parts):
        return None
    return torch.stack(parts)


def stack(models: list) -> Weights:
    """The fused weights of every model, each tensor stacked along a new dim 0 (S)."""
    if not models or not all(supports(m) for m in models):
        raise ValueError("rlvr.model.stacked needs models that rlvr.model.fast_forward supports")
    ws = [fused_weights(m) for m in models]
    layers = []
    for i, first in enumerate(ws[0].layers):
        fields = [first.eps] + [_stack([w.layers[i][j] for w in ws])
                                for j in range(1, len(first))]
        layers.append(Layer(*fields))
    w0 = ws[0]
    return Weights(torch.stack([w.embed for w in ws]), layers,
                   torch.stack([w.norm for w in ws]), w0.norm_eps,
                   torch.stack([w.head_w for w in ws]), _stack([w.head_b for w in ws]),
                   w0.heads, w0.kv_heads, w0.head_dim)


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x (S, N, I) @ weight (S, O, I)ᵀ (+ bias (S, O)) → (S, N, O)."""
    if bias is None:
        return torch.bmm(x, weight.transpose(1, 2))
    return torch.baddbmm(bias[:, None, :], x, weight.transpose(1, 2))


def _residual(h, x, weight, bias) -> torch.Tensor:
    out = torch.baddbmm(h, x, weight.transpose(1, 2))
    return out if bias is None else out + bias[:, None, :]


def _norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return F.rms_norm(x, (x.shape[-1],), None, eps) * weight[:, None, :]


def _embed(w: Weights, ids: torch.Tensor) -> torch.Tensor:
    """ids (S, N) → (S, N, E), each model with its own table."""
    return torch.gather(w.embed, 1, ids[..., None].expand(-1, -1, w.embed.shape[-1]))


def _head(w: Weights, h: torch.Tensor) -> torch.Tensor:
    return _linear(_norm(h, w.norm, w.norm_eps), w.head_w, w.head_b)


def _mlp(h: torch.Tensor, layer: Layer) -> torch.Tensor:
    x = _norm(h, layer.norm2, layer.eps)
    gate, up = _linear(x, layer.gate_up_w, layer.gate_up_b).chunk(2, dim=-1)
    return _residual(h, F.silu(gate) * up, layer.down_w, layer.down_b)


def logits(w: Weights, rope, input_ids: torch.Tensor, attention_mask: torch.Tensor,
           position_ids: torch.Tensor, keep: int, on_kv=None) -> torch.Tensor:
    """Logits of the last `keep` positions of (S, B, L) rows, model s on rows [s] → (S, B,
    keep, V). `rope` = `rlvr.model.weights.rope_tables(...)` of the shared architecture; `on_kv(i, k, v)`
    sees each layer's keys and values (the decoder's prefill fills its cache with it)."""
    S, B, L = input_ids.shape
    heads, kv_heads, dim = w.heads, w.kv_heads, w.head_dim
    flat = position_ids.reshape(S * B, L)
    cos, sin = rope[0][flat].unsqueeze(2), rope[1][flat].unsqueeze(2)  # (S·B, L, 1, D)
    mask = full_mask(attention_mask.reshape(S * B, L), L, input_ids.device)
    h = _embed(w, input_ids.reshape(S, B * L))  # (S, B·L, E)
    for i, layer in enumerate(w.layers):
        x = _norm(h, layer.norm1, layer.eps)
        qkv = _linear(x, layer.qkv_w, layer.qkv_b).view(S * B, L, heads + 2 * kv_heads, dim)
        qk = rotate(qkv[:, :, :heads + kv_heads], cos, sin)
        q, k = qk[:, :, :heads].transpose(1, 2), qk[:, :, heads:].transpose(1, 2)
        v = qkv[:, :, heads + kv_heads:].transpose(1, 2)
        if on_kv is not None:
            on_kv(i, k, v)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                             enable_gqa=kv_heads != heads)
        h = _residual(h, out.transpose(1, 2).reshape(S, B * L, heads * dim), layer.o_w,
                      layer.o_b)
        h = _mlp(h, layer)
    h = h.view(S, B, L, -1)[:, :, L - keep:].reshape(S, B * keep, -1)
    return _head(w, h).view(S, B, keep, -1)


class StackedDecode:
    """Incremental decoding of S models × B rows with a preallocated K/V cache, a decoder
    `rlvr.model.decode.decode` drives: its S·B rows are model-major (model s decodes rows
    s·B … s·B + B − 1). No row is dropped: the batch runs until every row has stopped or the
    budget is spent. Where `rlvr.model.native_step` is built (fp32 on a CPU) each model's rows
    go through it in turn: one C++ call per model costs less than the stacked eager ops."""

    def __init__(self, model, w: Weights, rows: int, max_length: int):
        self.model, self.w = model, w
        S = w.embed.shape[0]
        self.S, self.B, self.max_length, self.length = S, rows, max_length, 0
        size = (2, S * rows, w.kv_heads, max_length, w.head_dim)
        dtype, device = w.embed.dtype, w.embed.device
        self.native = _native_args(w) if not torch.is_autocast_enabled(device.type) else None
        # the cache of a single run's C++ step (fp16 unless RLVR_HALF_CACHE=0), so that a seed
        # group samples what each run alone would; never zeroed: see rlvr.model.kv_cache
        # (every column is written before it is read)
        self.kv = [torch.empty(size, device=device, dtype=native_step.cache_dtype()
                               if self.native is not None else dtype) for _ in w.layers]
        self.bias = torch.zeros(S * rows, w.kv_heads, 1, max_length, dtype=dtype, device=device)
        self.rope = None

    @torch.no_grad()
    def prefill(self, input_ids, attention_mask, position_ids) -> torch.Tensor:
        """(S·B, P) left-padded prompts → last-position logits (S·B, V)."""
        S, P = self.S, input_ids.shape[1]
        B = input_ids.shape[0] // S
        input_ids, attention_mask, position_ids = (
            x.reshape(S, B, P) for x in (input_ids, attention_mask, position_ids))
        needed = int(position_ids.max()) + 1 + self.max_length
        self.rope = rope_tables(self.model, needed, self.w.embed.dtype, input_ids.device)
        if self.native is not None:
            self.tables = rope_columns(self.rope, self.w)
        pad = (attention_mask.reshape(S * B, P) == 0)[:, None, None, :]
        self.bias[..., :P].masked_fill_(pad, float("-inf"))
        if self.native is not None and bool(attention_mask[..., -1].all()):
            self.length = P
            return self._native_prefill(input_ids, attention_mask, position_ids)

        def keep_kv(i, k, v):
            self.kv[i][0, :, :, :P] = k
            self.kv[i][1, :, :, :P] = v
        out = logits(self.w, self.rope, input_ids, attention_mask, position_ids, 1, keep_kv)
        self.length = P
        return out[:, :, -1].reshape(S * B, -1)

    @torch.no_grad()
    def step(self, token: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """token, position (S·B,) → logits (S·B, V)."""
        t, w = self.length, self.w
        if t >= self.max_length:
            raise ValueError(f"the cache holds {self.max_length} positions; all are used")
        token = token.reshape(self.S, -1)
        S, B = token.shape
        if self.native is not None:
            return self._native_step(token, position.reshape(S, B), t)
        heads, kv_heads, dim = w.heads, w.kv_heads, w.head_dim
        flat = position.reshape(-1)
        cos, sin = self.rope[0][flat][:, None], self.rope[1][flat][:, None]  # (S·B, 1, D)
        h = _embed(w, token)  # (S, B, E)
        rows = S * B * kv_heads
        for kv, layer in zip(self.kv, w.layers, strict=True):
            x = _norm(h, layer.norm1, layer.eps)
            qkv = _linear(x, layer.qkv_w, layer.qkv_b).view(S * B, heads + 2 * kv_heads, dim)
            qk = qkv[:, :heads + kv_heads]
            flipped = qk.unflatten(-1, (2, -1)).flip(-2).flatten(-2)
            qk = qk * cos + flipped * sin
            kv[0, :, :, t] = qk[:, heads:]
            kv[1, :, :, t] = qkv[:, heads + kv_heads:]
            q = qk[:, :heads].reshape(rows, heads // kv_heads, dim)
            keys = kv[0, :, :, :t + 1].reshape(rows, t + 1, dim)
            scores = torch.baddbmm(self.bias[..., :t + 1].reshape(rows, 1, t + 1), q,
                                   keys.transpose(1, 2), alpha=dim ** -0.5)
            out = torch.bmm(scores.softmax(-1), kv[1, :, :, :t + 1].reshape(rows, t + 1, dim))
            h = _residual(h, out.view(S, B, heads * dim), layer.o_w, layer.o_b)
            h = _mlp(h, layer)
        self.length = t + 1
        return _head(w, h).reshape(S * B, -1)

    def _native_prefill(self, input_ids, attention_mask, position_ids) -> torch.Tensor:
        """Model s's (B, P) left-padded prompts through `rlvr.model.native_step.prefill` on its
        slice of the cache, each distinct prompt once: a single run's prefill
        (`rlvr.model.kv_cache`), so here too a seed group samples what each run alone would."""
        w, (_, per_model) = self.w, self.native
        prefill, B, out = native_step.prefill_function(), input_ids.shape[1], []
        for s, (embed, layers, norm, head_wt, head_b, panels) in enumerate(per_model):
            rows = slice(s * B, (s + 1) * B)
            ids, mask, positions = input_ids[s], attention_mask[s], position_ids[s]
            inverse, first = distinct_rows(ids, mask, positions)
            out.append(prefill(ids[first], mask[first], positions[first], first, inverse, embed,
                               layers, [kv[:, rows] for kv in self.kv], self.bias[rows],
                               *self.tables, norm, head_wt, head_b, w.heads, w.kv_heads,
                               w.head_dim, w.layers[0].eps, w.norm_eps, panels))
        return torch.cat(out)

    def _native_step(self, token, position, t: int) -> torch.Tensor:
        """Model s's rows through `rlvr.model.native_step` on its slice of the cache: the
        same kernel as a single run's decode (`rlvr.model.kv_cache`), so a seed group samples
        what each run alone would."""
        w, (fn, per_model) = self.w, self.native
        B, out = token.shape[1], []
        for s, (embed, layers, norm, head_wt, head_b, panels) in enumerate(per_model):
            rows = slice(s * B, (s + 1) * B)
            out.append(fn(token[s], position[s], embed, layers, [kv[:, rows] for kv in self.kv],
                          self.bias[rows], *self.tables, norm, head_wt, head_b, w.heads,
                          w.kv_heads, w.head_dim, t, w.layers[0].eps, w.norm_eps, panels))
        self.length = t + 1
        return torch.cat(out)

    def can_select(self) -> bool:
        return False  # the S models' rows share one cache tensor: none is dropped

    def select_rows(self, index: torch.Tensor) -> None:
        raise NotImplementedError("a stacked decode keeps every row (can_select() is False)")


def _native_args(w: Weights):
    """(compiled step, per model (embed, flat layers, norm, head, head bias, panels)) when
    `rlvr.model.native_step` can run these stacked fp32 CPU weights, else None."""
    if not native_step.usable(w):
        return None
    fn = native_step.step_function()
    if fn is None:
        return None
    per_model = []
    for s in range(w.embed.shape[0]):
        layers, head_w, panels = native_step.step_weights(w, s)
        head_b = None if w.head_b is None else w.head_b[s]
        per_model.append((w.embed[s], layers, w.norm[s], head_w,
                          native_step.or_empty(head_b, w.norm[s]), panels))
    return fn, per_model
