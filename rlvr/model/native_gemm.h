// The decode step's matrix products (rlvr.model.native_step; built after native_common.h).
//
// x (rows, K) @ w (K, N) with w packed once per decode into panels of 16 columns, (P, K, 16)
// with P = ceil(N / 16), zero past column N. At the organism's shapes MKL spends a tenth of a
// 64-row decode copying both operands into its own layout on every call; here the weight is laid
// out once and the activations are read where they lie (a block of six rows stays in L1 while
// every panel passes). Six rows by sixteen columns is twelve AVX2 accumulators, two panel loads
// and six broadcasts per k: the FMA units, not the loads, set the pace.
//
// Each output element is one fp32 sum over k in order, whatever the rows beside it or their
// number: a row's logits, and so its sampled tokens, do not depend on the batch.

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

constexpr int64_t kPanel = 16;

// (K, N) input-major → (P, K, 16) panels.
Tensor pack_panels(const Tensor& wt) {
  TORCH_CHECK(wt.dim() == 2 && wt.scalar_type() == at::kFloat, "pack_panels takes a fp32 matrix");
  const Tensor w = wt.contiguous();
  const int64_t K = w.size(0), N = w.size(1), P = (N + kPanel - 1) / kPanel;
  Tensor out = at::zeros({P, K, kPanel}, w.options());
  const float* pw = w.data_ptr<float>();
  float* po = out.data_ptr<float>();
  for (int64_t p = 0; p < P; ++p) {
    const int64_t cols = std::min<int64_t>(kPanel, N - p * kPanel);
    for (int64_t k = 0; k < K; ++k) {
      const float* from = pw + k * N + p * kPanel;
      float* to = po + (p * K + k) * kPanel;
      if (cols == kPanel) {
        _mm256_storeu_ps(to, _mm256_loadu_ps(from));
        _mm256_storeu_ps(to + 8, _mm256_loadu_ps(from + 8));
      } else {
        for (int64_t j = 0; j < cols; ++j) to[j] = from[j];
      }
    }
  }
  return out;
}

bool panels_available() { return true; }

// Eight rows of eight floats transposed in registers: r[j] becomes lane j of every input row.
static inline void transpose_8x8(__m256* r) {
  __m256 t[8], s[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {
    s[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    s[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    s[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    s[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x31);
  }
}

// The same panels from a weight as a model holds it, (N, K) = (out, in). Whole panels move as
// 16 x 8 tiles transposed in registers (a scalar strided pass took a third of a millisecond for
// the organism's weights, paid by every decode and by every scoring product); the rest one
// float at a time.
Tensor pack_panels_of_rows(const Tensor& weight) {
  const Tensor w = weight.contiguous();
  const int64_t N = w.size(0), K = w.size(1), P = (N + kPanel - 1) / kPanel;
  Tensor out = at::empty({P, K, kPanel}, w.options());
  const float* pw = w.data_ptr<float>();
  float* po = out.data_ptr<float>();
  for (int64_t p = 0; p < P; ++p) {
    const int64_t n0 = p * kPanel, cols = std::min<int64_t>(kPanel, N - n0);
    float* panel = po + p * K * kPanel;
    int64_t k = 0;
    if (cols == kPanel)
      for (; k + 8 <= K; k += 8) {
        __m256 lo[8], hi[8];
        for (int i = 0; i < 8; ++i) {
          lo[i] = _mm256_loadu_ps(pw + (n0 + i) * K + k);
          hi[i] = _mm256_loadu_ps(pw + (n0 + 8 + i) * K + k);
        }
        transpose_8x8(lo);
        transpose_8x8(hi);
        for (int i = 0; i < 8; ++i) {
          _mm256_storeu_ps(panel + (k + i) * kPanel, lo[i]);
          _mm256_storeu_ps(panel + (k + i) * kPanel + 8, hi[i]);
        }
      }
    for (; k < K; ++k)
      for (int64_t j = 0; j < kPanel; ++j)
        panel[k * kPanel + j] = j < cols ? pw[(n0 + j) * K + k] : 0.f;
  }
  return out;
}

// c (R rows, `cols` <= 16 columns, row stride ldc) = (c +) a (R rows, stride lda) @ panel.
template <int R, bool ACCUMULATE>
static inline void panel_block(const float* a, int64_t lda, const float* panel, int64_t K,
                               float* c, int64_t ldc, int64_t cols) {
  __m256 lo[R], hi[R];
  _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) lo[r] = hi[r] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    const __m256 b0 = _mm256_loadu_ps(panel + k * kPanel), b1 = _mm256_loadu_ps(panel + k * kPanel + 8);
    _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) {
      const __m256 ar = _mm256_broadcast_ss(a + r * lda + k);
      lo[r] = _mm256_fmadd_ps(ar, b0, lo[r]);
      hi[r] = _mm256_fmadd_ps(ar, b1, hi[r]);
    }
  }
  if (cols == kPanel) {
    _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) {
      float* cr = c + r * ldc;
      if (ACCUMULATE) {
        lo[r] = _mm256_add_ps(_mm256_loadu_ps(cr), lo[r]);
        hi[r] = _mm256_add_ps(_mm256_loadu_ps(cr + 8), hi[r]);
      }
      _mm256_storeu_ps(cr, lo[r]);
      _mm256_storeu_ps(cr + 8, hi[r]);
    }
    return;
  }
  alignas(32) float tail[kPanel];  // the last panel's real columns only
  _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) {
    _mm256_store_ps(tail, lo[r]);
    _mm256_store_ps(tail + 8, hi[r]);
    float* cr = c + r * ldc;
    for (int64_t j = 0; j < cols; ++j) cr[j] = ACCUMULATE ? cr[j] + tail[j] : tail[j];
  }
}

