// CPU kernels of the mixing method: forward and adjoint sweeps, C-form and S-form.
//
// Each batch item is solved by one thread (at::parallel_for over the batch). The
// rank dimension is padded with zeros to a multiple of 16 so that every inner loop
// runs over fixed 16-wide chunks the compiler vectorises completely (zero lanes
// change no dot product or norm). Rows of V, U, Omega = S^T V and Psi = S^T U are
// contiguous and padded, so a row is a whole number of cache lines.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../symsatnet.h"
#include "simd.h"

namespace symsatnet {
namespace {

constexpr int64_t kLanes = 16;

int64_t padded_rank(int64_t k) { return (k + kLanes - 1) / kLanes * kLanes; }

// out = sum_j coef[j] * rows[j, :], rows of width kp. Four independent
// accumulators hide the latency of the fused multiply-adds.
template <typename T>
SYMSATNET_INLINE void combine_rows(const T* __restrict coef, const T* __restrict rows,
                                   int64_t count, int64_t kp, T* __restrict out) {
  for (int64_t c0 = 0; c0 < kp; c0 += kLanes) {
    T a0[kLanes] = {}, a1[kLanes] = {}, a2[kLanes] = {}, a3[kLanes] = {};
    const T* r = rows + c0;
    int64_t j = 0;
    for (; j + 4 <= count; j += 4, r += 4 * kp) {
      const T w0 = coef[j], w1 = coef[j + 1], w2 = coef[j + 2], w3 = coef[j + 3];
#pragma GCC unroll 16
      for (int t = 0; t < kLanes; ++t) {
        a0[t] += w0 * r[t];
        a1[t] += w1 * r[kp + t];
        a2[t] += w2 * r[2 * kp + t];
        a3[t] += w3 * r[3 * kp + t];
      }
    }
    for (; j < count; ++j, r += kp) {
      const T w = coef[j];
#pragma GCC unroll 16
      for (int t = 0; t < kLanes; ++t) a0[t] += w * r[t];
    }
#pragma GCC unroll 16
    for (int t = 0; t < kLanes; ++t) out[c0 + t] = (a0[t] + a1[t]) + (a2[t] + a3[t]);
  }
}

// rows[c, :] += coef[c] * delta for every c (a rank-one update of Omega or Psi).
template <typename T>
SYMSATNET_INLINE void add_outer(const T* __restrict coef, const T* __restrict delta,
                                int64_t count, int64_t kp, T* __restrict rows) {
  for (int64_t c = 0; c < count; ++c) {
    const T w = coef[c];
    T* r = rows + c * kp;
    for (int64_t c0 = 0; c0 < kp; c0 += kLanes) {
#pragma GCC unroll 16
      for (int t = 0; t < kLanes; ++t) r[c0 + t] += w * delta[c0 + t];
    }
  }
}

template <typename T>
SYMSATNET_INLINE T dot(const T* a, const T* b, int64_t kp) {
  T acc[kLanes] = {};
  for (int64_t c0 = 0; c0 < kp; c0 += kLanes) {
#pragma GCC unroll 16
    for (int t = 0; t < kLanes; ++t) acc[t] += a[c0 + t] * b[c0 + t];
  }
  T s = 0;
  for (int t = 0; t < kLanes; ++t) s += acc[t];
  return s;
}

template <typename T>
T sum_squares(const T* a, int64_t count) {
  T s = 0;
  for (int64_t c = 0; c < count; ++c) s += a[c] * a[c];
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

// Views of one batch item, with the scalars of the solve.
template <typename T>
struct Problem {
  const T* weights;  // C (N x N) or S (N x m)
  int64_t N, m, k, kp;
  const int64_t* order;
  int64_t max_iter;
  T eps;
  T prox_lam;
};

// Update of output i from g = sum_{j != i} C_ij v_j; returns |v_new - v_old|^2.
template <typename T>
SYMSATNET_INLINE T update_vector(T* __restrict v, const T* __restrict g, int64_t kp, T* gnorm) {
  const T gn = std::sqrt(dot(g, g, kp));
  *gnorm = gn;
  // g = 0 leaves f flat in v_i: keep v_i (the backward clamps and counts this case).
  if (!(gn > std::numeric_limits<T>::min())) return T(0);
  const T inv = T(-1) / gn;
  T change = 0;
  for (int64_t c = 0; c < kp; ++c) {
    const T next = inv * g[c];
    const T d = next - v[c];
    change += d * d;
    v[c] = next;
  }
  return change;
}

// Forward sweeps of one item. `dense`: g_i = C_i. V - C_ii v_i; otherwise
// g_i = Omega^T s_i - |s_i|^2 v_i with Omega = S^T V kept up to date.
template <typename T, bool dense>
SYMSATNET_INLINE int forward_item(const Problem<T>& p, const bool* is_input, T* V, T* gnorm) {
  const int64_t N = p.N, m = p.m, kp = p.kp;
  std::vector<T> g(kp), old(kp), omega(dense ? 0 : m * kp), sq(dense ? 0 : N);
  if (!dense) {
    for (int64_t j = 0; j < N; ++j) {
      add_outer(p.weights + j * m, V + j * kp, m, kp, omega.data());
      sq[j] = sum_squares(p.weights + j * m, m);
    }
  }
  int sweeps = 0;
  for (int64_t it = 0; it < p.max_iter; ++it) {
    T largest = 0;
    for (int64_t pos = 0; pos < N; ++pos) {
      const int64_t i = p.order[pos];
      if (i == 0 || is_input[i]) continue;
      T* v = V + i * kp;
      if (dense) {
        const T* row = p.weights + i * N;
        combine_rows(row, V, N, kp, g.data());
        const T cii = row[i] + p.prox_lam;
        for (int64_t c = 0; c < kp; ++c) g[c] -= cii * v[c];
        largest = std::max(largest, update_vector(v, g.data(), kp, gnorm + i));
      } else {
        const T* s = p.weights + i * m;
        combine_rows(s, omega.data(), m, kp, g.data());
        for (int64_t c = 0; c < kp; ++c) g[c] -= (sq[i] + p.prox_lam) * v[c];
        std::copy(v, v + kp, old.begin());
        largest = std::max(largest, update_vector(v, g.data(), kp, gnorm + i));
        for (int64_t c = 0; c < kp; ++c) old[c] = v[c] - old[c];
        add_outer(s, old.data(), m, kp, omega.data());
      }
    }
    sweeps = static_cast<int>(it + 1);
    if (largest < p.eps * p.eps) break;
  }
  return sweeps;
}

// Adjoint sweeps of one item: u_i = P_i (w_i - sum_{j != i} C_ij u_j) / gnorm_i.
// Stops when the largest change of a sweep is below eps relative to the largest
// |u_i|, so the result does not depend on the scale of the incoming gradient.
template <typename T, bool dense>
SYMSATNET_INLINE void adjoint_item(const Problem<T>& p, const bool* is_input, const T* V,
                                   const T* gnorm, const T* W, T* U) {
  const int64_t N = p.N, m = p.m, kp = p.kp;
  std::vector<T> h(kp), psi(dense ? 0 : m * kp), sq(dense ? 0 : N);
  if (!dense) {
    for (int64_t j = 0; j < N; ++j) sq[j] = sum_squares(p.weights + j * m, m);
  }
  for (int64_t it = 0; it < p.max_iter; ++it) {
    T largest = 0, biggest_norm = 0;
    for (int64_t pos = 0; pos < N; ++pos) {
      const int64_t i = p.order[pos];
      if (i == 0 || is_input[i]) continue;
      T* u = U + i * kp;
      const T* v = V + i * kp;
      const T* w = W + i * kp;
      T uii;
      if (dense) {
        const T* row = p.weights + i * N;
        combine_rows(row, U, N, kp, h.data());
        uii = row[i] + p.prox_lam;
      } else {
        combine_rows(p.weights + i * m, psi.data(), m, kp, h.data());
        uii = sq[i] + p.prox_lam;
      }
      // t = w - (h - C_ii u_i), then project out v_i and divide by |g_i|.
      for (int64_t c = 0; c < kp; ++c) h[c] = w[c] - h[c] + uii * u[c];
      const T along = dot(h.data(), v, kp);
      const T inv = T(1) / gnorm[i];
      T change = 0, norm = 0;
      for (int64_t c = 0; c < kp; ++c) {
        const T next = (h[c] - along * v[c]) * inv;
        const T d = next - u[c];
        change += d * d;
        norm += next * next;
        h[c] = d;  // keep the change for the Psi update
        u[c] = next;
      }
      if (!dense) add_outer(p.weights + i * m, h.data(), m, kp, psi.data());
      largest = std::max(largest, change);
      biggest_norm = std::max(biggest_norm, norm);
    }
    if (largest <= p.eps * p.eps * biggest_norm) break;
  }
}

// One instantiation of the batch loops per instruction set; the bodies above are
// inlined into each, so each is vectorised for its own target.
template <typename T, bool dense>
struct Batch {
  Problem<T> p;
  const bool* is_input;  // (B, N)
  const T* z;            // (B, N)
  const T* V_init;       // (B, N, k)
  T* V;                  // (B, N, kp)
  T* gnorm;              // (B, N)
  int* sweeps;           // (B,)
  const T* W;            // (B, N, kp), adjoint only
  T* U;                  // (B, N, kp), adjoint only
};

template <typename T, bool dense>
SYMSATNET_INLINE void forward_range(const Batch<T, dense>& a, int64_t begin, int64_t end) {
  const int64_t N = a.p.N, k = a.p.k, kp = a.p.kp;
  std::vector<T> scratch(kp);
  for (int64_t b = begin; b < end; ++b) {
    T* V = a.V + b * N * kp;
    init_item(a.z + b * N, a.is_input + b * N, a.V_init + b * N * k, N, k, kp, V, scratch);
    a.sweeps[b] = forward_item<T, dense>(a.p, a.is_input + b * N, V, a.gnorm + b * N);
  }
}

template <typename T, bool dense>
SYMSATNET_INLINE void adjoint_range(const Batch<T, dense>& a, int64_t begin, int64_t end) {
  const int64_t N = a.p.N, kp = a.p.kp;
  for (int64_t b = begin; b < end; ++b) {
    adjoint_item<T, dense>(a.p, a.is_input + b * N, a.V + b * N * kp, a.gnorm + b * N,
                           a.W + b * N * kp, a.U + b * N * kp);
  }
}

template <typename T, bool dense>
void forward_baseline(const Batch<T, dense>& a, int64_t b0, int64_t b1) { forward_range(a, b0, b1); }
template <typename T, bool dense>
void adjoint_baseline(const Batch<T, dense>& a, int64_t b0, int64_t b1) { adjoint_range(a, b0, b1); }
#if SYMSATNET_X86
template <typename T, bool dense>
SYMSATNET_TARGET_AVX2 void forward_avx2(const Batch<T, dense>& a, int64_t b0, int64_t b1) {
  forward_range(a, b0, b1);
}
template <typename T, bool dense>
SYMSATNET_TARGET_AVX2 void adjoint_avx2(const Batch<T, dense>& a, int64_t b0, int64_t b1) {
  adjoint_range(a, b0, b1);
}
template <typename T, bool dense>
SYMSATNET_TARGET_AVX512 void forward_avx512(const Batch<T, dense>& a, int64_t b0, int64_t b1) {
  forward_range(a, b0, b1);
}
template <typename T, bool dense>
SYMSATNET_TARGET_AVX512 void adjoint_avx512(const Batch<T, dense>& a, int64_t b0, int64_t b1) {
  adjoint_range(a, b0, b1);
}
#endif

template <typename T, bool dense>
void run_forward(const Batch<T, dense>& a, int64_t B) {
  auto fn = &forward_baseline<T, dense>;
#if SYMSATNET_X86
  switch (cpu_isa()) {
    case CpuIsa::avx512: fn = &forward_avx512<T, dense>; break;
    case CpuIsa::avx2: fn = &forward_avx2<T, dense>; break;
    default: break;
  }
#endif
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) { fn(a, b0, b1); });
}

template <typename T, bool dense>
void run_adjoint(const Batch<T, dense>& a, int64_t B) {
  auto fn = &adjoint_baseline<T, dense>;
#if SYMSATNET_X86
  switch (cpu_isa()) {
    case CpuIsa::avx512: fn = &adjoint_avx512<T, dense>; break;
    case CpuIsa::avx2: fn = &adjoint_avx2<T, dense>; break;
    default: break;
  }
#endif
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) { fn(a, b0, b1); });
}

