// The C++ of rlvr.model.native_score: a Llama/Qwen2 decoder stack over packed tokens,
// forward and backward. Token i attends to the keys [0, prefix_end[i]) and [segment[i], i] of
// the packed sequence (a shared prompt once at the front, then each row's own tokens).
// Products go through native_gemm.h's panels (forward, input gradients), a kernel of their
// kind that reduces over tokens (weight gradients) or at::mm (everything without AVX2); norms,
// rotary, attention (tiles of up to 8 queries of one segment, each query's sums in a fixed
// order whatever its tile) and SwiGLU are loops in a fixed order (the same inputs give the
// same bits). The forward keeps per layer what the backward reads, the
// attention probabilities too while they are few (`kept_probs` floats a layer: the organism's
// ~70k); more (tokens x keys x heads of them) are recomputed there from the row log-sum-exp
// (the backward then spends a third of its attention time on the scores and their exps).
#include <torch/csrc/autograd/functions/basic_ops.h>

#include <cstring>
#include <limits>
#include <memory>

constexpr int64_t kMaxDim = 512;
constexpr int kSaved = 13;  // tensors kept per layer for the backward

// Sum and maximum in 8 lanes, as `dot`.
static inline float sum8(const float* a, int64_t n) {
  float lane[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) lane[l] += a[i + l];
  float total = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
  for (; i < n; ++i) total += a[i];
  return total;
}

static inline float max8(const float* a, int64_t n) {
  const float low = -std::numeric_limits<float>::infinity();
  float lane[8] = {low, low, low, low, low, low, low, low};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) lane[l] = std::max(lane[l], a[i + l]);
  float top = low;
  for (int l = 0; l < 8; ++l) top = std::max(top, lane[l]);
  for (; i < n; ++i) top = std::max(top, a[i]);
  return top;
}

struct Geometry {
  int64_t heads, kv_heads, dim, width;
  const int64_t* prefix_end;
  const int64_t* segment;
  const int64_t* position;  // each token's row of the rotary tables
};

// The RMS norm's backward: dx += d(norm)/dx · dy, dw += Σ_rows dy · x · inv.
static void rms_back(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& inv,
                     Tensor& dx, Tensor& dw) {
  const int64_t rows = x.size(0), n = x.size(1);
  const float* pdy = dy.data_ptr<float>();
  const float* px = x.data_ptr<float>();
  const float* pw = w.data_ptr<float>();
  const float* pi = inv.data_ptr<float>();
  float* pdx = dx.data_ptr<float>();
  float* pdw = dw.data_ptr<float>();
  std::vector<float> g(n);
  for (int64_t r = 0; r < rows; ++r) {
    const float* d = pdy + r * n;
    const float* xr = px + r * n;
    const float s = pi[r];
    for (int64_t i = 0; i < n; ++i) g[i] = d[i] * pw[i];
    const float c = s * s * s * dot(g.data(), xr, n) / n;
    float* out = pdx + r * n;
    for (int64_t i = 0; i < n; ++i) {
      out[i] += s * g[i] - xr[i] * c;
      pdw[i] += d[i] * (xr[i] * s);
    }
  }
}

// A weight as the rows of one or more matrices (out_i, in) one after another: the q/k/v or
// gate/up projections fused without a concatenation (the model's own tensors, read in place).
struct Rows {
  std::vector<Tensor> parts;      // contiguous, kept alive here
  std::vector<const float*> row;  // row r of the fused matrix
  int64_t in = 0;
  int64_t out() const { return (int64_t)row.size(); }
};

static Rows rows_of(std::initializer_list<Tensor> parts) {
  Rows w;
  for (const Tensor& t : parts) {
    w.parts.push_back(t.contiguous());
    w.in = t.size(1);
    const float* p = w.parts.back().data_ptr<float>();
    for (int64_t r = 0; r < t.size(0); ++r) w.row.push_back(p + r * w.in);
  }
  return w;
}

// The fused matrix as one tensor (the paths without AVX2 hand it to at::mm).
static Tensor joined(const Rows& w) {
  return w.parts.size() == 1 ? w.parts[0] : at::cat(w.parts);
}

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

// native_gemm.h's panels (P, K, 16) of wᵀ, from the rows of w (N, K) wherever they lie: 8 × 8
// blocks transposed in registers (a strided walk writes a new cache line per element), only the
// last panel's missing columns zero-filled.
static Tensor pack_rows(const Rows& w) {
  const int64_t N = w.out(), K = w.in, P = (N + kPanel - 1) / kPanel;
  Tensor out = at::empty({P, K, kPanel}, w.parts[0].options());
  float* po = out.data_ptr<float>();
  const std::vector<float> zeros(K, 0.f);
  for (int64_t j0 = 0; j0 < P * kPanel; j0 += 8) {
    const float* src[8];
    for (int l = 0; l < 8; ++l) src[l] = j0 + l < N ? w.row[j0 + l] : zeros.data();
    float* to = po + (j0 / kPanel) * K * kPanel + j0 % kPanel;
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) {
      __m256 r[8];
      for (int l = 0; l < 8; ++l) r[l] = _mm256_loadu_ps(src[l] + k);
      transpose_8x8(r);
      for (int l = 0; l < 8; ++l) _mm256_storeu_ps(to + (k + l) * kPanel, r[l]);
    }
    for (; k < K; ++k)
      for (int l = 0; l < 8; ++l) to[k * kPanel + l] = src[l][k];
  }
  return out;
}

// native_gemm.h's panels (P, K, 16) of w itself (K = its rows), for dy @ w: 16 columns of
// each row a panel row, only the last panel's missing columns zero-filled. (A product that
// reads w's 16-column strips in place matched the panels alone but lost inside the update,
// 2 of 24 alternating rounds: the packed panels stream in order while the activations pass.)
static Tensor pack_strips(const Rows& w) {
  const int64_t K = w.out(), N = w.in, P = (N + kPanel - 1) / kPanel;
  Tensor out = at::empty({P, K, kPanel}, w.parts[0].options());
  float* po = out.data_ptr<float>();
  // w read row by row, in order: strip by strip, each row of w gave one line per strip (the
  // weights come from L3 here; the packs of an update took ~40 % longer that way)
  for (int64_t k = 0; k < K; ++k)
    for (int64_t p = 0; p < P; ++p) {
      const int64_t cols = std::min<int64_t>(kPanel, N - p * kPanel);
      const float* from = w.row[k] + p * kPanel;
      float* to = po + (p * K + k) * kPanel;
      if (cols == kPanel) {
        _mm256_storeu_ps(to, _mm256_loadu_ps(from));
        _mm256_storeu_ps(to + 8, _mm256_loadu_ps(from + 8));
      } else {
        for (int64_t j = 0; j < kPanel; ++j) to[j] = j < cols ? from[j] : 0.f;
      }
    }
  return out;
}
#endif

// The row stride for an (N, n) operand that a weight gradient reads down its columns: n, or
// n + 16 where n is a multiple of 128 floats. Rows 512 bytes apart or a multiple of that fall
// in 1/8 or fewer of L1's 64 sets: the gate/up gradient's (2 KB apart on the organism, all
// 64 rows of a pass in 2 sets) and the SwiGLU output's (1 KB, 4 sets) missed L1 on every
// read of their weight gradients.
static int64_t padded_rows(int64_t n) {
  return n % 128 ? n : n + 16;
}

#if defined(__AVX2__) && defined(__FMA__)
// Lanes [0, n) of 8 set (n may be <= 0 or >= 8).
static inline __m256i lanes(int64_t n) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const int64_t set = std::max<int64_t>(0, std::min<int64_t>(n, 8));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)set), idx);
}

// c (R rows of stride ldc, `cols` <= 16 columns) (+)= Σ_n dy[n·ldy + r] · x[n·ldx, 0:cols] over
// n < N in order: R broadcasts from a row of dy and two vectors of the same row of x per n,
// both read where they lie, twelve accumulators as in native_gemm.h's panel block.
template <int R, bool FULL>
static inline void wgrad_block(const float* dy, int64_t ldy, const float* x, int64_t ldx,
                               int64_t N, float* c, int64_t ldc, int64_t cols, bool add) {
  const __m256i m0 = lanes(cols), m1 = lanes(cols - 8);
  __m256 lo[R], hi[R];
  _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) lo[r] = hi[r] = _mm256_setzero_ps();
  for (int64_t n = 0; n < N; ++n) {
    const float* xn = x + n * ldx;
    const __m256 b0 = FULL ? _mm256_loadu_ps(xn) : _mm256_maskload_ps(xn, m0);
    const __m256 b1 = FULL ? _mm256_loadu_ps(xn + 8) : _mm256_maskload_ps(xn + 8, m1);
    _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) {
      const __m256 a = _mm256_broadcast_ss(dy + n * ldy + r);
      lo[r] = _mm256_fmadd_ps(a, b0, lo[r]);
      hi[r] = _mm256_fmadd_ps(a, b1, hi[r]);
    }
  }
  // (full columns without masks: the masks would take two of the sixteen registers)
  _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) {
    float* cr = c + r * ldc;
    if (FULL) {
      if (add) {
        lo[r] = _mm256_add_ps(_mm256_loadu_ps(cr), lo[r]);
        hi[r] = _mm256_add_ps(_mm256_loadu_ps(cr + 8), hi[r]);
      }
      _mm256_storeu_ps(cr, lo[r]);
      _mm256_storeu_ps(cr + 8, hi[r]);
      continue;
    }
    if (add) {
      lo[r] = _mm256_add_ps(_mm256_maskload_ps(cr, m0), lo[r]);
      hi[r] = _mm256_add_ps(_mm256_maskload_ps(cr + 8, m1), hi[r]);
    }
    _mm256_maskstore_ps(cr, m0, lo[r]);
    _mm256_maskstore_ps(cr + 8, m1, hi[r]);
  }
}

