"""One decode step of a Llama/Qwen2 model in C++: the matrix products of ATen, everything
between them in plain loops.

On the organism (hidden 96, 4 layers) an eager decode step is bound by what surrounds its
matrix products: ~180 torch calls per token, and attention as two batched products of one
query row each (MKL pays a call per (row, head)). `torch.compile` did not help on this CPU
(measured in docs/benchmarks.md, "Roofline"). This module compiles, once per machine, a C++
function that runs the whole step: the q/k/v, output, gate/up, down and head projections
through `at::mm` / `at::addmm` (the same kernels as the eager step), and the RMS norms,
rotary embedding, cache write, single-query attention and SwiGLU as loops over rows.

`step_function()` returns the compiled function, or None when it cannot be had (no C++
compiler, a build error, `RLVR_FAST_DECODE=0`): the caller then keeps the eager step, with no
error shown. The build (~1 minute) happens on first use and is cached by torch under
`TORCH_EXTENSIONS_DIR` (default `~/.cache/torch_extensions`); a line on stderr says so.
Plain fp32 arithmetic without `-ffast-math` (no reassociation beyond the 8-lane dot product);
AVX2 + FMA only where torch's own capability check finds them (`_flavour`). Logits equal the eager step's within float rounding
(tests/test_fast_lm.py checks 1e-5 against the Hugging Face forward).
"""

from __future__ import annotations

import os
import sys

import torch

__all__ = ["enabled", "flat_layer", "or_empty", "step_function", "usable"]

_SOURCE = r"""
#include <torch/extension.h>
#include <algorithm>
#include <cmath>
#include <vector>

using at::Tensor;
constexpr int64_t kMaxDim = 512;

// Dot product in 8 independent lanes: the compiler vectorises it without -ffast-math.
static inline float dot(const float* a, const float* b, int64_t n) {
  float lane[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) lane[l] += a[i + l] * b[i + l];
  float total = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
  for (; i < n; ++i) total += a[i] * b[i];
  return total;
}

// y = w * (x / sqrt(mean(x^2) + eps)), row by row (the Hugging Face RMSNorm in fp32).
static Tensor rms(const Tensor& x, const Tensor& w, double eps) {
  auto out = at::empty_like(x);
  const int64_t rows = x.size(0), n = x.size(1);
  const float* px = x.data_ptr<float>();
  const float* pw = w.data_ptr<float>();
  float* po = out.data_ptr<float>();
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = px + r * n;
    const float inv = 1.f / std::sqrt(dot(xr, xr, n) / n + (float)eps);
    for (int64_t i = 0; i < n; ++i) po[r * n + i] = pw[i] * (xr[i] * inv);
  }
  return out;
}

static Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  return b.numel() ? at::addmm(b, x, w.t()) : at::mm(x, w.t());
}

// h + x @ w^T (+ b), accumulated into h's storage.
static void residual(Tensor& h, const Tensor& x, const Tensor& w, const Tensor& b) {
  if (b.numel()) { h.add_(at::addmm(b, x, w.t())); return; }
  h.addmm_(x, w.t());
}

// layers: per layer [norm1, qkv_w, qkv_b, o_w, o_b, norm2, gate_up_w, gate_up_b, down_w,
// down_b] (an absent bias is an empty tensor); kv: per layer (2, B, Hkv, M, D), contiguous
// but for the stride of its first dimension;
// bias: (B, Hkv, 1, M) additive key mask; cos, sin: (P, (H + 2 Hkv) D) per-position tables.
Tensor step(const Tensor& token, const Tensor& position, const Tensor& embed,
            const std::vector<Tensor>& layers, const std::vector<Tensor>& kv,
            const Tensor& bias, const Tensor& cos, const Tensor& sin, const Tensor& norm,
            const Tensor& head_w, const Tensor& head_b, int64_t heads, int64_t kv_heads,
            int64_t dim, int64_t t, double eps, double norm_eps) {
  const int64_t B = token.size(0), E = embed.size(1), width = (heads + 2 * kv_heads) * dim;
  const int64_t M = kv[0].size(3), group = heads / kv_heads, half = dim / 2;
  TORCH_CHECK(dim <= kMaxDim, "head_dim above ", kMaxDim);
  const float scale = 1.f / std::sqrt((float)dim);
  Tensor h = embed.index_select(0, token).contiguous();
  Tensor c = cos.index_select(0, position).contiguous();
  Tensor s = sin.index_select(0, position).contiguous();
  const float* pc = c.data_ptr<float>();
  const float* ps = s.data_ptr<float>();
  const float* pbias = bias.data_ptr<float>();
  std::vector<float> rotated(width);
  auto scores = at::empty({B * heads, t + 1}, h.options());
  float* psc = scores.data_ptr<float>();
  auto attn = at::empty({B, heads * dim}, h.options());
  float* pa = attn.data_ptr<float>();
  for (size_t i = 0; i < kv.size(); ++i) {
    const Tensor* L = &layers[i * 10];
    Tensor qkv = linear(rms(h, L[0], eps), L[1], L[2]);  // (B, width)
    const float* pq = qkv.data_ptr<float>();
    float* cache = kv[i].data_ptr<float>();
    // keys, then values; the cache may be a slice of a larger one along rows
    const int64_t plane = kv[i].stride(0);
    for (int64_t b = 0; b < B; ++b) {
      const float* row = pq + b * width;
      const float* rc = pc + b * width;
      const float* rs = ps + b * width;
      // rotary: x * cos + (halves of each head swapped) * sin; v passes (cos 1, sin 0)
      for (int64_t base = 0; base < width; base += dim) {
        for (int64_t o = 0; o < half; ++o)
          rotated[base + o] = row[base + o] * rc[base + o] + row[base + o + half] * rs[base + o];
        for (int64_t o = half; o < dim; ++o)
          rotated[base + o] = row[base + o] * rc[base + o] + row[base + o - half] * rs[base + o];
      }
      for (int64_t g = 0; g < kv_heads; ++g) {
        float* k = cache + ((b * kv_heads + g) * M + t) * dim;
        float* v = k + plane;
        for (int64_t d = 0; d < dim; ++d) {
          k[d] = rotated[(heads + g) * dim + d];
          v[d] = rotated[(heads + kv_heads + g) * dim + d];
        }
      }
      for (int64_t hq = 0; hq < heads; ++hq) {
        const int64_t g = hq / group;
        const float* q = rotated.data() + hq * dim;
        const float* keys = cache + (b * kv_heads + g) * M * dim;
        const float* mask = pbias + (b * kv_heads + g) * M;
        float* sc = psc + (b * heads + hq) * (t + 1);
        for (int64_t p = 0; p <= t; ++p) sc[p] = dot(q, keys + p * dim, dim) * scale + mask[p];
      }
    }
    const Tensor probs = at::_softmax(scores, 1, false);
    const float* pp = probs.data_ptr<float>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t hq = 0; hq < heads; ++hq) {
        const int64_t g = hq / group;
        const float* values = cache + plane + (b * kv_heads + g) * M * dim;
        const float* w = pp + (b * heads + hq) * (t + 1);
        float acc[kMaxDim] = {0.f};  // local: no aliasing with the cache, kept in registers
        for (int64_t p = 0; p <= t; ++p)
          for (int64_t d = 0; d < dim; ++d) acc[d] += w[p] * values[p * dim + d];
        std::copy(acc, acc + dim, pa + b * heads * dim + hq * dim);
      }
    residual(h, attn, L[3], L[4]);
    Tensor gu = linear(rms(h, L[5], eps), L[6], L[7]);  // (B, 2 I)
    const int64_t I = gu.size(1) / 2;
    Tensor act = at::silu(gu.narrow(1, 0, I)).mul_(gu.narrow(1, I, I));
    residual(h, act, L[8], L[9]);
  }
  return linear(rms(h, norm, norm_eps), head_w, head_b);
}
"""

