// The decode step and the sampler of rlvr.model.native_step (built by rlvr.model.cpp_build,
// after native_common.h).

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

static inline float lane_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_hadd_ps(s, s);
  return _mm_cvtss_f32(_mm_hadd_ps(s, s));
}

// e^x in 8 lanes within ~2 ulp: x = n ln2 + r with |r| <= ln2/2 (ln2 split in two so that r
// keeps its low bits), e^r by its Taylor series to r^7 (the next term is < 2^-27 of e^r),
// times 2^n built in the exponent field. Below the smallest normal float the result is 0, so
// a masked key (-inf) weighs exactly nothing, as in the eager softmax.
static inline __m256 exp8(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.3f), hi = _mm256_set1_ps(88.7f);
  const __m256 keep = _mm256_cmp_ps(x, lo, _CMP_GE_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187045e-6f), r);
  __m256 p = _mm256_set1_ps(1.f / 5040);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 720));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  const __m256i scale = _mm256_slli_epi32(
      _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(scale)), keep);
}

// Eight cached floats: a cache holds fp32, or fp16 (`step`'s `kv`), which F16C widens as it
// loads (exactly: every fp16 is a float).
static inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
static inline __m256 load8(const at::Half* p) {
#if defined(__F16C__)
  return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p));
#else
  float wide[8];
  for (int l = 0; l < 8; ++l) wide[l] = p[l];
  return _mm256_loadu_ps(wide);
#endif
}

// sc[p] = (q . keys[p]) * scale + mask[p] for p < n, a head of NV × 8 dims; returns their
// maximum. Four keys at a time: four independent FMA chains, their sums transposed together
// by hadd (one horizontal reduction per four keys instead of one per key).
template <int NV, class C>
static float score_keys(const float* q, const C* keys, const float* mask, int64_t n,
                        float scale, float* sc) {
  constexpr int64_t dim = NV * 8;
  __m256 qv[NV];
  for (int j = 0; j < NV; ++j) qv[j] = _mm256_loadu_ps(q + 8 * j);
  __m128 top4 = _mm_set1_ps(-INFINITY);
  int64_t p = 0;
  for (; p + 4 <= n; p += 4) {
    const C* k = keys + p * dim;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int j = 0; j < NV; ++j) {
      a0 = _mm256_fmadd_ps(qv[j], load8(k + 8 * j), a0);
      a1 = _mm256_fmadd_ps(qv[j], load8(k + dim + 8 * j), a1);
      a2 = _mm256_fmadd_ps(qv[j], load8(k + 2 * dim + 8 * j), a2);
      a3 = _mm256_fmadd_ps(qv[j], load8(k + 3 * dim + 8 * j), a3);
    }
    __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    __m128 dots = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    const __m128 four = _mm_add_ps(_mm_mul_ps(dots, _mm_set1_ps(scale)), _mm_loadu_ps(mask + p));
    _mm_storeu_ps(sc + p, four);
    top4 = _mm_max_ps(top4, four);
  }
  top4 = _mm_max_ps(top4, _mm_movehl_ps(top4, top4));
  float top = _mm_cvtss_f32(_mm_max_ss(top4, _mm_shuffle_ps(top4, top4, 1)));
  for (; p < n; ++p) {
    __m256 a = _mm256_setzero_ps();
    for (int j = 0; j < NV; ++j)
      a = _mm256_fmadd_ps(qv[j], load8(keys + p * dim + 8 * j), a);
    sc[p] = lane_sum(a) * scale + mask[p];
    top = std::max(top, sc[p]);
  }
  return top;
}

// out = (sum_p w[p] * values[p]) * norm, even and odd keys in two sets of NV accumulators
// (two FMA chains per lane instead of one).
template <int NV, class C>
static void mix_values(const float* w, const C* values, int64_t n, float norm, float* out) {
  constexpr int64_t dim = NV * 8;
  __m256 even[NV], odd[NV];
  for (int j = 0; j < NV; ++j) even[j] = odd[j] = _mm256_setzero_ps();
  int64_t p = 0;
  for (; p + 2 <= n; p += 2) {
    const __m256 w0 = _mm256_set1_ps(w[p]), w1 = _mm256_set1_ps(w[p + 1]);
    for (int j = 0; j < NV; ++j) {
      even[j] = _mm256_fmadd_ps(w0, load8(values + p * dim + 8 * j), even[j]);
      odd[j] = _mm256_fmadd_ps(w1, load8(values + (p + 1) * dim + 8 * j), odd[j]);
    }
  }
  if (p < n)
    for (int j = 0; j < NV; ++j)
      even[j] = _mm256_fmadd_ps(_mm256_set1_ps(w[p]), load8(values + p * dim + 8 * j), even[j]);
  for (int j = 0; j < NV; ++j)
    _mm256_storeu_ps(out + 8 * j, _mm256_mul_ps(_mm256_add_ps(even[j], odd[j]),
                                                _mm256_set1_ps(norm)));
}