template <int R>
static void wgrad_rows(const float* dy, int64_t ldy, const float* x, int64_t ldx, int64_t N,
                       float* c, int64_t ldc, int64_t cols, bool add) {
  if (cols == 16) wgrad_block<R, true>(dy, ldy, x, ldx, N, c, ldc, cols, add);
  else wgrad_block<R, false>(dy, ldy, x, ldx, N, c, ldc, cols, add);
}

constexpr int64_t kGradRows = 64;  // tokens a pass of the weight gradient reduces

// dy (N, O)ᵀ · x (N, I) → (O, I), the weight gradient of x @ wᵀ, both operands read in place,
// kGradRows tokens at a time (their rows of dy and x stay in L1/L2 while every 6 × 16 block of
// the gradient passes): 89-93 GFLOP/s alone at the organism's q/k/v, o and gate/up shapes
// against MKL's 77-90, which copies both operands first. Each element is the sum of its
// chunks' in-order sums, in chunk order.
static Tensor grad_weight_panels(const Tensor& dy_in, const Tensor& x_in) {
  // dy's and x's rows may lie further apart than their width (`padded_rows`)
  const Tensor dy = dy_in.stride(1) == 1 ? dy_in : dy_in.contiguous();
  const Tensor x = x_in.stride(1) == 1 ? x_in : x_in.contiguous();
  const int64_t N = dy.size(0), O = dy.size(1), I = x.size(1), ldy = dy.stride(0);
  const int64_t ldx = x.stride(0);
  Tensor out = at::empty({O, I}, dy.options());  // the first pass stores every element
  const float* pd = dy.data_ptr<float>();
  const float* px = x.data_ptr<float>();
  float* pc = out.data_ptr<float>();
  for (int64_t n0 = 0; n0 < N; n0 += kGradRows) {
    const int64_t n = std::min(kGradRows, N - n0);
    for (int64_t o = 0; o < O; o += 6)
      for (int64_t i = 0; i < I; i += 16) {
        const float* a = pd + n0 * ldy + o;
        const float* b = px + n0 * ldx + i;
        float* c = pc + o * I + i;
        const int64_t cols = std::min<int64_t>(16, I - i);
        switch (std::min<int64_t>(6, O - o)) {
          case 6: wgrad_rows<6>(a, ldy, b, ldx, n, c, I, cols, n0 > 0); break;
          case 5: wgrad_rows<5>(a, ldy, b, ldx, n, c, I, cols, n0 > 0); break;
          case 4: wgrad_rows<4>(a, ldy, b, ldx, n, c, I, cols, n0 > 0); break;
          case 3: wgrad_rows<3>(a, ldy, b, ldx, n, c, I, cols, n0 > 0); break;
          case 2: wgrad_rows<2>(a, ldy, b, ldx, n, c, I, cols, n0 > 0); break;
          default: wgrad_rows<1>(a, ldy, b, ldx, n, c, I, cols, n0 > 0); break;
        }
      }
  }
  return out;
}
#endif

// dyᵀ · x, the weight gradient of x @ wᵀ as the model holds w (out, in). (The down
// projection's, 256 inputs wide, lost to MKL while its SwiGLU output's rows lay 1 KB apart;
// with them `padded_rows` apart it wins.)
static Tensor grad_weight(const Tensor& dy, const Tensor& x) {
#if defined(__AVX2__) && defined(__FMA__)
  return grad_weight_panels(dy, x);
#else
  return at::mm(dy.t(), x);
#endif
}

// h + x @ w^T (+ b) (h undefined: without it), the sums in at::addmm's order: b (or h) plus
// the product, then h plus that when both; through native_gemm.h's panels where there are any.
static Tensor linear_rows(const Tensor& x, const Rows& w, const Tensor& b, const Tensor& h) {
#if defined(__AVX2__) && defined(__FMA__)
  const int64_t n = w.out();
  Tensor out = b.numel() ? b.expand({x.size(0), n}).contiguous()
               : h.defined() ? h.clone() : at::empty({x.size(0), n}, x.options());
  panel_product(x, pack_rows(w), n, h.defined() || b.numel() > 0, out);
  return h.defined() && b.numel() ? h + out : out;
#else
  return panel_linear(x, joined(w), b, h);
#endif
}

// dy @ w, the input gradient of x @ w^T for a weight as the model holds it (out, in), which
// is input-major for this product.
static Tensor grad_input(const Tensor& dy, const Rows& w) {
#if defined(__AVX2__) && defined(__FMA__)
  TORCH_CHECK(dy.size(1) == w.out(), "grad_input: the gradient does not fit the weight");
  Tensor out = at::empty({dy.size(0), w.in}, dy.options());
  panel_product(dy, pack_strips(w), w.in, false, out);
  return out;
#else
  return at::mm(dy, joined(w));
#endif
}

// Rotary embedding of the q and k heads of each row in place: x * cos + flip_halves(x) * sin,
// cos and sin the tables (positions, dim) read at each token's position; `back` applies the
// transpose (the backward).
static void rotate(Tensor& qkv, const Tensor& cos, const Tensor& sin, const Geometry& g,
                   bool back) {
  const int64_t N = qkv.size(0), D = g.dim, half = D / 2;
  float* p = qkv.data_ptr<float>();
  const float* pc = cos.data_ptr<float>();
  const float* ps = sin.data_ptr<float>();
  for (int64_t r = 0; r < N; ++r) {
    const float* c = pc + g.position[r] * D;
    const float* s = ps + g.position[r] * D;
    // the sin of the partner half: the same half in the forward, the other in the backward
    const float* s_lo = back ? s + half : s;
    const float* s_hi = back ? s : s + half;
    for (int64_t head = 0; head < g.heads + g.kv_heads; ++head) {
      float* __restrict__ lo = p + r * g.width + head * D;
      float* __restrict__ hi = lo + half;
      for (int64_t o = 0; o < half; ++o) {
        const float a = lo[o], b = hi[o];
        lo[o] = a * c[o] + b * s_lo[o];
        hi[o] = b * c[half + o] + a * s_hi[o];
      }
    }
  }
}

// exp(x) for x <= 88 in plain arithmetic (Cody-Waite reduction, Cephes' degree-5
// polynomial, about 1 ulp), so that loops over it vectorise. Below -86 it is 0: a subnormal
// result would cost a hundred cycles in every product it enters.
static inline float vexp(float in) {
  const float x = std::min(std::max(in, -86.f), 88.f);
  const float n = (x * 1.44269504f + 12582912.f) - 12582912.f;  // round to nearest
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  const int32_t bits = ((int32_t)n + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return in < -86.f ? 0.f : p * scale;
}

// The two key ranges of token i: [0, prefix_end) and [segment, i].
template <typename F>
static inline void for_keys(const Geometry& g, int64_t i, F fn) {
  int64_t k = 0;
  for (int64_t j = 0; j < g.prefix_end[i]; ++j) fn(j, k++);
  for (int64_t j = g.segment[i]; j <= i; ++j) fn(j, k++);
}

static inline int64_t key_count(const Geometry& g, int64_t i) {
  return g.prefix_end[i] + i - g.segment[i] + 1;
}

static inline int64_t round8(int64_t n) { return (n + 7) & ~int64_t{7}; }

// A head's dot product and y += w·x. With AVX2 + FMA and head_dim a multiple of 8 (24, 32,
// 64, 128, ...) they are a few vector instructions: a loop whose trip count is known at
// compile time gets unrolled into scalar code that the compiler re-vectorises poorly.
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
static inline float head_dot(const float* a, const float* b, int64_t n) {
  if (n & 7) return dot(a, b, n);
  __m256 acc = _mm256_mul_ps(_mm256_loadu_ps(a), _mm256_loadu_ps(b));
  for (int64_t e = 8; e < n; e += 8)
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + e), _mm256_loadu_ps(b + e), acc);
  __m128 lo = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}
