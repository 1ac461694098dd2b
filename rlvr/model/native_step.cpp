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

// sc[p] = (q . keys[p]) * scale + mask[p] for p < n, a head of NV × 8 dims. Four keys at a
// time: four independent FMA chains, their sums transposed together by hadd (one horizontal
// reduction per four keys instead of one per key).
template <int NV>
static void score_keys(const float* q, const float* keys, const float* mask, int64_t n,
                       float scale, float* sc) {
  constexpr int64_t dim = NV * 8;
  __m256 qv[NV];
  for (int j = 0; j < NV; ++j) qv[j] = _mm256_loadu_ps(q + 8 * j);
  int64_t p = 0;
  for (; p + 4 <= n; p += 4) {
    const float* k = keys + p * dim;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int j = 0; j < NV; ++j) {
      a0 = _mm256_fmadd_ps(qv[j], _mm256_loadu_ps(k + 8 * j), a0);
      a1 = _mm256_fmadd_ps(qv[j], _mm256_loadu_ps(k + dim + 8 * j), a1);
      a2 = _mm256_fmadd_ps(qv[j], _mm256_loadu_ps(k + 2 * dim + 8 * j), a2);
      a3 = _mm256_fmadd_ps(qv[j], _mm256_loadu_ps(k + 3 * dim + 8 * j), a3);
    }
    __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    __m128 dots = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    _mm_storeu_ps(sc + p, _mm_add_ps(_mm_mul_ps(dots, _mm_set1_ps(scale)), _mm_loadu_ps(mask + p)));
  }
  for (; p < n; ++p) {
    __m256 a = _mm256_setzero_ps();
    for (int j = 0; j < NV; ++j)
      a = _mm256_fmadd_ps(qv[j], _mm256_loadu_ps(keys + p * dim + 8 * j), a);
    sc[p] = lane_sum(a) * scale + mask[p];
  }
}

// out = (sum_p w[p] * values[p]) * norm, the accumulator held in NV registers.
template <int NV>
static void mix_values(const float* w, const float* values, int64_t n, float norm, float* out) {
  constexpr int64_t dim = NV * 8;
  __m256 acc[NV];
  for (int j = 0; j < NV; ++j) acc[j] = _mm256_setzero_ps();
  for (int64_t p = 0; p < n; ++p) {
    const __m256 wp = _mm256_set1_ps(w[p]);
    for (int j = 0; j < NV; ++j)
      acc[j] = _mm256_fmadd_ps(wp, _mm256_loadu_ps(values + p * dim + 8 * j), acc[j]);
  }
  for (int j = 0; j < NV; ++j)
    _mm256_storeu_ps(out + 8 * j, _mm256_mul_ps(acc[j], _mm256_set1_ps(norm)));
}

// sc[p] = e^(sc[p] - top); returns their sum.
static float exp_shifted(float* sc, int64_t n, float top) {
  const __m256 shift = _mm256_set1_ps(top);
  __m256 total = _mm256_setzero_ps();
  int64_t p = 0;
  for (; p + 8 <= n; p += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(sc + p), shift));
    _mm256_storeu_ps(sc + p, e);
    total = _mm256_add_ps(total, e);
  }
  float sum = lane_sum(total);
  for (; p < n; ++p) sum += (sc[p] = std::exp(sc[p] - top));
  return sum;
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

using ScoreFn = void (*)(const float*, const float*, const float*, int64_t, float, float*);
using MixFn = void (*)(const float*, const float*, int64_t, float, float*);

template <int NV>
static void pick(int64_t dim, ScoreFn* score, MixFn* mix) {
  if constexpr (NV > 0) {
    if (dim == NV * 8) { *score = score_keys<NV>; *mix = mix_values<NV>; return; }
    pick<NV - 1>(dim, score, mix);
  }
}
#endif

// The vector kernels for a head of `dim` dims, or nulls (the portable loops of `attend`)
// when dim is not a multiple of 8 up to 256 or the CPU lacks AVX2.
struct Kernels {
#if defined(__AVX2__) && defined(__FMA__)
  ScoreFn score = nullptr;
  MixFn mix = nullptr;
  explicit Kernels(int64_t dim) { pick<32>(dim, &score, &mix); }
#else
  explicit Kernels(int64_t) {}
#endif
};