// sc[p] = e^(sc[p] - top); returns their sum. `sc` has room for n rounded up to 8: the lanes
// past n are set to -inf, so e^x runs in vector lanes only (they weigh 0 and are never read).
static float exp_shifted(float* sc, int64_t n, float top) {
  for (int64_t p = n; p % 8; ++p) sc[p] = -INFINITY;
  n = (n + 7) / 8 * 8;
  const __m256 shift = _mm256_set1_ps(top);
  __m256 total = _mm256_setzero_ps();
  for (int64_t p = 0; p < n; p += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(sc + p), shift));
    _mm256_storeu_ps(sc + p, e);
    total = _mm256_add_ps(total, e);
  }
  return lane_sum(total);
}

// out[i] = silu(g[i]) * u[i] = g / (1 + e^-g) * u, as the eager step computes it.
static void silu_mul(const float* g, const float* u, int64_t n, float* out) {
  const __m256 one = _mm256_set1_ps(1.f), zero = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(g + i);
    const __m256 e = exp8(_mm256_sub_ps(zero, x));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_div_ps(x, _mm256_add_ps(one, e)),
                                            _mm256_loadu_ps(u + i)));
  }
  for (; i < n; ++i) out[i] = g[i] / (1.f + std::exp(-g[i])) * u[i];
}

template <class C>
using ScoreFn = float (*)(const float*, const C*, const float*, int64_t, float, float*);
template <class C>
using MixFn = void (*)(const float*, const C*, int64_t, float, float*);

template <int NV, class C>
static void pick(int64_t dim, ScoreFn<C>* score, MixFn<C>* mix) {
  if constexpr (NV > 0) {
    if (dim == NV * 8) { *score = score_keys<NV, C>; *mix = mix_values<NV, C>; return; }
    pick<NV - 1, C>(dim, score, mix);
  }
}
#endif

// The vector kernels for a head of `dim` dims over a cache of C, or nulls (the portable loops
// of `attend`) when dim is not a multiple of 8 up to 256 or the CPU lacks AVX2.
template <class C>
struct Kernels {
#if defined(__AVX2__) && defined(__FMA__)
  ScoreFn<C> score = nullptr;
  MixFn<C> mix = nullptr;
  explicit Kernels(int64_t dim) { pick<32, C>(dim, &score, &mix); }
#else
  explicit Kernels(int64_t) {}
#endif
};

// One query head against its n cached keys: out = softmax(q k^T * scale + mask) v, with the
// n scores in `sc` (scratch).
template <class C>
static void attend(const Kernels<C>& kern, const float* q, const C* keys, const C* values,
                   const float* mask, int64_t n, int64_t dim, float scale, float* sc,
                   float* out) {
#if defined(__AVX2__) && defined(__FMA__)
  if (kern.score) {
    const float top = kern.score(q, keys, mask, n, scale, sc);
    kern.mix(sc, values, n, 1.f / exp_shifted(sc, n, top), out);
    return;
  }
#endif
  float top = -INFINITY, sum = 0.f;
  for (int64_t p = 0; p < n; ++p) top = std::max(top, sc[p] = dot(q, keys + p * dim, dim) * scale + mask[p]);
  for (int64_t p = 0; p < n; ++p) sum += (sc[p] = std::exp(sc[p] - top));
  std::fill(out, out + dim, 0.f);
  for (int64_t p = 0; p < n; ++p)
    for (int64_t d = 0; d < dim; ++d) out[d] += sc[p] * (float)values[p * dim + d];
  for (int64_t d = 0; d < dim; ++d) out[d] /= sum;
}

// A head's floats: a few vector moves, not a call to memmove (the step copies 1,024 value
// heads of 24 floats per token at 64 rows, a prefill ~25,000).
static inline void copy_head(const float* from, int64_t n, float* to) {
  int64_t i = 0;
#if defined(__AVX2__) && defined(__FMA__)
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(to + i, _mm256_loadu_ps(from + i));
#endif
  for (; i < n; ++i) to[i] = from[i];
}

// Into an fp16 cache: each float rounded to the nearest fp16, ties to even (as torch's
// float-to-half copy rounds, so the eager prefill writes the same bits).
static inline void copy_head(const float* from, int64_t n, at::Half* to) {
  int64_t i = 0;
#if defined(__AVX2__) && defined(__F16C__)
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128((__m128i*)(to + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(from + i), _MM_FROUND_TO_NEAREST_INT));
#endif
  for (; i < n; ++i) to[i] = at::Half(from[i]);
}

// Rotary embedding of `n` consecutive heads of `dim` dims at `x`: to = x * cos + (x with each
// head's halves swapped) * sin, as the eager step's addcmul (the product by cos rounded, then
// the other added by one FMA). The swapped heads are built in `swapped` (n * dim floats), so
// that the arithmetic runs on whole vectors; the caller has checked dim % 8 == 0.
#if !defined(__AVX2__) || !defined(__FMA__)
static inline void rotate_heads(const float*, const float*, const float*, int64_t, int64_t,
                                float*, float*) {}
#else
static inline void rotate_heads(const float* x, const float* cos, const float* sin, int64_t n,
                                int64_t dim, float* swapped, float* to) {
  const int64_t half = dim / 2;
  for (int64_t h = 0; h < n; ++h) {
    copy_head(x + h * dim + half, half, swapped + h * dim);
    copy_head(x + h * dim, half, swapped + h * dim + half);
  }
  for (int64_t o = 0; o < n * dim; o += 8)
    _mm256_storeu_ps(to + o, _mm256_fmadd_ps(_mm256_loadu_ps(swapped + o), _mm256_loadu_ps(sin + o),
                                             _mm256_mul_ps(_mm256_loadu_ps(x + o), _mm256_loadu_ps(cos + o))));
}
#endif