static inline void head_axpy(float w, const float* x, float* y, int64_t n) {
  if (n & 7) { for (int64_t e = 0; e < n; ++e) y[e] += w * x[e]; return; }
  const __m256 wv = _mm256_set1_ps(w);
  for (int64_t e = 0; e < n; e += 8)
    _mm256_storeu_ps(y + e, _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + e), _mm256_loadu_ps(y + e)));
}
#else
static inline float head_dot(const float* a, const float* b, int64_t n) { return dot(a, b, n); }
static inline void head_axpy(float w, const float* x, float* y, int64_t n) {
  for (int64_t e = 0; e < n; ++e) y[e] += w * x[e];
}
#endif

// out_r = Σ_k w_r[k] · x(key k) for the queries r of a tile [i0, i1) (w_r = w + r·ldw,
// out_r = out + r·os) over the key list of its last query, x(key j) = base + j·W. A row's
// weights past its own keys must be zeros: each row then sums its own keys in order (plus
// exact zeros), whatever the tile. Where head_dim is 8-32, R rows share each key's loads and
// their sums stay in registers (one key at a time per row would chain every multiply-add on
// the one before).
#if defined(__AVX2__) && defined(__FMA__)
template <int C, int R>
static inline void rows_sum(const float* w, int64_t ldw, int64_t pe, int64_t seg, int64_t n,
                            const float* base, int64_t W, float* out, int64_t os) {
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  auto add = [&](int64_t j, int64_t k) {
    __m256 x[C];
    for (int c = 0; c < C; ++c) x[c] = _mm256_loadu_ps(base + j * W + 8 * c);
    for (int r = 0; r < R; ++r) {
      const __m256 wv = _mm256_broadcast_ss(w + r * ldw + k);
      for (int c = 0; c < C; ++c) acc[r][c] = _mm256_fmadd_ps(wv, x[c], acc[r][c]);
    }
  };
  for (int64_t k = 0; k < pe; ++k) add(k, k);
  for (int64_t k = pe; k < n; ++k) add(seg + k - pe, k);
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) _mm256_storeu_ps(out + r * os + 8 * c, acc[r][c]);
}

// rows_sum over a tile's rows, R at a time (R · C accumulators fit the 16 registers).
template <int C, int R>
static void tile_rows_sum(const Geometry& g, int64_t i0, int64_t i1, const float* w,
                          int64_t ldw, const float* base, int64_t W, float* out, int64_t os) {
  const int64_t pe = g.prefix_end[i0], seg = g.segment[i0];
  int64_t a = i0;
  for (; a + R <= i1; a += R)
    rows_sum<C, R>(w + (a - i0) * ldw, ldw, pe, seg, key_count(g, a + R - 1), base, W,
                   out + (a - i0) * os, os);
  for (; a < i1; ++a)
    rows_sum<C, 1>(w + (a - i0) * ldw, ldw, pe, seg, key_count(g, a), base, W,
                   out + (a - i0) * os, os);
}
#endif

static void tile_sums(const Geometry& g, int64_t i0, int64_t i1, const float* w, int64_t ldw,
                      const float* base, int64_t W, float* out, int64_t os) {
  const int64_t D = g.dim;
#if defined(__AVX2__) && defined(__FMA__)
  switch (D) {
    case 8: return tile_rows_sum<1, 8>(g, i0, i1, w, ldw, base, W, out, os);
    case 16: return tile_rows_sum<2, 4>(g, i0, i1, w, ldw, base, W, out, os);
    case 24: return tile_rows_sum<3, 4>(g, i0, i1, w, ldw, base, W, out, os);
    case 32: return tile_rows_sum<4, 2>(g, i0, i1, w, ldw, base, W, out, os);
    default: break;
  }
#endif
  for (int64_t i = i0; i < i1; ++i) {
    float* o = out + (i - i0) * os;
    const float* wr = w + (i - i0) * ldw;
    std::fill(o, o + D, 0.f);
    for_keys(g, i, [&](int64_t j, int64_t k) { head_axpy(wr[k], base + j * W, o, D); });
  }
}


// Scores against keys kept transposed: per K/V head a (D, N + 8) block (`transpose_heads`),
// so that 8 consecutive keys are the 8 lanes of one vector: a query's scores need no
// horizontal sum, and up to 8 queries share each load of the keys. The 8 zero columns past
// N let a vector run past the last key.
static std::unique_ptr<float[]> transpose_heads(const float* p, int64_t N, int64_t W,
                                                 int64_t col, const Geometry& g) {
  const int64_t E = g.kv_heads * g.dim, ld = N + 8;
  std::unique_ptr<float[]> t(new float[E * ld]);  // not zeroed: all but the pad is written
  for (int64_t e = 0; e < E; ++e) std::fill(t.get() + e * ld + N, t.get() + (e + 1) * ld, 0.f);
  int64_t j0 = 0, e0 = 0;
#if defined(__AVX2__) && defined(__FMA__)
  // 8 × 8 blocks through registers: a strided walk would touch a new cache line per element
  for (; j0 + 8 <= N; j0 += 8)
    for (e0 = 0; e0 + 8 <= E; e0 += 8) {
      __m256 r[8];
      for (int l = 0; l < 8; ++l) r[l] = _mm256_loadu_ps(p + (j0 + l) * W + col + e0);
      transpose_8x8(r);
      for (int l = 0; l < 8; ++l) _mm256_storeu_ps(t.get() + (e0 + l) * ld + j0, r[l]);
    }
#endif
  for (int64_t j = 0; j < N; ++j)  // what the blocks left: the last rows, the last columns
    for (int64_t e = j < j0 ? e0 : 0; e < E; ++e) t[e * ld + j] = p[j * W + col + e];
  return t;
}

// s[r·lds + c] = scale · Σ_d x_r[d] · kt[d·ldk + from + c] for rows r < R (x_r = x + r·xs)
// and c < count, rounded up to 8: the overhang lands in s past the run (overwritten or
// ignored by the callers). Each row sums over d in order, whatever R: a query's scores do not
// depend on the tile it is computed in.
template <int R>
static void run_scores(const float* x, int64_t xs, const float* kt, int64_t ldk, int64_t D,
                       int64_t from, int64_t count, float scale, float* s, int64_t lds) {
#if defined(__AVX2__) && defined(__FMA__)
  const __m256 sv = _mm256_set1_ps(scale);
  for (int64_t c = 0; c < count; c += 8) {
    __m256 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
    const float* col = kt + from + c;
    for (int64_t d = 0; d < D; ++d) {
      const __m256 k = _mm256_loadu_ps(col + d * ldk);
      for (int r = 0; r < R; ++r)
        acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(x + r * xs + d), k, acc[r]);
    }
    for (int r = 0; r < R; ++r) _mm256_storeu_ps(s + r * lds + c, _mm256_mul_ps(acc[r], sv));
  }
#else
  for (int64_t c = 0; c < count; c += 8) {
    float acc[R][8] = {};
    const float* col = kt + from + c;
    for (int64_t d = 0; d < D; ++d)
      for (int r = 0; r < R; ++r)
        for (int l = 0; l < 8; ++l) acc[r][l] += x[r * xs + d] * col[d * ldk + l];
    for (int r = 0; r < R; ++r)
      for (int l = 0; l < 8; ++l) s[r * lds + c + l] = acc[r][l] * scale;
  }
#endif
}

constexpr int kRows = 8;  // queries whose scores are computed together

static void scores_of_run(int rows, const float* x, int64_t xs, const float* kt, int64_t ldk,
                          int64_t D, int64_t from, int64_t count, float scale, float* s,
                          int64_t lds) {
  switch (rows) {
    case 1: return run_scores<1>(x, xs, kt, ldk, D, from, count, scale, s, lds);
    case 2: return run_scores<2>(x, xs, kt, ldk, D, from, count, scale, s, lds);
    case 3: return run_scores<3>(x, xs, kt, ldk, D, from, count, scale, s, lds);
    case 4: return run_scores<4>(x, xs, kt, ldk, D, from, count, scale, s, lds);
    case 5: return run_scores<5>(x, xs, kt, ldk, D, from, count, scale, s, lds);
    case 6: return run_scores<6>(x, xs, kt, ldk, D, from, count, scale, s, lds);
    case 7: return run_scores<7>(x, xs, kt, ldk, D, from, count, scale, s, lds);
    default: return run_scores<kRows>(x, xs, kt, ldk, D, from, count, scale, s, lds);
  }
}