at::Tensor pad_rank(const at::Tensor& t, int64_t kp) {
  const int64_t k = t.size(-1);
  return (k == kp ? t : at::constant_pad_nd(t, {0, kp - k})).contiguous();
}

template <bool dense>
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> forward_cpu(
    const at::Tensor& weights_in, const at::Tensor& z_in, const at::Tensor& is_input_in,
    const at::Tensor& V_init_in, const at::Tensor& order_in, int64_t max_iter, double eps,
    double prox_lam) {
  check_forward_args(weights_in, dense ? "C" : "S", dense, z_in, is_input_in, V_init_in,
                     order_in, max_iter, eps, prox_lam);
  const auto weights = weights_in.contiguous();
  const auto z = z_in.contiguous();
  const auto is_input = is_input_in.contiguous();
  const auto V_init = V_init_in.contiguous();
  const auto order = order_in.contiguous();
  const int64_t B = z.size(0), N = z.size(1), k = V_init.size(2), kp = padded_rank(k);
  const int64_t m = weights.size(1);
  auto V = at::zeros({B, N, kp}, weights.options());
  auto gnorm = at::zeros({B, N}, weights.options());
  auto sweeps = at::zeros({B}, weights.options().dtype(at::kInt));
  AT_DISPATCH_FLOATING_TYPES(weights.scalar_type(), "symsatnet_forward_cpu", [&] {
    Batch<scalar_t, dense> a{};
    a.p = {weights.data_ptr<scalar_t>(), N, m, k, kp, order.data_ptr<int64_t>(), max_iter,
           static_cast<scalar_t>(eps), static_cast<scalar_t>(prox_lam)};
    a.is_input = is_input.data_ptr<bool>();
    a.z = z.data_ptr<scalar_t>();
    a.V_init = V_init.data_ptr<scalar_t>();
    a.V = V.data_ptr<scalar_t>();
    a.gnorm = gnorm.data_ptr<scalar_t>();
    a.sweeps = sweeps.data_ptr<int>();
    run_forward(a, B);
  });
  V = V.narrow(2, 0, k).contiguous();
  // z of an output from the angle to v0; inputs pass through; truth is 1.
  auto cosine = -(V * V.narrow(1, 0, 1)).sum(2);
  auto z_out = at::where(is_input, z, at::arccos(cosine.clamp(-1, 1)) / M_PI);
  z_out.select(1, 0).fill_(1);
  return {V, z_out, gnorm, sweeps};
}