static void swiglu(const Tensor& gu, Tensor& act) {
  const int64_t rows = gu.size(0), I = act.size(1);
  const float* pg = gu.data_ptr<float>();
  float* pa = act.data_ptr<float>();
  for (int64_t r = 0; r < rows; ++r) {
#if defined(__AVX2__) && defined(__FMA__)
    silu_mul(pg + r * 2 * I, pg + r * 2 * I + I, I, pa + r * I);
#else
    for (int64_t i = 0; i < I; ++i) {
      const float g = pg[r * 2 * I + i];
      pa[r * I + i] = g / (1.f + std::exp(-g)) * pg[r * 2 * I + I + i];
    }
#endif
  }
}

// A weight comes input-major, (in, out) (rlvr.model.native_step.flat_layer), for at::mm; or,
// with its panels (native_gemm.h; `panels` not null), as the model holds it, (out, in), read
// for its shape only (rlvr.model.native_step.step_weights). x @ w^T (+ b) either way.
static Tensor project(const Tensor& x, const Tensor& wt, const Tensor& b, const Tensor* panels) {
  if (!panels) return b.numel() ? at::addmm(b, x, wt) : at::mm(x, wt);
  const int64_t n = wt.size(0);
  // with a bias: b + x @ wt, added in addmm's order
  Tensor out = b.numel() ? b.expand({x.size(0), n}).contiguous() : at::empty({x.size(0), n}, x.options());
  panel_product(x, *panels, n, b.numel() > 0, out);
  return out;
}

// The embeddings of n tokens (rows of a new (n, E) tensor), each token and its rotary
// position checked against the embedding and the `positions` rows of the rotary tables.
static Tensor embed_rows(const Tensor& embed, const int64_t* tokens, const int64_t* at,
                         int64_t n, int64_t positions) {
  const int64_t E = embed.size(1);
  Tensor h = at::empty({n, E}, embed.options());
  for (int64_t r = 0; r < n; ++r) {
    TORCH_CHECK(tokens[r] >= 0 && tokens[r] < embed.size(0) && at[r] >= 0 && at[r] < positions,
                "a token or position outside the embedding or the rotary table");
    std::copy_n(embed.data_ptr<float>() + tokens[r] * E, E, h.data_ptr<float>() + r * E);
  }
  return h;
}

// One token's attention in a decode cache, shared by `step` and `prefill`: its q/k/v row
// rotated (x * cos + (each head's halves swapped) * sin, whole vectors where the head size
// allows; the values pass as they are, their cos 1 and sin 0), its key and value written to
// column s of cache row b, and its queries attending to that row's columns 0..s. The cache
// holds C: float, or at::Half (`step`).
template <class C>
struct TokenAttention {
  // a cache line's worth of C
  static constexpr int64_t line_of = 64 / sizeof(C);
  int64_t heads, kv_heads, dim, M, group;
  float scale;
  Kernels<C> kern;
  bool vector_rotary;
  // the rotated queries and keys, their halves swapped (`rotate_heads`), and the scores with
  // room for `exp_shifted`'s last vector
  std::vector<float> rotated, swapped, scores;

  TokenAttention(int64_t heads, int64_t kv_heads, int64_t dim, int64_t M)
      : heads(heads), kv_heads(kv_heads), dim(dim), M(M), group(heads / kv_heads),
        scale(1.f / std::sqrt((float)dim)), kern(dim),
#if defined(__AVX2__) && defined(__FMA__)
        vector_rotary(dim % 8 == 0),
#else
        vector_rotary(false),
#endif
        rotated((heads + kv_heads) * dim), swapped((heads + kv_heads) * dim), scores(M + 8) {}