// The scores of the queries [i0, i1) (one segment, ≤ kRows of them; row r is query i0 + r,
// x its head's vector) over the key list of the last: the prompt's keys, then its own. Query
// i's keys are the first key_count(g, i) of that list.
static void tile_scores(const Geometry& g, int64_t i0, int64_t i1, const float* x, int64_t xs,
                        const float* kt, int64_t ldk, float scale, float* s, int64_t lds) {
  const int rows = (int)(i1 - i0);
  const int64_t pe = g.prefix_end[i0], seg = g.segment[i0];
  if (pe) scores_of_run(rows, x, xs, kt, ldk, g.dim, 0, pe, scale, s, lds);
  // its chunks of 8 start at pe and cover the prompt run's overhang
  scores_of_run(rows, x, xs, kt, ldk, g.dim, seg, i1 - seg, scale, s + pe, lds);
}

// The end of the tile of consecutive queries from i0 with the same key ranges, ≤ most long.
static int64_t tile_end(const Geometry& g, int64_t i0, int64_t N, int64_t most) {
  int64_t i1 = i0 + 1;
  while (i1 < N && i1 - i0 < most && g.segment[i1] == g.segment[i0] &&
         g.prefix_end[i1] == g.prefix_end[i0])
    ++i1;
  return i1;
}

// Where each query's probabilities start in a layer's kept ones: query i's of head h are
// [h·total + at[i], + key_count(i)), total = at[N].
static std::vector<int64_t> prob_offsets(const Geometry& g, int64_t N) {
  std::vector<int64_t> at(N + 1, 0);
  for (int64_t i = 0; i < N; ++i) at[i + 1] = at[i] + key_count(g, i);
  return at;
}

// Softmax attention of every query row over its keys: out (N, H*D), lse (N, H); each query's
// probabilities also into `kept` at `offsets` (`prob_offsets`) when it is not empty.
static void attend(const Tensor& qkv, const Geometry& g, const std::vector<int64_t>& offsets,
                   Tensor& out, Tensor& lse, Tensor& kept) {
  const int64_t N = qkv.size(0), D = g.dim, W = g.width, group = g.heads / g.kv_heads;
  const int64_t ld = N + 8;
  const float scale = 1.f / std::sqrt((float)D);
  const float* p = qkv.data_ptr<float>();
  float* po = out.data_ptr<float>();
  float* pl = lse.data_ptr<float>();
  const std::unique_ptr<float[]> kt = transpose_heads(p, N, W, g.heads * D, g);
  std::vector<float> score(kRows * ld);
  float* pk = kept.numel() ? kept.data_ptr<float>() : nullptr;
  for (int64_t i0 = 0, i1; i0 < N; i0 = i1) {
    i1 = tile_end(g, i0, N, kRows);
    for (int64_t hq = 0; hq < g.heads; ++hq) {
      const float* values = p + (g.heads + g.kv_heads + hq / group) * D;
      tile_scores(g, i0, i1, p + i0 * W + hq * D, W, kt.get() + (hq / group) * D * ld, ld,
                  scale, score.data(), ld);
      const int64_t most = key_count(g, i1 - 1);
      for (int64_t i = i0; i < i1; ++i) {
        float* s = score.data() + (i - i0) * ld;
        const int64_t n = key_count(g, i);
        const float top = max8(s, n);
        // whole vectors (the scores run past n): no scalar tail of exps
        for (int64_t k = 0; k < round8(n); ++k) s[k] = vexp(s[k] - top);
        const float sum = sum8(s, n), norm = 1.f / sum;
        for (int64_t k = 0; k < n; ++k) s[k] *= norm;
        std::fill(s + n, s + most, 0.f);
        pl[i * g.heads + hq] = top + std::log(sum);
        if (pk) std::copy(s, s + n, pk + hq * offsets[N] + offsets[i]);
      }
      tile_sums(g, i0, i1, score.data(), ld, values, W, po + i0 * g.heads * D + hq * D,
                g.heads * D);
    }
  }
}

// Σ over a tile's queries ii ∈ [from, rows) of a[ii·ld] · x(ii) and b[ii·ld] · y(ii), added
// to the key's rows dk and dv: the key's gradient summed in registers where head_dim is 8-32,
// one read-modify-write per key and tile instead of one per query and key.
#if defined(__AVX2__) && defined(__FMA__)
template <int C>
static inline void key_sums(const float* a, const float* b, int64_t ld, int64_t from,
                            int64_t rows, const float* x, int64_t xs, const float* y, int64_t ys,
                            float* dk, float* dv) {
  __m256 ak[C], av[C];
  for (int c = 0; c < C; ++c) ak[c] = av[c] = _mm256_setzero_ps();
  for (int64_t ii = from; ii < rows; ++ii) {
    const __m256 wa = _mm256_set1_ps(a[ii * ld]), wb = _mm256_set1_ps(b[ii * ld]);
    for (int c = 0; c < C; ++c) {
      ak[c] = _mm256_fmadd_ps(wa, _mm256_loadu_ps(x + ii * xs + 8 * c), ak[c]);
      av[c] = _mm256_fmadd_ps(wb, _mm256_loadu_ps(y + ii * ys + 8 * c), av[c]);
    }
  }
  for (int c = 0; c < C; ++c) {
    _mm256_storeu_ps(dk + 8 * c, _mm256_add_ps(_mm256_loadu_ps(dk + 8 * c), ak[c]));
    _mm256_storeu_ps(dv + 8 * c, _mm256_add_ps(_mm256_loadu_ps(dv + 8 * c), av[c]));
  }
}
#endif

static inline void key_grads(const float* a, const float* b, int64_t ld, int64_t from,
                             int64_t rows, const float* x, int64_t xs, const float* y,
                             int64_t ys, int64_t D, float* dk, float* dv) {
#if defined(__AVX2__) && defined(__FMA__)
  switch (D) {
    case 8: return key_sums<1>(a, b, ld, from, rows, x, xs, y, ys, dk, dv);
    case 16: return key_sums<2>(a, b, ld, from, rows, x, xs, y, ys, dk, dv);
    case 24: return key_sums<3>(a, b, ld, from, rows, x, xs, y, ys, dk, dv);
    case 32: return key_sums<4>(a, b, ld, from, rows, x, xs, y, ys, dk, dv);
    default: break;
  }
#endif
  for (int64_t ii = from; ii < rows; ++ii) {
    head_axpy(a[ii * ld], x + ii * xs, dk, D);
    head_axpy(b[ii * ld], y + ii * ys, dv, D);
  }
}

constexpr int64_t kTile = 32;  // queries whose key gradients are summed together

// The attention's backward into dqkv (N, W), its k and v columns zero on entry: d(rotated q,
// k) and dv. Queries go in tiles of consecutive tokens with the same key ranges: each query's
// probabilities and score gradients are kept for the tile, then every key's dk and dv are
// summed over the tile.
static void attend_back(const Tensor& dout, const Tensor& qkv, const Tensor& out,
                        const Tensor& lse, const Tensor& kept, const Geometry& g,
                        Tensor& dqkv) {
  const int64_t N = qkv.size(0), D = g.dim, W = g.width, group = g.heads / g.kv_heads;
  const int64_t HD = g.heads * D;
  const float scale = 1.f / std::sqrt((float)D);
  const float* p = qkv.data_ptr<float>();
  const float* pdo = dout.data_ptr<float>();
  const float* po = out.data_ptr<float>();
  const float* pl = lse.data_ptr<float>();
  float* pd = dqkv.data_ptr<float>();
  const int64_t ld = N + 8;
  const float* pk = kept.numel() ? kept.data_ptr<float>() : nullptr;
  const std::vector<int64_t> offsets = prob_offsets(g, N);
  const std::unique_ptr<float[]> kt = pk ? nullptr : transpose_heads(p, N, W, g.heads * D, g);
  const std::unique_ptr<float[]> vt = transpose_heads(p, N, W, (g.heads + g.kv_heads) * D, g);
  std::vector<float> prob(kTile * ld), dprob(kTile * ld);
  for (int64_t i0 = 0, i1; i0 < N; i0 = i1) {
    i1 = tile_end(g, i0, N, kTile);
    const int64_t pe = g.prefix_end[i0], seg = g.segment[i0], rows = i1 - i0;
    for (int64_t hq = 0; hq < g.heads; ++hq) {
      const int64_t kv = hq / group;
      const int64_t kcol = (g.heads + kv) * D, vcol = (g.heads + g.kv_heads + kv) * D;
      for (int64_t a = i0; a < i1; a += kRows) {
        const int64_t b = std::min(a + kRows, i1);
        if (!pk)
          tile_scores(g, a, b, p + a * W + hq * D, W, kt.get() + kv * D * ld, ld, scale,
                      prob.data() + (a - i0) * ld, ld);
        tile_scores(g, a, b, pdo + a * HD + hq * D, HD, vt.get() + kv * D * ld, ld, 1.f,
                    dprob.data() + (a - i0) * ld, ld);
      }
      const int64_t most = key_count(g, i1 - 1);
      for (int64_t i = i0; i < i1; ++i) {
        float* pr = prob.data() + (i - i0) * ld;
        float* dp = dprob.data() + (i - i0) * ld;
        const float* d = pdo + i * HD + hq * D;
        const float total = head_dot(d, po + i * HD + hq * D, D);
        const float top = pl[i * g.heads + hq];
        const int64_t n = key_count(g, i), whole = round8(n);
        if (pk) {  // the forward's, zeros past them for the vector tail below
          std::copy(pk + hq * offsets[N] + offsets[i], pk + hq * offsets[N] + offsets[i] + n, pr);
          std::fill(pr + n, pr + whole, 0.f);
        } else {
          for (int64_t k = 0; k < whole; ++k) pr[k] = vexp(pr[k] - top);
        }
        for (int64_t k = 0; k < whole; ++k) dp[k] = pr[k] * (dp[k] - total) * scale;
        std::fill(dp + n, dp + std::max(most, whole), 0.f);
      }
      tile_sums(g, i0, i1, dprob.data(), ld, p + kcol, W, pd + i0 * W + hq * D, W);  // dq
      // key k of the tile's queries: the prompt's keys [0, pe) for all of them, then
      // j = seg + (k - pe) for the queries at or after j
      const int64_t keys = key_count(g, i1 - 1);
      for (int64_t k = 0; k < keys; ++k) {
        const int64_t j = k < pe ? k : seg + (k - pe);
        const int64_t from = k < pe ? 0 : std::max<int64_t>(0, j - i0);
        key_grads(dprob.data() + k, prob.data() + k, ld, from, rows, p + i0 * W + hq * D, W,
                  pdo + i0 * HD + hq * D, HD, D, pd + j * W + kcol, pd + j * W + vcol);
      }
    }
  }
}

