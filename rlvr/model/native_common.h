// What the C++ kernels of rlvr.model.native_step and rlvr.model.native_score share;
// rlvr.model.cpp_build puts it in front of each one's source.
#include <torch/extension.h>
#include <algorithm>
#include <cmath>
#include <vector>

using at::Tensor;

// Dot product in 8 independent lanes: the compiler vectorises it without -ffast-math. `b` may
// be fp16 (a decode cache's keys), widened to float as it is read.
template <class B>
static inline float dot(const float* a, const B* b, int64_t n) {
  float lane[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) lane[l] += a[i + l] * (float)b[i + l];
  float total = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
  for (; i < n; ++i) total += a[i] * (float)b[i];
  return total;
}

// y = w * (x / sqrt(mean(x^2) + eps)) row by row (the Hugging Face RMSNorm in fp32); when
// `inv` is given it receives each row's 1 / sqrt(...), which a backward reads.
static Tensor rms(const Tensor& x, const Tensor& w, double eps, Tensor* inv = nullptr) {
  const int64_t rows = x.size(0), n = x.size(1);
  auto out = at::empty_like(x);
  if (inv) *inv = at::empty({rows}, x.options());
  const float* px = x.data_ptr<float>();
  const float* pw = w.data_ptr<float>();
  float* po = out.data_ptr<float>();
  float* pi = inv ? inv->data_ptr<float>() : nullptr;
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = px + r * n;
    const float s = 1.f / std::sqrt(dot(xr, xr, n) / n + (float)eps);
    if (pi) pi[r] = s;
    for (int64_t i = 0; i < n; ++i) po[r * n + i] = pw[i] * (xr[i] * s);
  }
  return out;
}

// x @ w^T (+ b); an absent bias is an empty tensor.
static Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  return b.numel() ? at::addmm(b, x, w.t()) : at::mm(x, w.t());
}