  // row: the token's q/k/v (H + 2 Hkv) D; rc, rs: its position's rotary tables; cache: the
  // layer's keys (values `plane` floats further); bias: the cache's (B, Hkv, 1, M) key mask;
  // out: heads * dim floats.
  void run(const float* row, const float* rc, const float* rs, C* cache, int64_t plane,
           const float* bias, int64_t b, int64_t s, float* out) {
    const int64_t half = dim / 2;
    if (vector_rotary) {
      rotate_heads(row, rc, rs, heads + kv_heads, dim, swapped.data(), rotated.data());
    } else {
      for (int64_t hh = 0; hh < heads + kv_heads; ++hh) {
        const int64_t base = hh * dim;
        float* to = rotated.data() + base;
        for (int64_t o = 0; o < half; ++o)
          to[o] = row[base + o] * rc[base + o] + row[base + o + half] * rs[base + o];
        for (int64_t o = half; o < dim; ++o)
          to[o] = row[base + o] * rc[base + o] + row[base + o - half] * rs[base + o];
      }
    }
#if defined(__AVX2__) && defined(__FMA__)
    // The slots that the row two further on writes at this column, asked for with intent to
    // write: each is a line of L3 or memory that the store would otherwise wait for (8 per
    // row and layer; 2-7 % of a 64-row organism decode's attention cycles, 6 % while other
    // tenants load the machine; one row ahead gained less). A prefetch past the cache's end
    // is harmless.
    for (int64_t g = 0; g < kv_heads; ++g) {
      const C* ahead = cache + (((b + 2) * kv_heads + g) * M + s) * dim;
      for (const C* slot : {ahead, ahead + plane}) {
        __builtin_prefetch(slot, 1, 3);
        __builtin_prefetch(slot + dim - 1, 1, 3);
      }
    }
#endif
    for (int64_t g = 0; g < kv_heads; ++g) {
      C* k = cache + ((b * kv_heads + g) * M + s) * dim;
      copy_head(rotated.data() + (heads + g) * dim, dim, k);
      copy_head(row + (heads + kv_heads + g) * dim, dim, k + plane);
    }
    for (int64_t hq = 0; hq < heads; ++hq) {
      const int64_t g = hq / group;
      const C* keys = cache + (b * kv_heads + g) * M * dim;
#if defined(__AVX2__) && defined(__FMA__)
      // The next K/V head's first 16 lines of keys and of values (this row's next head, or the
      // next row's first; a prefetch past the cache's end is harmless): each head's keys and
      // values are two short streams from L3 that the hardware prefetcher picks up only after
      // their first misses (4, 8, 16 lines and whole heads measured; 16 gained most, ~2-4 %
      // of a 64-row organism decode).
      for (int64_t line = 0; line < 16; ++line) {
        _mm_prefetch((const char*)(keys + M * dim + line_of * line), _MM_HINT_T0);
        _mm_prefetch((const char*)(keys + plane + M * dim + line_of * line), _MM_HINT_T0);
      }
#endif
      attend(kern, rotated.data() + hq * dim, keys, keys + plane, bias + (b * kv_heads + g) * M,
             s + 1, dim, scale, scores.data(), out + hq * dim);
    }
  }
};

// h + x @ wt (+ b), accumulated into h's storage.
static void residual(Tensor& h, const Tensor& x, const Tensor& wt, const Tensor& b,
                     const Tensor* panels) {
  if (b.numel()) { h.add_(project(x, wt, b, panels)); return; }
  if (panels) panel_product(x, *panels, wt.size(0), true, h);
  else h.addmm_(x, wt);
}

// The rest of a layer after its attention, shared by `step` and `prefill`: h += attn @ o^T,
// then h += SwiGLU(rms(h) @ gate_up^T) @ down^T, in h's storage. L: the layer's ten tensors;
// panels: its four packed weights, or null (at::mm); act: the SwiGLU rows, made on first use.
static void layer_tail(Tensor& h, const Tensor& attn, const Tensor* L, const Tensor* panels,
                       double eps, Tensor& act) {
  residual(h, attn, L[3], L[4], panels ? panels + 1 : nullptr);
  Tensor gu = project(rms(h, L[5], eps), L[6], L[7], panels ? panels + 2 : nullptr);
  if (!act.defined()) act = at::empty({h.size(0), gu.size(1) / 2}, h.options());
  swiglu(gu, act);
  residual(h, act, L[8], L[9], panels ? panels + 3 : nullptr);
}

// Whether the layers' caches hold fp16 (else fp32; one kind for all).
static bool half_cache(const std::vector<Tensor>& kv) {
  const auto kind = kv.at(0).scalar_type();
  TORCH_CHECK(kind == at::kFloat || kind == at::kHalf, "the K/V cache holds fp32 or fp16");
  for (const Tensor& layer : kv)
    TORCH_CHECK(layer.scalar_type() == kind, "every layer's K/V cache holds the same dtype");
  return kind == at::kHalf;
}

// The decoder layers of `step` and `prefill` over the rows of h, in h's storage: per layer
// the rows' q/k/v (norm, product), then `attend(token_attention, q/k/v rows, cache, plane,
// cache rows)`, which writes the layer's cache (keys, then values `plane` elements further:
// the cache may be a slice of a larger one along rows) and each row's attention into `attn`,
// then the layer's tail. The caches' dtype (fp32 or fp16) picks the attention's kernels.
template <class Attend>
static void run_layers(Tensor& h, const Tensor& attn, const std::vector<Tensor>& layers,
                       const std::vector<Tensor>& kv, const std::vector<Tensor>& panels,
                       double eps, int64_t heads, int64_t kv_heads, int64_t dim,
                       Attend&& attend) {
  auto over = [&](auto cached) {
    using C = decltype(cached);
    TokenAttention<C> token_attention(heads, kv_heads, dim, kv[0].size(3));
    Tensor act;
    for (size_t i = 0; i < kv.size(); ++i) {
      const Tensor* L = &layers[i * 10];
      const Tensor* P = panels.empty() ? nullptr : &panels[4 * i];
      const Tensor qkv = project(rms(h, L[0], eps), L[1], L[2], P);  // (rows, width)
      attend(token_attention, qkv.data_ptr<float>(), kv[i].data_ptr<C>(), kv[i].stride(0),
             kv[i].size(1));
      layer_tail(h, attn, L, P, eps, act);
    }
  };
  if (half_cache(kv)) over(at::Half{});
  else over(0.f);
}