static Geometry geometry(const Tensor& positions, const Tensor& prefix_end,
                         const Tensor& segment, int64_t heads, int64_t kv_heads, int64_t dim) {
  TORCH_CHECK(dim <= kMaxDim && dim % 2 == 0, "head_dim must be even and at most ", kMaxDim);
  return {heads, kv_heads, dim, (heads + 2 * kv_heads) * dim, prefix_end.data_ptr<int64_t>(),
          segment.data_ptr<int64_t>(), positions.data_ptr<int64_t>()};
}

// One decoder layer's weights (an absent bias an empty tensor), the q/k/v and gate/up
// products each as one fused matrix.
struct Layer {
  Tensor norm1, qkv_b, o_b, norm2, gu_b, down_b;
  Rows qkv, o, gu, down;
};

static std::vector<Tensor> run_forward(const Tensor& h0, const Tensor& cos, const Tensor& sin,
                                       const Geometry& g, const std::vector<Layer>& layers,
                                       const std::vector<double>& eps, bool save,
                                       int64_t kept_probs) {
  const int64_t N = h0.size(0), heads = g.heads, dim = g.dim;
  std::vector<Tensor> kept(1);
  Tensor h = h0;
  for (size_t i = 0; i < eps.size(); ++i) {
    const Layer& L = layers[i];
    Tensor inv1, inv2;
    Tensor x1 = rms(h, L.norm1, eps[i], &inv1);
    Tensor qkv = linear_rows(x1, L.qkv, L.qkv_b, Tensor());
    rotate(qkv, cos, sin, g, false);
    Tensor out = at::empty({N, heads * dim}, h.options());
    Tensor lse = at::empty({N, heads}, h.options());
    const std::vector<int64_t> offsets = prob_offsets(g, N);
    const int64_t probs = g.heads * offsets[N];
    Tensor kept_p = at::empty({save && probs <= kept_probs ? probs : 0}, h.options());
    attend(qkv, g, offsets, out, lse, kept_p);
    Tensor mid = linear_rows(out, L.o, L.o_b, h);
    Tensor x2 = rms(mid, L.norm2, eps[i], &inv2);
    Tensor gu = linear_rows(x2, L.gu, L.gu_b, Tensor());
    const int64_t I = gu.size(1) / 2;
    Tensor sig = at::empty({N, I}, h.options());
    // read down its columns by the down projection's weight gradient
    const int64_t lda = padded_rows(I);
    Tensor act = at::empty({N, lda}, h.options()).narrow(1, 0, I);
    const float* pg = gu.data_ptr<float>();
    float* ps = sig.data_ptr<float>();
    float* pa = act.data_ptr<float>();
    for (int64_t r = 0; r < N; ++r)
      for (int64_t k = 0; k < I; ++k) {
        const float gate = pg[r * 2 * I + k], s = 1.f / (1.f + vexp(-gate));
        ps[r * I + k] = s;
        pa[r * lda + k] = gate * s * pg[r * 2 * I + I + k];
      }
    Tensor next = linear_rows(act, L.down, L.down_b, mid);
    if (save)
      for (const Tensor& t : {h, inv1, x1, qkv, out, lse, mid, inv2, x2, gu, sig, act, kept_p})
        kept.push_back(t);
    h = next;
  }
  kept[0] = h;
  return kept;
}

static Tensor bias_grad(const Tensor& dy, const Tensor& b) {
  return b.numel() ? dy.sum(0) : at::empty({0}, dy.options());
}

// The gradients of `run_forward`'s output: [d h0, then per layer the ten gradients of a
// layer's [norm1, qkv_w, qkv_b, o_w, o_b, norm2, gate_up_w, gate_up_b, down_w, down_b]]
// (empty where the bias is absent).
static std::vector<Tensor> backward(const Tensor& grad, const std::vector<Tensor>& saved,
                                    const Tensor& cos, const Tensor& sin, const Geometry& g,
                                    const std::vector<Layer>& layers) {
  const int64_t heads = g.heads, dim = g.dim;
  const size_t count = saved.size() / kSaved;
  std::vector<Tensor> grads(1 + 10 * count);
  Tensor dh = grad.contiguous().clone();
  const int64_t N = dh.size(0);
  for (size_t i = count; i-- > 0;) {
    const Layer& L = layers[i];
    const Tensor* S = &saved[i * kSaved];
    const Tensor &h = S[0], &inv1 = S[1], &x1 = S[2], &qkv = S[3], &out = S[4], &lse = S[5],
                 &mid = S[6], &inv2 = S[7], &x2 = S[8], &gu = S[9], &sig = S[10], &act = S[11],
                 &probs = S[12];
    Tensor* G = &grads[1 + i * 10];
    G[8] = grad_weight(dh, act);
    G[9] = bias_grad(dh, L.down_b);
    Tensor dact = grad_input(dh, L.down);
    const int64_t I = act.size(1);
    const int64_t ldg = padded_rows(2 * I);
    Tensor dgu = at::empty({N, ldg}, dh.options()).narrow(1, 0, 2 * I);
    const float* pd = dact.data_ptr<float>();
    const float* pg = gu.data_ptr<float>();
    const float* ps = sig.data_ptr<float>();
    float* pdg = dgu.data_ptr<float>();
    for (int64_t r = 0; r < N; ++r)
      for (int64_t k = 0; k < I; ++k) {
        const float gate = pg[r * 2 * I + k], up = pg[r * 2 * I + I + k], s = ps[r * I + k];
        const float d = pd[r * I + k];
        pdg[r * ldg + k] = d * up * (s * (1.f + gate * (1.f - s)));
        pdg[r * ldg + I + k] = d * (gate * s);
      }
    // dguᵀ·x2 reduced over the tokens, dgu read in place with its rows `padded_rows` apart
    G[6] = grad_weight(dgu, x2);
    G[7] = bias_grad(dgu, L.gu_b);
    G[5] = at::zeros_like(L.norm2);
    rms_back(grad_input(dgu, L.gu), mid, L.norm2, inv2, dh, G[5]);
    G[3] = grad_weight(dh, out);
    G[4] = bias_grad(dh, L.o_b);
    Tensor dout = grad_input(dh, L.o);
    // attend_back stores every dq whole and sums into dk, dv: only their columns start at 0
    Tensor dqkv = at::empty_like(qkv);
    float* pdq = dqkv.data_ptr<float>();
    for (int64_t r = 0, W = qkv.size(1), HD = heads * dim; r < N; ++r)
      std::fill(pdq + r * W + HD, pdq + (r + 1) * W, 0.f);
    attend_back(dout, qkv, out, lse, probs, g, dqkv);
    rotate(dqkv, cos, sin, g, true);
    G[1] = grad_weight(dqkv, x1);
    G[2] = bias_grad(dqkv, L.qkv_b);
    G[0] = at::zeros_like(L.norm1);
    rms_back(grad_input(dqkv, L.qkv), h, L.norm1, inv1, dh, G[0]);
  }
  grads[0] = dh;
  return grads;
}