template <bool dense>
at::Tensor adjoint_cpu(const at::Tensor& weights_in, const at::Tensor& V_in,
                       const at::Tensor& gnorm_in, const at::Tensor& is_input_in,
                       const at::Tensor& W_in, const at::Tensor& order_in, int64_t max_iter,
                       double eps, double prox_lam) {
  check_adjoint_args(weights_in, dense ? "C" : "S", dense, V_in, gnorm_in, is_input_in, W_in,
                     order_in, max_iter, eps, prox_lam);
  const auto weights = weights_in.contiguous();
  const auto gnorm = gnorm_in.contiguous();
  const auto is_input = is_input_in.contiguous();
  const auto order = order_in.contiguous();
  const int64_t B = V_in.size(0), N = V_in.size(1), k = V_in.size(2), kp = padded_rank(k);
  const int64_t m = weights.size(1);
  const auto V = pad_rank(V_in, kp);
  const auto W = pad_rank(W_in, kp);
  auto U = at::zeros({B, N, kp}, weights.options());
  AT_DISPATCH_FLOATING_TYPES(weights.scalar_type(), "symsatnet_adjoint_cpu", [&] {
    Batch<scalar_t, dense> a{};
    a.p = {weights.data_ptr<scalar_t>(), N, m, k, kp, order.data_ptr<int64_t>(), max_iter,
           static_cast<scalar_t>(eps), static_cast<scalar_t>(prox_lam)};
    a.is_input = is_input.data_ptr<bool>();
    a.V = const_cast<scalar_t*>(V.data_ptr<scalar_t>());
    a.gnorm = const_cast<scalar_t*>(gnorm.data_ptr<scalar_t>());
    a.W = W.data_ptr<scalar_t>();
    a.U = U.data_ptr<scalar_t>();
    run_adjoint(a, B);
  });
  return U.narrow(2, 0, k).contiguous();
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> mix_forward_cpu(
    const at::Tensor& C, const at::Tensor& z, const at::Tensor& is_input,
    const at::Tensor& V_init, const at::Tensor& order, int64_t max_iter, double eps,
    double prox_lam) {
  return forward_cpu<true>(C, z, is_input, V_init, order, max_iter, eps, prox_lam);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> smix_forward_cpu(
    const at::Tensor& S, const at::Tensor& z, const at::Tensor& is_input,
    const at::Tensor& V_init, const at::Tensor& order, int64_t max_iter, double eps,
    double prox_lam) {
  return forward_cpu<false>(S, z, is_input, V_init, order, max_iter, eps, prox_lam);
}

at::Tensor mix_adjoint_cpu(const at::Tensor& C, const at::Tensor& V, const at::Tensor& gnorm,
                           const at::Tensor& is_input, const at::Tensor& W,
                           const at::Tensor& order, int64_t max_iter, double eps,
                           double prox_lam) {
  return adjoint_cpu<true>(C, V, gnorm, is_input, W, order, max_iter, eps, prox_lam);
}

at::Tensor smix_adjoint_cpu(const at::Tensor& S, const at::Tensor& V, const at::Tensor& gnorm,
                            const at::Tensor& is_input, const at::Tensor& W,
                            const at::Tensor& order, int64_t max_iter, double eps,
                            double prox_lam) {
  return adjoint_cpu<false>(S, V, gnorm, is_input, W, order, max_iter, eps, prox_lam);
}

}  // namespace symsatnet

TORCH_LIBRARY_IMPL(symsatnet, CPU, m) {
  m.impl("mix_forward", &symsatnet::mix_forward_cpu);
  m.impl("smix_forward", &symsatnet::smix_forward_cpu);
  m.impl("mix_adjoint", &symsatnet::mix_adjoint_cpu);
  m.impl("smix_adjoint", &symsatnet::smix_adjoint_cpu);
}