// layers: per layer [norm1, qkv_w, qkv_b, o_w, o_b, norm2, gate_up_w, gate_up_b, down_w,
// down_b], the four weights and head_wt input-major, or (out, in) with panels (`project`; an
// absent bias is an empty tensor); kv: per layer (2, B, Hkv, M, D) of fp32 or fp16, contiguous
// but for the stride of its first dimension;
// bias: (B, Hkv, 1, M) additive key mask; cos, sin: (P, (H + 2 Hkv) D) per-position tables;
// panels: `pack_panels` of [per layer qkv_w, o_w, gate_up_w, down_w, then head_wt], or empty
// (the products through at::mm).
Tensor step(const Tensor& token, const Tensor& position, const Tensor& embed,
            const std::vector<Tensor>& layers, const std::vector<Tensor>& kv,
            const Tensor& bias, const Tensor& cos, const Tensor& sin, const Tensor& norm,
            const Tensor& head_wt, const Tensor& head_b, int64_t heads, int64_t kv_heads,
            int64_t dim, int64_t t, double eps, double norm_eps,
            const std::vector<Tensor>& panels) {
  TORCH_CHECK(panels.empty() || panels.size() == 4 * kv.size() + 1,
              "panels: four weights per layer and the head's, or none");
  const int64_t B = token.size(0), width = (heads + 2 * kv_heads) * dim;
  // the rows' embeddings, and their rotary tables read in place at each row's position
  TORCH_CHECK(cos.is_contiguous() && sin.is_contiguous() && embed.is_contiguous() &&
              cos.size(1) == width, "step: contiguous embeddings and (P, width) rotary tables");
  const Tensor tok = token.contiguous(), pos = position.contiguous();
  const int64_t* pt = tok.data_ptr<int64_t>();
  const int64_t* pp = pos.data_ptr<int64_t>();
  Tensor h = embed_rows(embed, pt, pp, B, cos.size(0));
  const float* pc = cos.data_ptr<float>();
  const float* ps = sin.data_ptr<float>();
  const float* pbias = bias.data_ptr<float>();
  auto attn = at::empty({B, heads * dim}, h.options());
  float* pa = attn.data_ptr<float>();
  run_layers(h, attn, layers, kv, panels, eps, heads, kv_heads, dim,
             [&](auto& token_attention, const float* pq, auto* cache, int64_t plane, int64_t) {
               for (int64_t b = 0; b < B; ++b)
                 token_attention.run(pq + b * width, pc + pp[b] * width, ps + pp[b] * width,
                                     cache, plane, pbias, b, t, pa + b * heads * dim);
             });
  return project(rms(h, norm, norm_eps), head_wt, head_b, panels.empty() ? nullptr : &panels.back());
}

// The prompt rows of a decode cache (rlvr.model.kv_cache) through the step's own kernels, all
// their S columns at once: ids, real, positions (R, S) are the R distinct rows (left-padded:
// `real` marks tokens, the last column always is one), first (R,) the cache row each is written
// to, inverse (B,) each cache row's distinct row. Per layer the products run over R·S rows;
// then per token its rotated key and value go into the cache and its queries attend to the
// row's keys up to itself (the key mask `bias` already hides pad columns), so no packed copy of
// the keys is made and none is copied in afterwards. A pad column gets zeros in the cache and
// no attention output (its hidden state stays finite and is never read). After the last layer
// the rows written at first[r] are copied to the cache rows that share them. Returns the last
// column's logits for every cache row (B, V). The other arguments are `step`'s.
Tensor prefill(const Tensor& ids, const Tensor& real, const Tensor& positions,
               const Tensor& first, const Tensor& inverse, const Tensor& embed,
               const std::vector<Tensor>& layers, const std::vector<Tensor>& kv,
               const Tensor& bias, const Tensor& cos, const Tensor& sin, const Tensor& norm,
               const Tensor& head_wt, const Tensor& head_b, int64_t heads, int64_t kv_heads,
               int64_t dim, double eps, double norm_eps, const std::vector<Tensor>& panels) {
  TORCH_CHECK(panels.empty() || panels.size() == 4 * kv.size() + 1,
              "panels: four weights per layer and the head's, or none");
  const Tensor tok = ids.contiguous(), pos = positions.contiguous();
  const Tensor is_real = real.to(at::kBool).contiguous(), rows_at = first.contiguous();
  const Tensor of_row = inverse.contiguous();
  const int64_t R = tok.size(0), S = tok.size(1), N = R * S, B = of_row.size(0);
  const int64_t E = embed.size(1), width = (heads + 2 * kv_heads) * dim;
  const int64_t M = kv[0].size(3);
  TORCH_CHECK(S <= M && cos.is_contiguous() && sin.is_contiguous() && embed.is_contiguous() &&
              cos.size(1) == width, "prefill: a prompt longer than the cache, or bad tables");
  const int64_t* pt = tok.data_ptr<int64_t>();
  const int64_t* pp = pos.data_ptr<int64_t>();
  const bool* pr = is_real.data_ptr<bool>();
  const int64_t* pf = rows_at.data_ptr<int64_t>();
  const int64_t* pinv = of_row.data_ptr<int64_t>();
  Tensor h = embed_rows(embed, pt, pp, N, cos.size(0));
  const float* pc = cos.data_ptr<float>();
  const float* ps = sin.data_ptr<float>();
  const float* pbias = bias.data_ptr<float>();
  auto attn = at::zeros({N, heads * dim}, h.options());  // pad columns keep their zeros
  float* pa = attn.data_ptr<float>();
  auto attend = [&](auto& token_attention, const float* pq, auto* cache, int64_t plane,
                    int64_t rows) {
    using C = std::remove_pointer_t<decltype(cache)>;
    for (int64_t r = 0; r < R; ++r) {
      const int64_t b = pf[r];
      TORCH_CHECK(b >= 0 && b < rows, "prefill: a cache row out of range");
      for (int64_t s = 0; s < S; ++s) {
        const int64_t n = r * S + s;
        if (!pr[n]) {
          for (int64_t g = 0; g < kv_heads; ++g) {
            C* k = cache + ((b * kv_heads + g) * M + s) * dim;
            std::fill(k, k + dim, C(0.f));
            std::fill(k + plane, k + plane + dim, C(0.f));
          }
          continue;
        }
        token_attention.run(pq + n * width, pc + pp[n] * width, ps + pp[n] * width, cache,
                            plane, pbias, b, s, pa + n * heads * dim);
      }
    }
    // the cache rows that share a distinct row get its S columns
    for (int64_t c = 0; c < B; ++c) {
      const int64_t b = pf[pinv[c]];
      if (b == c) continue;
      for (int64_t g = 0; g < kv_heads; ++g)
        for (int64_t plane_at : {int64_t{0}, plane}) {
          const C* from = cache + plane_at + (b * kv_heads + g) * M * dim;
          std::copy_n(from, S * dim, cache + plane_at + (c * kv_heads + g) * M * dim);
        }
    }
  };
  run_layers(h, attn, layers, kv, panels, eps, heads, kv_heads, dim, attend);
  const Tensor last = h.view({R, S, E}).select(1, S - 1).contiguous();
  Tensor logits = project(rms(last, norm, norm_eps), head_wt, head_b, panels.empty() ? nullptr : &panels.back());
  return logits.index_select(0, of_row);
}

