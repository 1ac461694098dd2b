"""One decode step of a Llama/Qwen2 model in C++, and its sampling draw: the matrix products
on weights packed once per decode, everything between them in plain loops.

On the organism (hidden 96, 4 layers) an eager decode step is bound by what surrounds its
matrix products: ~180 torch calls per token, and attention as two batched products of one
query row each (MKL pays a call per (row, head)). `torch.compile` did not help on this CPU
(measured in docs/benchmarks.md, "Roofline"). This module compiles, once per machine, the C++
of `native_step.cpp` (shipped beside it):

- `step`: the whole decode step. The q/k/v, output, gate/up, down and head projections are
  the step's own products (`native_gemm.h`, the weights packed into panels once per decode by
  `step_weights`): at the organism's shapes MKL copies both operands into its layout on every
  call (a tenth of a 64-row decode), the panels are read as they lie, every output an in-order
  fp32 sum, the same whatever the batch. Without AVX2, or with `RLVR_PANEL_PRODUCTS=0`, the
  products are `at::mm` / `at::addmm` (the eager step's kernels). The RMS norms, rotary
  embedding, cache write, single-query attention (scores, softmax and the weighted values in
  one pass per head) and SwiGLU are loops over rows, in AVX2 registers where the head size
  is a multiple of 8.
- `prefill`: the prompt columns of a decode cache through the same kernels, all columns of
  the distinct prompts at once (the products over every token), each token's rotated key and
  value written into the cache and its queries attending to the row's keys up to itself.
- `run_steps`: the decode loop's iterations while every row is alive (draw, record, step) in
  one call, instead of a Python iteration and its torch calls per token.
- `sample`: `rlvr.model.decode.choose`'s Gumbel-max draw at top_p 1, the same hash and the
  same arithmetic in one pass over the logits instead of ~20 tensor operations. Its logarithm
  is the C library's where torch's is its own vector routine; both are within an ulp, and the
  tokens drawn agree (tests/test_native_step.py compares them over 50k rows).

`step_function()` / `sample_function()` return the compiled functions, or None when they
cannot be had (no C++ compiler, a build error, `RLVR_FAST_DECODE=0`): the callers then keep the
eager step and the torch draw. The build (~1 minute) happens on first use and is cached by
torch under `TORCH_EXTENSIONS_DIR` (default `~/.cache/torch_extensions`); a line on stderr
says so, and a failed build prints one notice with its cause. fp32 without `-ffast-math`:
sums are reassociated only into 8 vector lanes, and e^x is a polynomial within ~2 ulp; AVX2 +
FMA only where torch's own capability check finds them (`rlvr.model.cpp_build`). On an fp32
cache the logits equal the eager step's within 1e-5 (tests/test_native_step.py, on five
architectures); the default cache holds fp16 keys and values (`cache_dtype`), and the
next-token distributions then stay within `HALF_CACHE_TV` of the fp32 cache's.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from rlvr.model import cpp_build

__all__ = ["HALF_CACHE_TV", "cache_dtype", "enabled", "flat_layer", "input_major", "or_empty",
           "panel_product", "prefill_function", "run_function", "sample_function", "step_function",
           "step_weights", "usable"]

# The most that the next-token distribution of a step on an fp16 cache may differ from the
# step's on an fp32 cache (total variation), given the same tokens (tests/test_native_step.py;
# benchmarks/half_cache.py measures the organism's: at most ~0.03, ~2e-4 on average).
HALF_CACHE_TV = 0.05
# The C++ source ships beside this module (package data).
_SOURCE_FILE = Path(__file__).with_name("native_step.cpp")
_STATE: dict = {}


def usable(w) -> bool:
    """Whether `step` can run these (possibly seed-stacked) fused weights: fp32 on the CPU,
    an output layer, one norm epsilon."""
    return (w.embed.device.type == "cpu" and w.embed.dtype == torch.float32
            and w.head_w is not None and len({layer.eps for layer in w.layers}) == 1)


def cache_dtype() -> torch.dtype:
    """The dtype of a decode cache that `step` runs: fp16 where the build has AVX2 (its F16C
    widens each key and value as it loads), unless `RLVR_HALF_CACHE=0`; else fp32.

    A step's attention streams the whole cache from memory and waits on it: at 64 rows on the
    organism it is a third of the step, and fp16 halves the bytes (docs/benchmarks.md,
    "Seventh pass"). The queries, scores, softmax and weighted sums stay fp32; only the stored
    keys and values are rounded (relative error ≤ 2^-11), as a GPU engine's bf16 cache rounds
    them more coarsely. The logits then match the fp32 step's within the tolerance that
    tests/test_native_step.py states, not to float rounding; the tokens drawn stay seeded and
    the same whatever the batch (each value is rounded alone). The scoring forward and
    backward of the trainer never read this cache: the policy gradient is exact fp32.
    """
    half = (os.environ.get("RLVR_HALF_CACHE", "1").strip() != "0"
            and cpp_build.flavour("")[1] != [])
    return torch.float16 if half else torch.float32


def or_empty(tensor, like: torch.Tensor) -> torch.Tensor:
    """The C++ side's "no bias": an empty tensor."""
    return tensor.detach() if tensor is not None else like.new_empty(0)