_STATE: dict = {}


def usable(w) -> bool:
    """Whether `step` can run these (possibly seed-stacked) fused weights: fp32 on the CPU,
    an output layer, one norm epsilon."""
    return (w.embed.device.type == "cpu" and w.embed.dtype == torch.float32
            and w.head_w is not None and len({layer.eps for layer in w.layers}) == 1)


def or_empty(tensor, like: torch.Tensor) -> torch.Tensor:
    """The C++ side's "no bias": an empty tensor."""
    return tensor.detach() if tensor is not None else like.new_empty(0)


def flat_layer(layer, model: int | None = None) -> list[torch.Tensor]:
    """A `rlvr.model.weights.Layer`'s ten tensors in `step`'s order (model `model` of a
    seed-stacked one), absent biases empty."""
    fields = [f if f is None or model is None else f[model] for f in layer[1:]]
    return [or_empty(f, layer.norm1).contiguous() for f in fields]


def enabled() -> bool:
    """False when `RLVR_FAST_DECODE=0`: the eager decode step (the path before this module)."""
    return os.environ.get("RLVR_FAST_DECODE", "1").strip() != "0"


def step_function():
    """The compiled `step`, built on first use; None when disabled or unavailable."""
    if not enabled():
        return None
    if "fn" not in _STATE:
        _STATE["fn"] = _build()
    return _STATE["fn"]


def _flavour() -> tuple[str, list[str]]:
    """The extension's name and vector flags: AVX2 + FMA where torch itself runs its AVX2 (or
    AVX-512) kernels on this CPU, else the compiler's portable baseline. The name carries the
    choice, so a build folder shared by different CPUs never loads the wrong one."""
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        return "rlvr_decode_step_avx2", ["-mavx2", "-mfma"]
    return "rlvr_decode_step", []


def _build():
    try:
        return _compile()
    except Exception as exc:  # noqa: BLE001 - no compiler or ninja, a build error
        # Decoding stays right on the eager step, only slower: say so once, with the cause,
        # rather than leave a user to wonder why this machine decodes at half speed.
        from rlvr.errors import notice

        cause = (str(exc).strip().splitlines() or [""])[0][:200]
        notice(f"the C++ decode step could not be built ({type(exc).__name__}: {cause}); "
               "decoding uses the eager step, slower on CPU (RLVR_FAST_DECODE=0 skips the "
               "attempt)")
        return None


def _compile():
    from torch.utils import cpp_extension

    name, flags = _flavour()
    # A private helper of torch, used only to word the note: without it the note is shown.
    folder_of = getattr(cpp_extension, "_get_build_directory", None)
    if folder_of is None or not os.path.exists(os.path.join(folder_of(name, verbose=False),
                                                            f"{name}.so")):
        print("rlvr: compiling the C++ decode step once for this machine (about a minute; "
              "RLVR_FAST_DECODE=0 skips it)", file=sys.stderr, flush=True)
    module = cpp_extension.load_inline(name, cpp_sources=_SOURCE, functions=["step"],
                                       extra_cflags=["-O3", *flags], verbose=False)
    return module.step