// splitmix64's finaliser, as rlvr.model.decode's `_mix` computes it on int64 (which wraps).
static inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

#if defined(__AVX2__) && defined(__FMA__)
// Four 64-bit lanes multiplied modulo 2^64 (AVX2 multiplies only 32 x 32 -> 64 bits).
static inline __m256i mul64(__m256i a, __m256i b) {
  const __m256i cross = _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(a, 32), b),
                                         _mm256_mul_epu32(a, _mm256_srli_epi64(b, 32)));
  return _mm256_add_epi64(_mm256_mul_epu32(a, b), _mm256_slli_epi64(cross, 32));
}

static inline __m256i mix64x4(__m256i x) {
  x = _mm256_add_epi64(x, _mm256_set1_epi64x((int64_t)0x9E3779B97F4A7C15ull));
  x = mul64(_mm256_xor_si256(x, _mm256_srli_epi64(x, 30)),
            _mm256_set1_epi64x((int64_t)0xBF58476D1CE4E5B9ull));
  x = mul64(_mm256_xor_si256(x, _mm256_srli_epi64(x, 27)),
            _mm256_set1_epi64x((int64_t)0x94D049BB133111EBull));
  return _mm256_xor_si256(x, _mm256_srli_epi64(x, 31));
}

// Non-negative integers below 2^52 to double, exactly (the 2^52 exponent trick).
static inline __m256d small_to_double(__m256i v) {
  const __m256d two52 = _mm256_set1_pd(4503599627370496.0);
  return _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(v, _mm256_castpd_si256(two52))), two52);
}

