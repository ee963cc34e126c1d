// Pieces shared by the CPU kernels (csrc/cpu/*.cpp): the padded rank, the
// 64-byte vector type, and the initial vectors of one batch item. Everything
// here is a template or inline, so each entry point compiled with its own
// `target` attribute (simd.h) inlines the hot parts for its instruction set.
#pragma once

#include <ATen/ATen.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <new>
#include <vector>

#include "simd.h"

namespace symsatnet {
namespace cpu {

constexpr int64_t kPad = 16;  // the rank is padded to a multiple of this

inline int64_t padded_rank(int64_t k) { return (k + kPad - 1) / kPad * kPad; }

// Working buffers start on a cache line, so a padded row (a multiple of 64 bytes) is
// whole cache lines and a 64-byte vector never straddles two: std::vector's 16-byte
// alignment made every access of a row a split load or store.
template <typename T>
struct CacheAligned {
  using value_type = T;
  static constexpr std::align_val_t kAlign{64};
  CacheAligned() = default;
  template <typename U>
  CacheAligned(const CacheAligned<U>&) {}
  T* allocate(std::size_t count) {
    return static_cast<T*>(::operator new(count * sizeof(T), kAlign));
  }
  void deallocate(T* ptr, std::size_t) { ::operator delete(ptr, kAlign); }
  template <typename U>
  bool operator==(const CacheAligned<U>&) const { return true; }
};

template <typename T>
using aligned_vector = std::vector<T, CacheAligned<T>>;

// 64-byte vectors through GCC/Clang vector extensions: each instruction-set entry
// point compiles them to its own registers (one zmm, two ymm, four xmm).
template <typename T>
struct Vec64;
template <>
struct Vec64<float> {
  typedef float type __attribute__((vector_size(64)));
};
template <>
struct Vec64<double> {
  typedef double type __attribute__((vector_size(64)));
};
template <typename T>
using vec_t = typename Vec64<T>::type;
template <typename T>
constexpr int kLanes = 64 / sizeof(T);

// Vectors of VB bytes, for kernels that follow their entry point's register width.
template <typename T, int VB>
struct VecOf {
  typedef T type __attribute__((vector_size(VB)));
};
template <typename T, int VB>
SYMSATNET_INLINE typename VecOf<T, VB>::type load_vec(const T* p) {
  typename VecOf<T, VB>::type v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}
template <typename T, int VB>
SYMSATNET_INLINE void store_vec(T* p, typename VecOf<T, VB>::type v) {
  __builtin_memcpy(p, &v, sizeof(v));
}

template <typename T>
SYMSATNET_INLINE vec_t<T> load(const T* p) {
  vec_t<T> v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}
template <typename T>
SYMSATNET_INLINE void store(T* p, vec_t<T> v) {
  __builtin_memcpy(p, &v, sizeof(v));
}

template <typename T>
SYMSATNET_INLINE T dot(const T* a, const T* b, int64_t n) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t c = 0; c < n; ++c) s += a[c] * b[c];
  return s;
}

// Set v to a unit vector along src; a zero draw (probability zero, but possible
// for hand-made V_init) falls back to the basis vector e_fallback.
template <typename T>
void normalise_or(const T* src, int64_t k, int64_t kp, int64_t fallback, T* v) {
  T n2 = 0;
  for (int64_t c = 0; c < k; ++c) n2 += src[c] * src[c];
  if (n2 > std::numeric_limits<T>::min()) {
    const T inv = T(1) / std::sqrt(n2);
    for (int64_t c = 0; c < kp; ++c) v[c] = c < k ? src[c] * inv : T(0);
  } else {
    for (int64_t c = 0; c < kp; ++c) v[c] = c == fallback % k ? T(1) : T(0);
  }
}

// Initial vectors of one item (DESIGN.md §2): v0 from V_init[0]; an input i gets
// -cos(pi z_i) v0 + sin(pi z_i) r_i with r_i the part of V_init[i] orthogonal to
// v0; every other variable starts at V_init[i] normalised.
template <typename T>
void init_item(const T* z, const bool* is_input, const T* V_init, int64_t N, int64_t k,
               int64_t kp, T* V, std::vector<T>& r) {
  T* v0 = V;
  normalise_or(V_init, k, kp, 0, v0);
  for (int64_t i = 1; i < N; ++i) {
    const T* src = V_init + i * k;
    T* v = V + i * kp;
    if (!is_input[i]) {
      normalise_or(src, k, kp, i, v);
      continue;
    }
    for (int64_t c = 0; c < kp; ++c) r[c] = c < k ? src[c] : T(0);
    const T along = dot(r.data(), v0, kp);
    for (int64_t c = 0; c < kp; ++c) r[c] -= along * v0[c];
    T n2 = dot(r.data(), r.data(), kp);
    const T angle = T(M_PI) * z[i];
    const T cos_part = -std::cos(angle);
    // With k = 1 (or a draw parallel to v0) there is no orthogonal direction:
    // the input is then rounded onto +-v0.
    const T sin_part = n2 > std::numeric_limits<T>::min() ? std::sin(angle) / std::sqrt(n2) : T(0);
    for (int64_t c = 0; c < kp; ++c) v[c] = cos_part * v0[c] + sin_part * r[c];
  }
}

// The rank dimension padded with zeros to kp, contiguous.
inline at::Tensor pad_rank(const at::Tensor& t, int64_t kp) {
  const int64_t k = t.size(-1);
  return (k == kp ? t : at::constant_pad_nd(t, {0, kp - k})).contiguous();
}

}  // namespace cpu
}  // namespace symsatnet