// A model's own parameters, per layer [norm1, q, k, v, q_b, k_b, v_b, o, o_b, norm2, gate,
// up, gate_b, up_b, down, down_b] (an absent bias empty), fused here into `run_forward`'s ten.
constexpr size_t kParams = 16;

// The fused bias of n products: their biases one after another, zeros for an absent one;
// empty when all are absent.
static Tensor cat_bias(const Tensor* w, const Tensor* b, int n) {
  if (std::all_of(b, b + n, [](const Tensor& t) { return t.numel() == 0; })) return b[0];
  std::vector<Tensor> parts;
  for (int i = 0; i < n; ++i)
    parts.push_back(b[i].numel() ? b[i] : at::zeros({w[i].size(0)}, w[i].options()));
  return at::cat(parts);
}

static std::vector<Layer> model_layers(const std::vector<Tensor>& p) {
  std::vector<Layer> out;
  for (size_t i = 0; i + kParams <= p.size(); i += kParams) {
    const Tensor* P = &p[i];
    out.push_back({P[0].contiguous(), cat_bias(P + 1, P + 4, 3), P[8], P[9].contiguous(),
                   cat_bias(P + 10, P + 12, 2), P[15], rows_of({P[1], P[2], P[3]}),
                   rows_of({P[7]}), rows_of({P[10], P[11]}), rows_of({P[14]})});
  }
  return out;
}

// `run_forward` from the embedding and the model's own parameters (q/k/v and gate/up each read
// as one matrix where they lie: no concatenation). Returns [h_out, then when `save` the kept
// tensors, which `backward_model` reads].
std::vector<Tensor> forward_model(const Tensor& ids, const Tensor& embed, const Tensor& cos,
                                  const Tensor& sin, const Tensor& positions,
                                  const Tensor& prefix_end, const Tensor& segment,
                                  const std::vector<Tensor>& params, const std::vector<double>& eps,
                                  int64_t heads, int64_t kv_heads, int64_t dim, bool save,
                                  int64_t kept_probs) {
  return run_forward(embed.index_select(0, ids), cos, sin,
                     geometry(positions, prefix_end, segment, heads, kv_heads, dim),
                     model_layers(params), eps, save, kept_probs);
}

// The embedding's gradient: the packed tokens' rows summed into their ids' rows, in token
// order (the order of at::index_add_, so the same sums; its scatter costs ~50 us here).
static Tensor embed_grad(const Tensor& dh, const Tensor& ids, int64_t vocab) {
  const int64_t N = dh.size(0), E = dh.size(1);
  Tensor out = at::zeros({vocab, E}, dh.options());
  const Tensor d = dh.contiguous();
  const float* pd = d.data_ptr<float>();
  const int64_t* pi = ids.data_ptr<int64_t>();
  float* po = out.data_ptr<float>();
  for (int64_t n = 0; n < N; ++n) {
    float* row = po + pi[n] * E;
    for (int64_t e = 0; e < E; ++e) row[e] += pd[n * E + e];
  }
  return out;
}

// The gradients of `forward_model`: [d embed, then per layer one per parameter of `params`'
// order, undefined (None) for an absent bias]; those of fused products are views of rows of
// the fused gradient, as autograd accumulates them without a copy.
std::vector<Tensor> backward_model(const Tensor& grad, const std::vector<Tensor>& kept,
                                   const Tensor& ids, int64_t vocab, const Tensor& cos,
                                   const Tensor& sin, const Tensor& positions,
                                   const Tensor& prefix_end, const Tensor& segment,
                                   const std::vector<Tensor>& params, int64_t heads,
                                   int64_t kv_heads, int64_t dim) {
  const size_t count = params.size() / kParams;
  const std::vector<Tensor> saved(kept.begin(), kept.begin() + kSaved * count);
  const std::vector<Tensor> g =
      backward(grad, saved, cos, sin, geometry(positions, prefix_end, segment, heads, kv_heads, dim),
               model_layers(params));
  std::vector<Tensor> out{embed_grad(g[0], ids, vocab)};
  auto rows = [&](const Tensor& fused, const Tensor* P, int n, bool bias) {
    for (int64_t i = 0, at = 0; i < n; ++i) {
      const int64_t size = P[i].size(0);
      const bool has = !bias || P[n + i].numel();
      out.push_back(has ? fused.narrow(0, at, size) : Tensor());
      at += size;
    }
  };
  for (size_t l = 0; l < count; ++l) {
    const Tensor* G = &g[1 + 10 * l];
    const Tensor* P = &params[kParams * l];
    out.push_back(G[0]);
    rows(G[1], P + 1, 3, false);
    rows(G[2], P + 1, 3, true);
    out.push_back(G[3]);
    out.push_back(P[8].numel() ? G[4] : Tensor());
    out.push_back(G[5]);
    rows(G[6], P + 10, 2, false);
    rows(G[7], P + 10, 2, true);
    out.push_back(G[8]);
    out.push_back(P[15].numel() ? G[9] : Tensor());
  }
  return out;
}

// Logits (and their softmax) at most this large are kept from the forward for the backward
// (the organism's ~400 tokens × 99); larger ones (a 150k vocabulary) are recomputed a chunk at
// a time instead, so that only one chunk's exist at once.
constexpr int64_t kKeptLogits = 1 << 20;

// One row of logits zr (V) divided by t in place: [top, sum of exp(z − top)] with those exps in e.
static inline std::pair<float, float> row_softmax(float* zr, float* e, int64_t V, float t) {
  if (t != 1.f)  // (a division by 1 changes nothing)
    for (int64_t v = 0; v < V; ++v) zr[v] /= t;
  const float top = max8(zr, V);
  for (int64_t v = 0; v < V; ++v) e[v] = vexp(zr[v] - top);
  return {top, sum8(e, V)};
}

// The scored tokens' log-probabilities and entropies: x = rms(h) (the final norm), z = (x W^T
// + b) / temperature, log p(token) = z_token − lse(z), H = lse(z) − Σ p·z. Rows go `chunk` at a
// time (each chunk's logits exist only while it is worked on; the backward recomputes them),
// unless they are small (kKeptLogits): then z and p are kept for the backward.
// Returns [logp, entropy (empty when not asked), x, inv, z, p (empty when not kept)].
std::vector<Tensor> head_stats(const Tensor& h, const Tensor& norm, double eps, const Tensor& w,
                               const Tensor& b, const Tensor& tokens, double temperature,
                               bool entropy, int64_t chunk) {
  Tensor inv;
  Tensor x = rms(h, norm, eps, &inv);
  const int64_t M = h.size(0), V = w.size(0);
  const bool keep = M * V <= kKeptLogits;
  if (keep) chunk = std::max<int64_t>(M, 1);
  Tensor logp = at::empty({M}, h.options());
  Tensor ent = at::empty({entropy ? M : 0}, h.options());
  Tensor z, probs = at::empty({keep ? M : 0, V}, h.options());
  float* pl = logp.data_ptr<float>();
  float* pe = entropy ? ent.data_ptr<float>() : nullptr;
  const int64_t* tok = tokens.data_ptr<int64_t>();
  const float t = (float)temperature;
  std::vector<float> scratch(V);
  for (int64_t r0 = 0; r0 < M; r0 += chunk) {
    const int64_t rows = std::min(chunk, M - r0);
    // kept: one small product, through the panels (MKL copies both operands of it first)
    z = keep ? linear_rows(x, rows_of({w}), b, Tensor()) : linear(x.narrow(0, r0, rows), w, b);
    float* pz = z.data_ptr<float>();
    for (int64_t r = 0; r < rows; ++r) {
      float* zr = pz + r * V;
      float* e = keep ? probs.data_ptr<float>() + (r0 + r) * V : scratch.data();
      const auto [top, sum] = row_softmax(zr, e, V, t);
      const float lse = top + std::log(sum);
      pl[r0 + r] = zr[tok[r0 + r]] - lse;
      if (pe) pe[r0 + r] = lse - dot(e, zr, V) / sum;
      if (keep) {  // the backward's probabilities, as it would compute them
        const float norm_p = 1.f / sum;
        for (int64_t v = 0; v < V; ++v) e[v] *= norm_p;
      }
    }
  }
  if (!keep) z = at::empty({0, V}, h.options());
  return {logp, ent, x, inv, z, probs};
}

// d logits of one row in place of its logits zr (divided by t), from its probabilities p.
static inline void row_grad(float* zr, const float* p, int64_t V, float t, int64_t token,
                            float gl, float ge, bool with_entropy) {
  const float mean = with_entropy ? dot(p, zr, V) : 0.f;
  for (int64_t v = 0; v < V; ++v) zr[v] = (-gl * p[v] - ge * p[v] * (zr[v] - mean)) / t;
  zr[token] += gl / t;
}

