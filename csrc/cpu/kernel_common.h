// Pieces shared by the CPU kernels (csrc/cpu/*.cpp): the padded rank, the vector
// types of each instruction set, the initial vectors of one batch item and the one
// run-time dispatch to the instruction set. Everything here is a template or inline,
// so each entry point compiled with its own `target` attribute (simd.h) inlines the
// hot parts for its instruction set.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <new>
#include <tuple>
#include <vector>

#include "../symsatnet.h"
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

// Vectors of VB bytes, for kernels that follow their entry point's register width.
template <typename T, int VB>
struct VecOf {
  typedef T type __attribute__((vector_size(VB)));
};
// The hot loops work on vectors of VB bytes, the register width of the entry point
// they are inlined into (64 for AVX-512, 32 for AVX2, 16 otherwise): a 64-byte type
// compiled for AVX2 needs twice the registers and spills (the dense kernel ran ~25x
// slower, the structured one ~7x).
template <typename T, int VB>
using vec = typename VecOf<T, VB>::type;
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

// Initial vectors of one item (docs/design.md, "Forward"): v0 from V_init[0]; an input i gets
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

// Entry points, one per instruction set, of a kernel over a range of batch items.
// `Kernel` provides `template <int VB> static void range(const Args&, int64_t begin,
// int64_t end)` (always inline): each entry point below inlines it with VB, the width
// in bytes of its own vector registers (16 baseline, 32 AVX2, 64 AVX-512), and the
// compiler vectorises each copy for its own target.
template <class Kernel, class Args>
void range_baseline(const Args& a, int64_t b0, int64_t b1) {
  Kernel::template range<16>(a, b0, b1);
}
#if SYMSATNET_X86
template <class Kernel, class Args>
SYMSATNET_TARGET_AVX2 void range_avx2(const Args& a, int64_t b0, int64_t b1) {
  Kernel::template range<32>(a, b0, b1);
}
template <class Kernel, class Args>
SYMSATNET_TARGET_AVX512 void range_avx512(const Args& a, int64_t b0, int64_t b1) {
  Kernel::template range<64>(a, b0, b1);
}
#endif

// Run `Kernel` over batch items 0..B-1, one item per task of at::parallel_for, with the
// entry point of the best instruction set the processor has (or SYMSATNET_CPU_ISA asks).
template <class Kernel, class Args>
void run_batch(const Args& a, int64_t B) {
  auto fn = &range_baseline<Kernel, Args>;
#if SYMSATNET_X86
  switch (cpu_isa()) {
    case CpuIsa::avx512: fn = &range_avx512<Kernel, Args>; break;
    case CpuIsa::avx2: fn = &range_avx2<Kernel, Args>; break;
    default: break;
  }
#endif
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) { fn(a, b0, b1); });
  raise_if_interrupted();
}

// The rank dimension padded with zeros to kp, contiguous.
inline at::Tensor pad_rank(const at::Tensor& t, int64_t kp) {
  const int64_t k = t.size(-1);
  return (k == kp ? t : at::constant_pad_nd(t, {0, kp - k})).contiguous();
}

// The per-item arrays of one call (B items of N variables, the rank padded to kp), as
// the batch loops of every CPU op read them; each op's Batch adds its own problem.
template <typename T>
struct BatchArrays {
  const bool* is_input = nullptr;  // (B, N)
  const T* z = nullptr;            // (B, N), forward
  const T* V_init = nullptr;       // (B, N, k), forward
  T* V = nullptr;                  // (B, N, kp): the forward's output, the adjoint's input
  T* gnorm = nullptr;              // (B, N): likewise
  int* sweeps = nullptr;           // (B,), forward
  const T* W = nullptr;            // (B, N, kp), adjoint
  T* U = nullptr;                  // (B, N, kp), adjoint (and pairings)
};

// What the host side of every call (forward, adjoint) holds: the mask and the order made
// contiguous, and the sizes B, N, k and the padded rank kp.
struct CallShape {
  at::Tensor is_input, order;
  int64_t B, N, k, kp;

  // `vectors` is (B, N, k): V_init forward, V adjoint (shapes checked by csrc/ops.cpp).
  CallShape(const at::Tensor& vectors, const at::Tensor& is_input_in, const at::Tensor& order_in)
      : is_input(is_input_in.contiguous()),
        order(order_in.contiguous()),
        B(vectors.size(0)),
        N(vectors.size(1)),
        k(vectors.size(2)),
        kp(padded_rank(vectors.size(2))) {}
};

// Host side of a forward call: the state inputs made contiguous and the outputs
// allocated (V with the padded rank); finish() returns what the forward ops return.
struct ForwardCall : CallShape {
  at::Tensor z, V_init, V, gnorm, sweeps;

  ForwardCall(const at::Tensor& z_in, const at::Tensor& is_input_in, const at::Tensor& V_init_in,
              const at::Tensor& order_in, const at::TensorOptions& options)
      : CallShape(V_init_in, is_input_in, order_in), z(z_in.contiguous()), V_init(V_init_in.contiguous()) {
    V = at::zeros({B, N, kp}, options);
    gnorm = at::zeros({B, N}, options);
    sweeps = at::zeros({B}, options.dtype(at::kInt));
  }

  template <typename T>
  void bind(BatchArrays<T>& a) const {
    a.is_input = is_input.data_ptr<bool>();
    a.z = z.data_ptr<T>();
    a.V_init = V_init.data_ptr<T>();
    a.V = V.data_ptr<T>();
    a.gnorm = gnorm.data_ptr<T>();
    a.sweeps = sweeps.data_ptr<int>();
  }

  std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> finish() const {
    const auto vectors = V.narrow(2, 0, k).contiguous();
    return {vectors, z_from_vectors(vectors, z, is_input), gnorm, sweeps};
  }
};

// Host side of an adjoint call: V and W padded to kp, U allocated; finish() returns U
// without the padding.
struct AdjointCall : CallShape {
  at::Tensor V, gnorm, W, U;

  AdjointCall(const at::Tensor& V_in, const at::Tensor& gnorm_in, const at::Tensor& is_input_in,
              const at::Tensor& W_in, const at::Tensor& order_in, const at::TensorOptions& options)
      : CallShape(V_in, is_input_in, order_in), gnorm(gnorm_in.contiguous()) {
    V = pad_rank(V_in, kp);
    W = pad_rank(W_in, kp);
    U = at::zeros({B, N, kp}, options);
  }

  template <typename T>
  void bind(BatchArrays<T>& a) const {
    a.is_input = is_input.data_ptr<bool>();
    a.V = const_cast<T*>(V.data_ptr<T>());
    a.gnorm = const_cast<T*>(gnorm.data_ptr<T>());
    a.W = W.data_ptr<T>();
    a.U = U.data_ptr<T>();
  }

  at::Tensor finish() const { return U.narrow(2, 0, k).contiguous(); }
};

}  // namespace cpu
}  // namespace symsatnet
