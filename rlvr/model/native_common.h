// What the C++ kernels of rlvr.model.native_step and rlvr.model.native_score share;
// rlvr.model.cpp_build puts it in front of each one's source.
#include <torch/extension.h>
#include <algorithm>
#include <cmath>
#include <vector>

using at::Tensor;

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