// Natural log of N x 4 positive normal doubles within 1 ulp: x = 2^k m, m in [sqrt(2)/2,
// sqrt(2)), log(m) = log(1 + f) from s = f / (2 + f) and a degree-14 polynomial in s (fdlibm's
// published coefficients and its error analysis), k ln 2 added in two parts. Stage by stage
// over the N vectors: their long chains (a division, eight dependent products) overlap.
#define EACH for (int j = 0; j < N; ++j)
template <int N>
static inline void logs(__m256d* x) {
  const __m256i mantissa = _mm256_set1_epi64x(0x000FFFFFFFFFFFFFll);
  const __m256i one = _mm256_set1_epi64x(0x3FF0000000000000ll);
  __m256d k[N], f[N], s[N], z[N], w[N], t1[N], t2[N];
  EACH {
    const __m256i bits = _mm256_castpd_si256(x[j]);
    __m256d m = _mm256_castsi256_pd(_mm256_or_si256(_mm256_and_si256(bits, mantissa), one));
    const __m256d high = _mm256_cmp_pd(m, _mm256_set1_pd(1.4142135623730951), _CMP_GT_OQ);
    m = _mm256_blendv_pd(m, _mm256_mul_pd(m, _mm256_set1_pd(0.5)), high);
    // k = biased exponent - 1023 (+1 where m was halved), as a double
    k[j] = _mm256_add_pd(
        _mm256_sub_pd(small_to_double(_mm256_srli_epi64(bits, 52)), _mm256_set1_pd(1023.0)),
        _mm256_and_pd(high, _mm256_set1_pd(1.0)));
    f[j] = _mm256_sub_pd(m, _mm256_set1_pd(1.0));
  }
  EACH s[j] = _mm256_div_pd(f[j], _mm256_add_pd(_mm256_set1_pd(2.0), f[j]));
  EACH z[j] = _mm256_mul_pd(s[j], s[j]);
  EACH w[j] = _mm256_mul_pd(z[j], z[j]);
  EACH t1[j] = _mm256_fmadd_pd(w[j], _mm256_set1_pd(1.531383769920937332e-01), _mm256_set1_pd(2.222219843214978396e-01));
  EACH t2[j] = _mm256_fmadd_pd(w[j], _mm256_set1_pd(1.479819860511658591e-01), _mm256_set1_pd(1.818357216161805012e-01));
  EACH t1[j] = _mm256_mul_pd(w[j], _mm256_fmadd_pd(w[j], t1[j], _mm256_set1_pd(3.999999999940941908e-01)));
  EACH t2[j] = _mm256_fmadd_pd(w[j], t2[j], _mm256_set1_pd(2.857142874366239149e-01));
  EACH t2[j] = _mm256_mul_pd(z[j], _mm256_fmadd_pd(w[j], t2[j], _mm256_set1_pd(6.666666666666735130e-01)));
  EACH {
    const __m256d r = _mm256_add_pd(t2[j], t1[j]);
    const __m256d hfsq = _mm256_mul_pd(_mm256_set1_pd(0.5), _mm256_mul_pd(f[j], f[j]));
    // k ln2_hi - ((hfsq - (s (hfsq + r) + k ln2_lo)) - f)
    const __m256d inner = _mm256_add_pd(_mm256_mul_pd(s[j], _mm256_add_pd(hfsq, r)),
                                        _mm256_mul_pd(k[j], _mm256_set1_pd(1.90821492927058770002e-10)));
    x[j] = _mm256_sub_pd(_mm256_mul_pd(k[j], _mm256_set1_pd(6.93147180369123816490e-01)),
                         _mm256_sub_pd(_mm256_sub_pd(hfsq, inner), f[j]));
  }
}

// -log(-log u) for N x 4 uniforms u = ((bits >> 11) + 0.5) 2^-53, as `sample`'s scalar loop.
template <int N>
static inline void gumbels(const __m256i* bits, __m256d* out) {
  const __m256d minus = _mm256_set1_pd(-0.0);
  EACH {
    const __m256i x = _mm256_srli_epi64(bits[j], 11);  // 53 bits: two exact halves
    const __m256d whole = _mm256_fmadd_pd(
        small_to_double(_mm256_srli_epi64(x, 32)), _mm256_set1_pd(4294967296.0),
        small_to_double(_mm256_and_si256(x, _mm256_set1_epi64x(0xFFFFFFFFll))));
    out[j] = _mm256_mul_pd(_mm256_add_pd(whole, _mm256_set1_pd(0.5)), _mm256_set1_pd(0x1p-53));
  }
  logs<N>(out);
  EACH out[j] = _mm256_xor_pd(out[j], minus);
  logs<N>(out);
  EACH out[j] = _mm256_xor_pd(out[j], minus);
}
#undef EACH
#endif