// The gradients of `head_stats` for d logp, d entropy (empty: none): [dh, d norm, dW, db].
// z, p: what the forward kept (empty: recompute them a chunk at a time).
std::vector<Tensor> head_stats_back(const Tensor& h, const Tensor& x, const Tensor& inv,
                                    const Tensor& norm, const Tensor& w, const Tensor& b,
                                    const Tensor& tokens, double temperature,
                                    const Tensor& dlogp, const Tensor& dent, int64_t chunk,
                                    const Tensor& kept_z, const Tensor& kept_p) {
  const int64_t M = h.size(0), V = w.size(0);
  const int64_t* tok = tokens.data_ptr<int64_t>();
  const float t = (float)temperature;
  const float* pdl = dlogp.numel() ? dlogp.data_ptr<float>() : nullptr;
  const float* pde = dent.numel() ? dent.data_ptr<float>() : nullptr;
  const bool kept = kept_z.numel() > 0;
  if (kept) chunk = std::max<int64_t>(M, 1);
  Tensor dx = at::empty_like(x);
  Tensor dw = kept ? Tensor() : at::zeros_like(w);
  Tensor db = b.numel() ? at::zeros_like(b) : at::empty({0}, h.options());
  std::vector<float> scratch(V);
  for (int64_t r0 = 0; r0 < M; r0 += chunk) {
    const int64_t rows = std::min(chunk, M - r0);
    Tensor xs = x.narrow(0, r0, rows);
    Tensor z = kept ? kept_z : linear(xs, w, b);  // becomes d logits (the kept z is used once)
    float* pz = z.data_ptr<float>();
    for (int64_t r = 0; r < rows; ++r) {
      float* zr = pz + r * V;
      const float* p = kept ? kept_p.data_ptr<float>() + (r0 + r) * V : scratch.data();
      if (!kept) {
        const auto [top, sum] = row_softmax(zr, scratch.data(), V, t);
        const float norm_p = 1.f / sum;
        for (int64_t v = 0; v < V; ++v) scratch[v] *= norm_p;
      }
      row_grad(zr, p, V, t, tok[r0 + r], pdl ? pdl[r0 + r] : 0.f, pde ? pde[r0 + r] : 0.f,
               pde != nullptr);
    }
    if (kept) {  // one small chunk: the panels' products, as in the forward
      dx = grad_input(z, rows_of({w}));
      dw = grad_weight(z, xs);
    } else {
      dx.narrow(0, r0, rows).copy_(at::mm(z, w));
      dw.addmm_(z.t(), xs);
    }
    if (b.numel()) db.add_(z.sum(0));
  }
  Tensor dh = at::zeros_like(h);
  Tensor dnorm = at::zeros_like(norm);
  rms_back(dx, h, norm, inv, dh, dnorm);
  return {dh, dnorm, dw, db};
}

// `head_stats` of the real positions of (B, T) tables straight from the packed states h (N, E):
// index (B, T) the packed row of the state that predicts each token, real (B, T) bool, tokens
// (B, T). The gather before and the scatter after are here instead of three autograd nodes.
// Returns [logp (B, T), entropy (B, T) or empty, zero at pads; then what
// `scored_stats_back` reads: the gathered states, x, inv, z, p, tokens, slots, rows].
std::vector<Tensor> scored_stats(const Tensor& h, const Tensor& index, const Tensor& real,
                                 const Tensor& tokens, const Tensor& norm, double eps,
                                 const Tensor& w, const Tensor& b, double temperature,
                                 bool entropy, int64_t chunk) {
  const Tensor is_real = real.contiguous().to(at::kBool), idx = index.contiguous();
  const Tensor tok_in = tokens.contiguous().to(at::kLong);
  const int64_t cells = is_real.numel(), E = h.size(1);
  const bool* pr = is_real.data_ptr<bool>();
  const int64_t M = std::count(pr, pr + cells, true);
  const auto longs = tok_in.options();
  Tensor slots = at::empty({M}, longs), rows = at::empty({M}, longs), toks = at::empty({M}, longs);
  Tensor hs = at::empty({M, E}, h.options());
  const float* ph = h.data_ptr<float>();
  float* phs = hs.data_ptr<float>();
  const int64_t *pi = idx.data_ptr<int64_t>(), *pt = tok_in.data_ptr<int64_t>();
  int64_t *ps = slots.data_ptr<int64_t>(), *pw = rows.data_ptr<int64_t>();
  int64_t* pk = toks.data_ptr<int64_t>();
  for (int64_t c = 0, m = 0; c < cells; ++c) {
    if (!pr[c]) continue;
    ps[m] = c;
    pw[m] = pi[c];
    pk[m] = pt[c];
    std::copy(ph + pi[c] * E, ph + (pi[c] + 1) * E, phs + m++ * E);
  }
  std::vector<Tensor> r = head_stats(hs, norm, eps, w, b, toks, temperature, entropy, chunk);
  auto place = [&](const Tensor& values) {  // (M,) → (B, T), zero at pads
    Tensor out = at::zeros(real.sizes(), h.options());
    float* po = out.data_ptr<float>();
    const float* pv = values.data_ptr<float>();
    const int64_t* ps = slots.data_ptr<int64_t>();
    for (int64_t m = 0; m < M; ++m) po[ps[m]] = pv[m];
    return out;
  };
  return {place(r[0]), entropy ? place(r[1]) : r[1], hs, r[2], r[3], r[4], r[5], toks, slots,
          rows};
}

// The gradients of `scored_stats` for d logp, d entropy (B, T) (empty: none), from what it
// kept: [dh (N, E), d norm, dW, db].
std::vector<Tensor> scored_stats_back(const std::vector<Tensor>& kept, int64_t states,
                                      const Tensor& norm, const Tensor& w, const Tensor& b,
                                      double temperature, const Tensor& dlogp,
                                      const Tensor& dent, int64_t chunk) {
  const Tensor &hs = kept[0], &x = kept[1], &inv = kept[2], &z = kept[3], &p = kept[4],
               &toks = kept[5], &slots = kept[6], &rows = kept[7];
  const int64_t M = hs.size(0), E = hs.size(1);
  auto at_slots = [&](const Tensor& d) {  // (B, T) → (M,)
    if (!d.numel()) return d;
    const Tensor in = d.contiguous();
    Tensor out = at::empty({M}, hs.options());
    const float* pi = in.data_ptr<float>();
    float* po = out.data_ptr<float>();
    const int64_t* ps = slots.data_ptr<int64_t>();
    for (int64_t m = 0; m < M; ++m) po[m] = pi[ps[m]];
    return out;
  };
  std::vector<Tensor> r = head_stats_back(hs, x, inv, norm, w, b, toks, temperature,
                                          at_slots(dlogp), at_slots(dent), chunk, z, p);
  Tensor dh = at::zeros({states, E}, hs.options());
  float* pd = dh.data_ptr<float>();
  const float* pg = r[0].data_ptr<float>();
  const int64_t* pw = rows.data_ptr<int64_t>();
  for (int64_t m = 0; m < M; ++m) {  // a state may predict several rows' tokens: summed
    float* row = pd + pw[m] * E;
    for (int64_t e = 0; e < E; ++e) row[e] += pg[m * E + e];
  }
  r[0] = dh;
  return r;
}

// Each column's count of real columns before it in its row, 0 before the first: the positions
// `(real.cumsum(-1) - 1).clamp(min=0)` of rows numbered by their real tokens.
static Tensor counted_positions(const bool* pr, int64_t B, int64_t S, at::TensorOptions longs) {
  Tensor out = at::empty({B, S}, longs);
  int64_t* po = out.data_ptr<int64_t>();
  for (int64_t r = 0; r < B; ++r)
    for (int64_t c = 0, seen = 0; c < S; ++c) {
      seen += pr[r * S + c];
      po[r * S + c] = std::max<int64_t>(seen - 1, 0);
    }
  return out;
}

