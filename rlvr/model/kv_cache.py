"""Incremental decoding over a Llama/Qwen2 model's fused weights: a preallocated K/V cache.

The cache holds the whole response from the start (written in place, never concatenated), and
a decode step is plain batched matrix products over the fused weights of
`rlvr.model.weights`: ≈ 1.7-1.9× faster per token than the Hugging Face step on the organism
at 16 rows (docs/benchmarks.md), with the same logits. With fp32 weights on a CPU the step
runs in C++ (`rlvr.model.native_step`, ≈ 2-3× faster again at 16 rows) when that module could
be built, on a cache of fp16 keys and values (`native_step.cache_dtype`; `RLVR_HALF_CACHE=0`
keeps fp32); otherwise, or with `RLVR_FAST_DECODE=0`, the eager step below on a cache of the
weights' dtype. Its prefill of left-padded prompts then runs through the same kernels
(`native_step.prefill`: all prompt columns at once, keys and values written straight into the
cache), and `run` takes the decode loop's iterations while every row is alive into C++ as
well (`rlvr.model.decode`). Use it only on a model `rlvr.model.fast_forward.supports`;
`rlvr.model.policy.make_decoder` makes that choice.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rlvr.model import native_step
from rlvr.model.weights import (
    Layer,
    default_positions,
    full_mask,
    fused_weights,
    head_logits,
    mlp,
    residual,
    rope_columns,
    rope_tables,
    run_layers,
    sdpa_attend,
)

__all__ = ["DecodeCache", "distinct_rows", "forced_logits"]


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
            self.w = w = fused_weights(model)
        self.shape = (w.heads, w.kv_heads, w.head_dim)
        self.gqa = w.kv_heads != w.heads
        self.max_length, self.length = max_length, 0
        device, dtype = w.embed.device, w.embed.dtype
        autocast = torch.is_autocast_enabled(device.type)
        self.native = None if autocast else _native_args(w)
        if autocast:
            # Under autocast the projections come out in bf16: a cache in the weights' fp32
            # would double its memory (at 1.5B and 4k tokens: 57 KB instead of 29 KB a token)
            # and hold no more precision than was computed.
            dtype = torch.get_autocast_dtype(device.type)
        # the C++ step's keys and values: fp16 unless RLVR_HALF_CACHE=0 (its mask stays fp32)
        stored = dtype if self.native is None else native_step.cache_dtype()
        # Keys and values of a layer in one tensor, so a step writes both with one copy.
        size = (2, batch_size, w.kv_heads, max_length, w.head_dim)
        # Never zeroed: the prefill writes every prompt column and a step its own before any
        # read, and a step reads columns up to its own only (11.8 MB of memset per organism
        # rollout of 64 rows).
        self.kv = [torch.empty(size, dtype=stored, device=device) for _ in w.layers]
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
        positions = default_positions(position_ids, batch, seq, device)
        # Positions grow by one per step, so this table covers every step too.
        needed = int(positions.max()) + 1 + self.max_length - seq
        cos, sin = rope_tables(self.model, needed, w.embed.dtype, device)
        # Per-step tables over all q/k/v heads: v passes through (cos 1, sin 0).
        self.cos, self.sin = rope_columns((cos, sin), w)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        pad = (attention_mask == 0)[:, None, None, :]  # (B, 1, 1, P)
        self.bias[..., :seq].masked_fill_(pad, float("-inf"))
        inverse, first = distinct_rows(input_ids, attention_mask, positions)
        self.length = seq
        # (a right-padded prompt ends in a pad query, whose output only the eager path defines)
        if self.native is not None and bool(attention_mask[:, -1].all()):
            # the step's own kernels, all columns at once, keys and values straight into the
            # cache (`native_step.prefill`)
            (_, layers, head_wt, panels) = self.native
            return native_step.prefill_function()(
                input_ids[first], attention_mask[first], positions[first], first, inverse,
                w.embed, layers, self.kv, self.bias, self.cos, self.sin, w.norm, head_wt,
                native_step.or_empty(w.head_b, w.head_w), *self.shape, w.layers[0].eps,
                w.norm_eps, panels)
        attend = sdpa_attend(full_mask(attention_mask[first], seq, device), self.gqa)

        def attend_of(i):
            kv = self.kv[i]

            def run(q, k, v):
                kv[0, :, :, :seq] = k[inverse]
                kv[1, :, :, :seq] = v[inverse]
                return attend(q, k, v)
            return run
        h = run_layers(w, input_ids[first], positions[first], (cos, sin), attend_of)
        return head_logits(h[:, -1], w)[inverse]

    @torch.no_grad()
    def step(self, token: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        t = self.length
        if t >= self.max_length:
            raise ValueError(f"the cache holds {self.max_length} positions; all are used")
        if self.native is not None:
            (fn, layers, head_wt, panels), w = self.native, self.w
            logits = fn(token, position, w.embed, layers, self.kv, self.bias, self.cos,
                        self.sin, w.norm, head_wt, native_step.or_empty(w.head_b, w.head_w),
                        *self.shape, t, w.layers[0].eps, w.norm_eps, panels)
            self.length = t + 1
            return logits
        cos, sin = self.cos[position], self.sin[position]  # (B, (H + 2·Hkv)·D)
        h = F.embedding(token, self.w.embed)  # (B, E)
        for kv, layer in zip(self.kv, self.w.layers, strict=True):
            h = self._step_layer(h, layer, kv, cos, sin, t)
        self.length = t + 1
        return head_logits(h, self.w)

    def _step_layer(self, h, w: Layer, kv, cos, sin, t: int) -> torch.Tensor:
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
        h = residual(h, out.view(batch, heads * dim), w.o_w, w.o_b)
        return mlp(h, w)

    def run(self, logits, position, keys, tokens, eos, budget: int, temperature: float):
        """`rlvr.model.decode.decode`'s iterations from 0 while every row is alive, in C++
        (`native_step.run_steps`: the draw at `temperature` and top_p 1, the record into
        `tokens`, the step): → (the first iteration it left to the caller, that iteration's
        logits, the positions). Only on the C++ step (`self.native`)."""
        if self.length + budget - 1 > self.max_length:
            raise ValueError(f"the cache holds {self.max_length} positions; {budget} new "
                             f"tokens after {self.length} do not fit")
        (_, layers, head_wt, panels), w = self.native, self.w
        step, logits, position, self.length = native_step.run_function()(
            logits, position, keys.contiguous(), tokens, eos, budget, temperature, w.embed,
            layers, self.kv, self.bias, self.cos, self.sin, w.norm, head_wt,
            native_step.or_empty(w.head_b, w.head_w), *self.shape, self.length,
            w.layers[0].eps, w.norm_eps, panels)
        return step, logits, position

    def select_rows(self, index: torch.Tensor) -> None:
        """Keep only rows `index` (B',) of the batch, in that order."""
        self.kv = [kv.index_select(1, index) for kv in self.kv]
        self.bias = self.bias.index_select(0, index)


def forced_logits(model, ids, mask, positions, tokens) -> tuple[DecodeCache, torch.Tensor]:
    """A decode given its tokens (B, steps) instead of drawing them: (the cache, the logits
    before each token (B, steps, V)). Two caches fed the same tokens compare position by
    position (tests/test_native_step.py, benchmarks/half_cache.py)."""
    cache = DecodeCache(model, ids.shape[0], ids.shape[1] + tokens.shape[1])
    with torch.inference_mode():
        out, position = [cache.prefill(ids, mask, positions)], positions[:, -1]
        for column in tokens.T[:-1]:
            position = position + 1
            out.append(cache.step(column, position))
    return cache, torch.stack(out, 1)


def distinct_rows(input_ids, attention_mask, positions) -> tuple[torch.Tensor, torch.Tensor]:
    """The n samples of a prompt are identical rows, so a prefill runs each distinct row once:
    (inverse (B,): each row's distinct row, first (R,): each distinct row's first row)."""
    batch, device = input_ids.shape[0], input_ids.device
    _, inverse = torch.unique(torch.cat([input_ids, attention_mask, positions], dim=1),
                              dim=0, return_inverse=True)
    first = torch.full((int(inverse.max()) + 1,), batch, device=device).scatter_reduce(
        0, inverse, torch.arange(batch, device=device), "amin")
    return inverse, first


def _native_args(w):
    """(compiled step, its flat per-layer weights, the output layer, their panels:
    `native_step.step_weights`) when `rlvr.model.native_step` can run these weights (fp32 on
    the CPU, one norm epsilon), else None: the eager step above."""
    if not native_step.usable(w):
        return None
    fn = native_step.step_function()
    if fn is None:
        return None
    return (fn, *native_step.step_weights(w))