// The same for a last panel of at most 8 real columns (the organism's 99-token head: 3 of 16),
// half the multiplications: the same in-order sum per output, so the same floats.
template <int R, bool ACCUMULATE>
static inline void panel_half(const float* a, int64_t lda, const float* panel, int64_t K,
                              float* c, int64_t ldc, int64_t cols) {
  __m256 lo[R];
  _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) lo[r] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    const __m256 b0 = _mm256_loadu_ps(panel + k * kPanel);
    _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r)
      lo[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(a + r * lda + k), b0, lo[r]);
  }
  alignas(32) float tail[8];
  _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) {
    _mm256_store_ps(tail, lo[r]);
    float* cr = c + r * ldc;
    for (int64_t j = 0; j < cols; ++j) cr[j] = ACCUMULATE ? cr[j] + tail[j] : tail[j];
  }
}

template <int R, bool ACCUMULATE>
static inline void any_block(const float* a, int64_t lda, const float* panel, int64_t K,
                             float* c, int64_t ldc, int64_t cols) {
  if (cols <= 8) panel_half<R, ACCUMULATE>(a, lda, panel, K, c, ldc, cols);
  else panel_block<R, ACCUMULATE>(a, lda, panel, K, c, ldc, cols);
}

// c (rows, N) = (c +) a (rows, K, its rows lda apart) @ the packed weight.
template <bool ACCUMULATE>
static void panel_rows(const float* a, int64_t lda, int64_t rows, int64_t K, const float* panels,
                       int64_t N, float* c) {
  const int64_t P = (N + kPanel - 1) / kPanel;
  for (int64_t i = 0; i < rows; i += 6) {
    const int64_t block = std::min<int64_t>(6, rows - i);
    for (int64_t p = 0; p < P; ++p) {
      const float* panel = panels + p * K * kPanel;
      float* cc = c + i * N + p * kPanel;
      const float* aa = a + i * lda;
      const int64_t cols = std::min<int64_t>(kPanel, N - p * kPanel);
      switch (block) {
        case 6: any_block<6, ACCUMULATE>(aa, lda, panel, K, cc, N, cols); break;
        case 5: any_block<5, ACCUMULATE>(aa, lda, panel, K, cc, N, cols); break;
        case 4: any_block<4, ACCUMULATE>(aa, lda, panel, K, cc, N, cols); break;
        case 3: any_block<3, ACCUMULATE>(aa, lda, panel, K, cc, N, cols); break;
        case 2: any_block<2, ACCUMULATE>(aa, lda, panel, K, cc, N, cols); break;
        default: any_block<1, ACCUMULATE>(aa, lda, panel, K, cc, N, cols); break;
      }
    }
  }
}

// out (rows, N) = (out +) x (rows, K) @ the packed weight; out contiguous, x's rows read in
// place where they lie further apart than its width (the scoring stack pads some: padded_rows).
static void panel_product(const Tensor& x, const Tensor& panels, int64_t N, bool accumulate,
                          Tensor& out) {
  TORCH_CHECK(panels.size(1) == x.size(1) && panels.size(0) * kPanel >= N,
              "the packed weight does not fit this product");
  const Tensor a = x.stride(1) == 1 && x.stride(0) >= x.size(1) ? x : x.contiguous();
  (accumulate ? panel_rows<true> : panel_rows<false>)(a.data_ptr<float>(), a.stride(0), a.size(0),
                                                      a.size(1), panels.data_ptr<float>(), N,
                                                      out.data_ptr<float>());
}

// x @ w^T (+ b), then + h when `h` is defined, for a weight as a model holds it (out, in),
// packed for this call: the scoring stack's products (rlvr.model.native_score), ~700 rows and
// more, where packing a weight costs a few hundredths of its product. The sums are added in
// at::addmm's order: b (or h) plus the product, then h plus that when both.
static Tensor panel_linear(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& h) {
  const int64_t n = w.size(0);
  Tensor out = b.numel() ? b.expand({x.size(0), n}).contiguous()
               : h.defined() ? h.clone() : at::empty({x.size(0), n}, x.options());
  panel_product(x, pack_panels_of_rows(w), n, h.defined() || b.numel() > 0, out);
  return h.defined() && b.numel() ? h + out : out;
}

// x @ w through its panels: the step's own products, for the benchmark's ceiling scan
// (benchmarks/roofline.py counts them beside F.linear).
Tensor panel_mm(const Tensor& x, const Tensor& panels, int64_t N) {
  Tensor out = at::empty({x.size(0), N}, x.options());
  panel_product(x, panels, N, false, out);
  return out;
}
#else
// Without AVX2 the step keeps at::mm: no panels.
bool panels_available() { return false; }
Tensor pack_panels_of_rows(const Tensor& w) { return at::empty({0}, w.options()); }
static Tensor panel_linear(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& h) {
  Tensor out = b.numel() ? at::addmm(b, x, w.t()) : at::mm(x, w.t());
  return h.defined() ? h + out : out;
}
Tensor pack_panels(const Tensor& wt) { return at::empty({0}, wt.options()); }
static void panel_product(const Tensor&, const Tensor&, int64_t, bool, Tensor&) {
  TORCH_CHECK(false, "panel products need AVX2");
}
Tensor panel_mm(const Tensor& x, const Tensor&, int64_t) {
  TORCH_CHECK(false, "panel products need AVX2");
  return x;
}
#endif