// `rlvr.model.native_score.pack` in one pass: [ids, positions, prefix_end, segment, index]
// of the real tokens of rows (B, S) whose first `shared` columns every row shares (-1: the
// columns found alike in every row). No `positions`: `counted_positions`.
std::vector<Tensor> pack(const Tensor& input_ids, const Tensor& real,
                         const std::optional<Tensor>& positions, int64_t shared) {
  const Tensor ids_in = input_ids.contiguous().to(at::kLong);
  const int64_t B = ids_in.size(0), S = ids_in.size(1);
  // a long mask (an attention mask) read as bools here: a .to(kBool) copy costs ~20 us
  std::unique_ptr<bool[]> from_long;
  Tensor real_in = real.contiguous();
  if (real_in.scalar_type() == at::kLong) {
    from_long.reset(new bool[B * S]);
    const int64_t* pm = real_in.data_ptr<int64_t>();
    for (int64_t k = 0; k < B * S; ++k) from_long[k] = pm[k] != 0;
  } else {
    real_in = real_in.to(at::kBool);
  }
  const bool* pr = from_long ? from_long.get() : real_in.data_ptr<bool>();
  const Tensor pos_in = positions.has_value()
                            ? positions->contiguous().to(at::kLong)
                            : counted_positions(pr, B, S, ids_in.options());
  const int64_t* pi = ids_in.data_ptr<int64_t>();
  const int64_t* pp = pos_in.data_ptr<int64_t>();
  if (shared < 0) {  // as many leading columns as every row has alike (id, mask, position)
    shared = 0;
    for (bool same = B > 1; same && shared < S; shared += same)
      for (int64_t r = 1; r < B && same; ++r) {
        const int64_t k = r * S + shared;
        same = pi[k] == pi[shared] && pr[k] == pr[shared] && pp[k] == pp[shared];
      }
  }
  int64_t total = 0;
  for (int64_t c = 0; c < shared; ++c) total += pr[c];
  const int64_t prompt = total;
  for (int64_t r = 0; r < B; ++r)
    for (int64_t c = shared; c < S; ++c) total += pr[r * S + c];
  const auto opt = ids_in.options();
  Tensor ids = at::empty({total}, opt), pos = at::empty({total}, opt);
  Tensor prefix_end = at::empty({total}, opt), segment = at::empty({total}, opt);
  Tensor index = at::empty({B, S}, opt);
  int64_t* oi = ids.data_ptr<int64_t>();
  int64_t* op = pos.data_ptr<int64_t>();
  int64_t* oe = prefix_end.data_ptr<int64_t>();
  int64_t* os = segment.data_ptr<int64_t>();
  int64_t* ox = index.data_ptr<int64_t>();
  int64_t n = 0;
  for (int64_t c = 0; c < shared; ++c) {
    const int64_t at = pr[c] ? n : total;
    if (pr[c]) { oi[n] = pi[c]; op[n] = pp[c]; oe[n] = 0; os[n] = 0; ++n; }
    for (int64_t r = 0; r < B; ++r) ox[r * S + c] = at;
  }
  for (int64_t r = 0; r < B; ++r) {
    const int64_t start = n;
    for (int64_t c = shared; c < S; ++c) {
      const int64_t k = r * S + c;
      if (!pr[k]) { ox[k] = total; continue; }
      oi[n] = pi[k]; op[n] = pp[k]; oe[n] = prompt; os[n] = start; ox[k] = n++;
    }
  }
  return {ids, pos, prefix_end, segment, index};
}

// The autograd nodes of rlvr.model.native_score (`stack_node`, `scored_node`), here rather than
// as Python `torch.autograd.Function`s: a Python node converts its ~40 parameters to and from
// Python objects in the forward and again in the backward (~0.3 ms of the organism's 16 ms
// update). The engine still accumulates every parameter's gradient (hooks, accumulation into
// `.grad`, parameters with `requires_grad=False` as ever).
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Python's @once_differentiable: gradients computed under `create_graph` come out behind a
// node that raises if they are differentiated again (the kernels are not differentiable).
static variable_list once_differentiable(variable_list out, const variable_list& grad) {
  if (!at::GradMode::is_enabled() ||
      std::none_of(grad.begin(), grad.end(), [](const Tensor& t) { return t.requires_grad(); }))
    return out;
  for (Tensor& t : out)
    if (t.defined()) t = t.detach().requires_grad_(true);
  return torch::autograd::DelayedError(
             "trying to differentiate twice a function that was marked with @once_differentiable",
             (int64_t)out.size())
      .apply(std::move(out));
}

// Each node frees what it kept in its backward (the activations are most of the memory):
// a second backward through the same graph, retain_graph or not, is refused.
constexpr const char* kOnce =
    "the C++ scoring graph was already backpropagated (it frees its activations then; "
    "score again for a second backward)";

// The embedding and decoder layers over packed tokens, `params` = [embedding, then per layer
// `forward_model`'s 16] (an absent bias an empty tensor): h (N, E).
struct StackNode : public torch::autograd::Function<StackNode> {
  static Tensor forward(AutogradContext* ctx, const Tensor& ids, const Tensor& cos,
                        const Tensor& sin, const Tensor& positions, const Tensor& prefix_end,
                        const Tensor& segment, at::TensorList params, std::vector<double> eps,
                        int64_t heads, int64_t kv_heads, int64_t dim, int64_t kept_probs) {
    const std::vector<Tensor> layers(params.begin() + 1, params.end());
    std::vector<Tensor> out = forward_model(ids, params[0], cos, sin, positions, prefix_end,
                                            segment, layers, eps, heads, kv_heads, dim, true,
                                            kept_probs);
    auto& d = ctx->saved_data;
    d["kept"] = std::vector<Tensor>(out.begin() + 1, out.end());
    d["layers"] = layers;
    d["packed"] = std::vector<Tensor>{ids, cos, sin, positions, prefix_end, segment};
    d["shape"] = std::vector<int64_t>{params[0].size(0), heads, kv_heads, dim};
    return out[0];
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    auto& d = ctx->saved_data;
    TORCH_CHECK(d.count("kept"), kOnce);
    const std::vector<Tensor> p = d["packed"].toTensorVector();
    const std::vector<int64_t> s = d["shape"].toIntVector();
    std::vector<Tensor> grads;
    {
      at::NoGradGuard plain;  // under create_graph too: no graph through the kernels' ops
      grads = backward_model(grad[0].contiguous(), d["kept"].toTensorVector(), p[0], s[0], p[1],
                             p[2], p[3], p[4], p[5], d["layers"].toTensorVector(), s[1], s[2],
                             s[3]);
    }
    d.erase("kept");  // the activations go now, not when the graph is freed
    grads = once_differentiable(std::move(grads), grad);
    variable_list out(6);  // the packed tensors and rotary tables: no gradient
    out.insert(out.end(), grads.begin(), grads.end());
    out.resize(out.size() + 5);  // eps, heads, kv_heads, dim, kept_probs
    return out;
  }
};

Tensor stack_node(const Tensor& ids, const Tensor& cos, const Tensor& sin,
                  const Tensor& positions, const Tensor& prefix_end, const Tensor& segment,
                  const std::vector<Tensor>& params, const std::vector<double>& eps,
                  int64_t heads, int64_t kv_heads, int64_t dim, int64_t kept_probs) {
  return StackNode::apply(ids, cos, sin, positions, prefix_end, segment, at::TensorList(params),
                          eps, heads, kv_heads, dim, kept_probs);
}

// `scored_stats` as a node: [logp, entropy (empty when not asked)] of the states h, the final
// norm's weight, the output layer's weight and bias (None: absent).
struct ScoredNode : public torch::autograd::Function<ScoredNode> {
  static variable_list forward(AutogradContext* ctx, const Tensor& h, const Tensor& norm,
                               const Tensor& w, const std::optional<Tensor>& bias,
                               const Tensor& index, const Tensor& real, const Tensor& tokens,
                               double eps, double temperature, bool entropy, int64_t chunk) {
    const Tensor b = bias.has_value() ? *bias : w.new_empty({0});
    std::vector<Tensor> out = scored_stats(h, index, real, tokens, norm, eps, w, b, temperature,
                                           entropy, chunk);
    auto& d = ctx->saved_data;
    d["kept"] = std::vector<Tensor>(out.begin() + 2, out.end());
    d["weights"] = std::vector<Tensor>{norm, w, b};
    d["states"] = h.size(0);
    d["temperature"] = temperature;
    d["chunk"] = chunk;
    d["bias"] = bias.has_value();
    return {out[0], out[1]};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    auto& d = ctx->saved_data;
    TORCH_CHECK(d.count("kept"), kOnce);
    const std::vector<Tensor> w = d["weights"].toTensorVector();
    std::vector<Tensor> g;
    {
      at::NoGradGuard plain;
      g = scored_stats_back(d["kept"].toTensorVector(), d["states"].toInt(), w[0], w[1], w[2],
                            d["temperature"].toDouble(), grad[0], grad[1], d["chunk"].toInt());
    }
    d.erase("kept");
    if (!d["bias"].toBool()) g[3] = Tensor();
    g = once_differentiable(std::move(g), grad);
    g.resize(11);  // index, real, tokens, eps, temperature, entropy, chunk: no gradient
    return g;
  }
};

std::vector<Tensor> scored_node(const Tensor& h, const Tensor& norm, const Tensor& w,
                                const std::optional<Tensor>& bias, const Tensor& index,
                                const Tensor& real, const Tensor& tokens, double eps,
                                double temperature, bool entropy, int64_t chunk) {
  return ScoredNode::apply(h, norm, w, bias, index, real, tokens, eps, temperature, entropy,
                           chunk);
}