// rlvr.model.decode.choose at temperature > 0 and top_p 1, fused: per row the token that
// maximises logit + Gumbel noise, the noise hashed from (key, step, token) exactly as there.
// `logits` (B, V) fp32 are already divided by the temperature. With AVX2, four tokens at a
// time (the hash in 64-bit lanes, the logarithms by `log4`); ties go to the lower token.
Tensor sample(const Tensor& logits, const Tensor& keys, int64_t step) {
  const Tensor l = logits.contiguous();
  const int64_t B = l.size(0), V = l.size(1);
  const float* pl = l.data_ptr<float>();
  const int64_t* pk = keys.data_ptr<int64_t>();
  auto out = at::empty({B}, keys.options());
  int64_t* po = out.data_ptr<int64_t>();
  constexpr uint64_t golden = 0x9E3779B97F4A7C15ull;
  for (int64_t b = 0; b < B; ++b) {
    const uint64_t row = mix64((uint64_t)pk[b] + (uint64_t)step);
    const float* lr = pl + b * V;
    double best = -INFINITY;
    int64_t arg = 0, v = 0;
#if defined(__AVX2__) && defined(__FMA__)
    if (V >= 4) {
      __m256i term = _mm256_add_epi64(_mm256_set1_epi64x((int64_t)row),
                                      _mm256_set_epi64x((int64_t)(3 * golden), (int64_t)(2 * golden),
                                                        (int64_t)golden, 0));
      const __m256i stride = _mm256_set1_epi64x((int64_t)(4 * golden));
      __m256d top = _mm256_set1_pd(-INFINITY);
      __m256i at = _mm256_setzero_si256(), index = _mm256_set_epi64x(3, 2, 1, 0);
      const __m256i four = _mm256_set1_epi64x(4);
      // strictly greater: each lane keeps its first maximum (a NaN never wins)
      auto keep = [&](__m256d value) {
        const __m256d better = _mm256_cmp_pd(value, top, _CMP_GT_OQ);
        top = _mm256_blendv_pd(top, value, better);
        at = _mm256_castpd_si256(_mm256_blendv_pd(_mm256_castsi256_pd(at),
                                                  _mm256_castsi256_pd(index), better));
        term = _mm256_add_epi64(term, stride);
        index = _mm256_add_epi64(index, four);
      };
      // Four groups per pass: their long, independent chains (hash, two logarithms with a
      // division each) overlap in the core instead of waiting on one another.
      for (; v + 16 <= V; v += 16) {
        __m256i bits[4];
        __m256d noise[4];
        for (int j = 0; j < 4; ++j)
          bits[j] = mix64x4(_mm256_add_epi64(term, _mm256_set1_epi64x((int64_t)(4 * j * golden))));
        gumbels<4>(bits, noise);
        for (int j = 0; j < 4; ++j)
          keep(_mm256_add_pd(_mm256_cvtps_pd(_mm_loadu_ps(lr + v + 4 * j)), noise[j]));
      }
      for (; v + 4 <= V; v += 4) {
        const __m256i bits = mix64x4(term);
        __m256d noise;
        gumbels<1>(&bits, &noise);
        keep(_mm256_add_pd(_mm256_cvtps_pd(_mm_loadu_ps(lr + v)), noise));
      }
      if (v < V) {
        // the last 1-3 tokens in vector lanes too (the scalar loop's C-library logarithms
        // took ~0.6 % of a 64-row organism decode); the lanes past V weigh -inf, never kept
        alignas(16) float last[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
        for (int64_t j = 0; v + j < V; ++j) last[j] = lr[v + j];
        const __m256i bits = mix64x4(term);
        __m256d noise;
        gumbels<1>(&bits, &noise);
        keep(_mm256_add_pd(_mm256_cvtps_pd(_mm_load_ps(last)), noise));
        v = V;
      }
      alignas(32) double lane_top[4];
      alignas(32) int64_t lane_at[4];
      _mm256_store_pd(lane_top, top);
      _mm256_store_si256((__m256i*)lane_at, at);
      for (int j = 0; j < 4; ++j)
        if (lane_top[j] > best || (lane_top[j] == best && lane_at[j] < arg)) {
          best = lane_top[j];
          arg = lane_at[j];
        }
    }
#endif
    for (; v < V; ++v) {
      const uint64_t bits = mix64(row + (uint64_t)v * golden);
      const double u = ((double)(bits >> 11) + 0.5) * 0x1p-53;
      const double value = (double)lr[v] + -std::log(-std::log(u));
      if (value > best) { best = value; arg = v; }
    }
    po[b] = arg;
  }
  return out;
}

// rlvr.model.decode.decode's iterations from 0 while every row is alive, in one call instead of
// a Python iteration (~0.1 ms a token of torch calls at 64 rows): each draws the rows' tokens
// from `logits` (`sample` at `temperature`, top_p 1), writes them to column `step` of `tokens`,
// then runs `step` one position further. It returns before writing a draw that holds an EOS
// token, and before the budget's last iteration: (that iteration, its logits, the positions,
// the cache length). The Python loop redoes that iteration's draw (the same noise gives the same
// tokens) and takes it from there: EOS bookkeeping, dropping rows, the last token.
std::tuple<int64_t, Tensor, Tensor, int64_t> run_steps(
    Tensor logits, Tensor position, const Tensor& keys, Tensor tokens, const Tensor& eos,
    int64_t budget, double temperature, const Tensor& embed, const std::vector<Tensor>& layers,
    const std::vector<Tensor>& kv, const Tensor& bias, const Tensor& cos, const Tensor& sin,
    const Tensor& norm, const Tensor& head_wt, const Tensor& head_b, int64_t heads,
    int64_t kv_heads, int64_t dim, int64_t t, double eps, double norm_eps,
    const std::vector<Tensor>& panels) {
  TORCH_CHECK(tokens.dim() == 2 && tokens.size(0) == logits.size(0) && tokens.size(1) >= budget,
              "run_steps: tokens must be (rows, budget)");
  const int64_t B = logits.size(0), stride = tokens.stride(0);
  const Tensor stops = eos.contiguous();
  const int64_t* pe = stops.data_ptr<int64_t>();
  const int64_t n_eos = stops.numel();
  int64_t step_at = 0;
  for (; step_at + 1 < budget; ++step_at) {
    const Tensor token = sample(temperature == 1.0 ? logits : logits.div(temperature), keys, step_at);
    const int64_t* pt = token.data_ptr<int64_t>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t e = 0; e < n_eos; ++e)
        if (pt[b] == pe[e]) return {step_at, logits, position, t};
    int64_t* column = tokens.data_ptr<int64_t>() + step_at * tokens.stride(1);
    for (int64_t b = 0; b < B; ++b) column[b * stride] = pt[b];
    position = position + 1;
    logits = step(token, position, embed, layers, kv, bias, cos, sin, norm, head_wt, head_b, heads,
                  kv_heads, dim, t, eps, norm_eps, panels);
    ++t;
  }
  return {step_at, logits, position, t};
}