# The projection weights among a layer's ten tensors: (out, in) as the model holds them.
_PROJECTIONS = (1, 3, 6, 8)


def flat_layer(layer, model: int | None = None, transpose: bool = True) -> list[torch.Tensor]:
    """A `rlvr.model.weights.Layer`'s ten tensors in `step`'s order (model `model` of a
    seed-stacked one), absent biases empty, the four projection weights transposed to (in,
    out) unless `transpose` is False: MKL multiplies x @ w then without repacking a transposed
    operand every call (the organism's 17 decode products at 64 rows: 4-9 % faster,
    docs/benchmarks.md)."""
    fields = [f if f is None or model is None else f[model] for f in layer[1:]]
    flat = [or_empty(f, layer.norm1).contiguous() for f in fields]
    if transpose:
        for i in _PROJECTIONS:
            flat[i] = input_major(flat[i])
    return flat


def input_major(weight: torch.Tensor) -> torch.Tensor:
    """An (out, in) weight as the (in, out) matrix `step` multiplies by."""
    return weight.detach().t().contiguous()


def enabled() -> bool:
    """False when `RLVR_FAST_DECODE=0`: the eager decode step (the path before this module)."""
    return os.environ.get("RLVR_FAST_DECODE", "1").strip() != "0"


def step_weights(w, model: int | None = None) -> tuple[list, torch.Tensor, list]:
    """`step`'s weight arguments for fused weights `w` (model `model` of a seed-stacked one):
    (the layers' ten tensors each, the output layer's weight, the panels). With panels (an AVX2
    build, unless `RLVR_PANEL_PRODUCTS=0`) the projection weights stay as the model holds them,
    (out, in), and are packed from there: one extra copy of the weights, as the input-major
    copies were. Without: input-major copies for `at::mm`, and no panels."""
    head_w = w.head_w if model is None else w.head_w[model]
    module = _module()
    if (module is not None and module.panels_available()
            and os.environ.get("RLVR_PANEL_PRODUCTS", "1").strip() != "0"):
        layers = [t for layer in w.layers for t in flat_layer(layer, model, transpose=False)]
        weights = [layers[i + j] for i in range(0, len(layers), 10) for j in _PROJECTIONS]
        head = head_w.detach().contiguous()
        return layers, head, [module.pack_panels_of_rows(t) for t in [*weights, head]]
    layers = [t for layer in w.layers for t in flat_layer(layer, model)]
    return layers, input_major(head_w), []


def panel_product(weight: torch.Tensor):
    """The step's own product by an input-major `weight` (in, out), packed once: a function
    x (rows, in) → x @ weight, for the benchmark that measures the products' ceiling; None
    where the step has no panels."""
    module = _module()
    if module is None or not module.panels_available():
        return None
    panels = module.pack_panels(weight.contiguous())
    return lambda x: module.panel_mm(x, panels, weight.shape[1])


def prefill_function():
    """The compiled `prefill` (a decode cache's prompt columns and the prompts' last logits
    through the step's own kernels, `rlvr.model.kv_cache`), or None."""
    module = _module()
    return None if module is None else module.prefill


def run_function():
    """The compiled `run_steps` (`rlvr.model.decode.decode`'s iterations while every row is
    alive, steps and draws in one call; `rlvr.model.kv_cache.DecodeCache.run`), or None."""
    module = _module()
    return None if module is None else module.run_steps


def step_function():
    """The compiled `step`, built on first use; None when disabled or unavailable."""
    module = _module()
    return None if module is None else module.step


def sample_function():
    """The compiled `sample` (`rlvr.model.decode.choose`'s Gumbel draw, fused), or None."""
    module = _module()
    return None if module is None else module.sample


def _module():
    if not enabled():
        return None
    if "module" not in _STATE:
        # `_compile` looked up at each call: tests replace it with a failing build
        _STATE["module"] = cpp_build.build_or_none(lambda: _compile(), "decode step",
                                                   "decoding uses the eager step", "RLVR_FAST_DECODE")
    return _STATE["module"]


def _compile():
    return cpp_build.compile_module("rlvr_decode_step", _SOURCE_FILE,
                                    ["step", "sample", "pack_panels", "pack_panels_of_rows",
                                     "panels_available", "panel_mm", "prefill", "run_steps"],
                                    "decode step", "RLVR_FAST_DECODE", headers=("native_gemm.h",))