// One query head against its n cached keys: out = softmax(q k^T * scale + mask) v, with the
// n scores in `sc` (scratch).
static void attend(const Kernels& kern, const float* q, const float* keys, const float* values,
                   const float* mask, int64_t n, int64_t dim, float scale, float* sc,
                   float* out) {
#if defined(__AVX2__) && defined(__FMA__)
  if (kern.score) {
    kern.score(q, keys, mask, n, scale, sc);
    const float top = *std::max_element(sc, sc + n);
    kern.mix(sc, values, n, 1.f / exp_shifted(sc, n, top), out);
    return;
  }
#endif
  float top = -INFINITY, sum = 0.f;
  for (int64_t p = 0; p < n; ++p) top = std::max(top, sc[p] = dot(q, keys + p * dim, dim) * scale + mask[p]);
  for (int64_t p = 0; p < n; ++p) sum += (sc[p] = std::exp(sc[p] - top));
  std::fill(out, out + dim, 0.f);
  for (int64_t p = 0; p < n; ++p)
    for (int64_t d = 0; d < dim; ++d) out[d] += sc[p] * values[p * dim + d];
  for (int64_t d = 0; d < dim; ++d) out[d] /= sum;
}

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
  const int64_t B = token.size(0), width = (heads + 2 * kv_heads) * dim;
  const int64_t M = kv[0].size(3), group = heads / kv_heads, half = dim / 2;
  const float scale = 1.f / std::sqrt((float)dim);
  const Kernels kern(dim);
  Tensor h = embed.index_select(0, token).contiguous();
  Tensor c = cos.index_select(0, position).contiguous();
  Tensor s = sin.index_select(0, position).contiguous();
  const float* pc = c.data_ptr<float>();
  const float* ps = s.data_ptr<float>();
  const float* pbias = bias.data_ptr<float>();
  std::vector<float> rotated(width), scores(t + 1);
  auto attn = at::empty({B, heads * dim}, h.options());
  float* pa = attn.data_ptr<float>();
  Tensor act;
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
        std::copy_n(rotated.data() + (heads + g) * dim, dim, k);
        std::copy_n(rotated.data() + (heads + kv_heads + g) * dim, dim, k + plane);
      }
      for (int64_t hq = 0; hq < heads; ++hq) {
        const int64_t g = hq / group;
        const float* keys = cache + (b * kv_heads + g) * M * dim;
        attend(kern, rotated.data() + hq * dim, keys, keys + plane,
               pbias + (b * kv_heads + g) * M, t + 1, dim, scale, scores.data(),
               pa + (b * heads + hq) * dim);
      }
    }
    residual(h, attn, L[3], L[4]);
    Tensor gu = linear(rms(h, L[5], eps), L[6], L[7]);  // (B, 2 I)
    if (!act.defined()) act = at::empty({B, gu.size(1) / 2}, h.options());
    swiglu(gu, act);
    residual(h, act, L[8], L[9]);
  }
  return linear(rms(h, norm, norm_eps), head_w, head_b);
}

// splitmix64's finaliser, as rlvr.model.decode's `_mix` computes it on int64 (which wraps).
static inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// rlvr.model.decode.choose at temperature > 0 and top_p 1, fused: per row the token that
// maximises logit + Gumbel noise, the noise hashed from (key, step, token) exactly as there.
// `logits` (B, V) fp32 are already divided by the temperature.
Tensor sample(const Tensor& logits, const Tensor& keys, int64_t step) {
  const Tensor l = logits.contiguous();
  const int64_t B = l.size(0), V = l.size(1);
  const float* pl = l.data_ptr<float>();
  const int64_t* pk = keys.data_ptr<int64_t>();
  auto out = at::empty({B}, keys.options());
  int64_t* po = out.data_ptr<int64_t>();
  for (int64_t b = 0; b < B; ++b) {
    const uint64_t row = mix64((uint64_t)pk[b] + (uint64_t)step);
    double best = -INFINITY;
    int64_t arg = 0;
    for (int64_t v = 0; v < V; ++v) {
      const uint64_t bits = mix64(row + (uint64_t)v * 0x9E3779B97F4A7C15ull);
      const double u = ((double)(bits >> 11) + 0.5) * 0x1p-53;
      const double value = (double)pl[b * V + v] + -std::log(-std::log(u));
      if (value > best || (v == 0)) { best = value; arg = v; }
    }
    po[b] = arg;
  }
  return out;
}
