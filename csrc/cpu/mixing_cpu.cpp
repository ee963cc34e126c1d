// CPU kernels of the mixing method: forward and adjoint sweeps, C-form and S-form.
//
// Each batch item is solved by one thread (at::parallel_for over the batch). The
// rank dimension is padded with zeros to a multiple of 16 so every inner loop runs
// over whole 64-byte vectors (zero lanes change no dot product or norm).
//
// Blocked Gauss-Seidel. A plain sweep reads all of V (or Omega = S^T V) once per
// update, so it is bound by cache bandwidth, not arithmetic. Here the fields g of
// the next kBlock outputs in the update order are computed together in one pass
// over V (each row of V loaded once feeds kBlock multiply-adds), from the values
// before the block; then the outputs are updated one after another, each first
// corrected by C_ij (v_j,new - v_j,old) for the outputs j updated earlier in the
// block. That is exactly the sequential sweep, reordered arithmetic aside. The
// S-form does the same with the rank-kBlock update of Omega after the block.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../symsatnet.h"
#include "kernel_common.h"
#include "simd.h"

namespace symsatnet {
namespace {

using namespace cpu;

constexpr int kBlock = 8;      // outputs whose fields are computed in one pass

// One pass of block_combine over NCH consecutive vectors at column c0.
template <typename T, int VB, int NCH>
SYMSATNET_INLINE void block_pass(const T* const* rows, const T* X, int64_t count, int64_t kp,
                                 int64_t c0, T* G) {
  constexpr int L = VB / sizeof(T);
  vec<T, VB> acc[kBlock][NCH];
#pragma GCC unroll 8
  for (int q = 0; q < kBlock; ++q)
#pragma GCC unroll 4
    for (int h = 0; h < NCH; ++h) acc[q][h] = vec<T, VB>{};
  const T* x = X + c0;
  for (int64_t j = 0; j < count; ++j, x += kp) {
    vec<T, VB> xv[NCH];
#pragma GCC unroll 4
    for (int h = 0; h < NCH; ++h) xv[h] = load_vec<T, VB>(x + h * L);
#pragma GCC unroll 8
    for (int q = 0; q < kBlock; ++q) {
      const T w = rows[q][j];
#pragma GCC unroll 4
      for (int h = 0; h < NCH; ++h) acc[q][h] += w * xv[h];
    }
  }
#pragma GCC unroll 8
  for (int q = 0; q < kBlock; ++q)
#pragma GCC unroll 4
    for (int h = 0; h < NCH; ++h) store_vec<T, VB>(G + q * kp + c0 + h * L, acc[q][h]);
}

// G[q, :] = sum_j rows[q][j] X[j, :] for the kBlock rows, X of shape (count, kp).
// With 64-byte vectors two chunks share a pass (16 of the 32 zmm registers hold
// accumulators); narrower targets have 16 registers, so one chunk per pass.
template <typename T, int VB>
SYMSATNET_INLINE void block_combine(const T* const* rows, const T* X, int64_t count, int64_t kp,
                                    T* G) {
  constexpr int L = VB / sizeof(T);
  int64_t c0 = 0;
  if constexpr (VB == 64) {
    for (; c0 + 2 * L <= kp; c0 += 2 * L) block_pass<T, VB, 2>(rows, X, count, kp, c0, G);
  }
  for (; c0 < kp; c0 += L) block_pass<T, VB, 1>(rows, X, count, kp, c0, G);
}

// Y[c, :] += sum_q coef[q][c] D[q, :] for every c (rank-kBlock update of Omega or Psi).
template <typename T, int VB>
SYMSATNET_INLINE void block_add_outer(const T* const* coef, const T* D, int64_t count,
                                      int64_t kp, T* Y) {
  constexpr int L = VB / sizeof(T);
  for (int64_t c0 = 0; c0 < kp; c0 += L) {
    vec<T, VB> d[kBlock];
#pragma GCC unroll 8
    for (int q = 0; q < kBlock; ++q) d[q] = load_vec<T, VB>(D + q * kp + c0);
    T* y = Y + c0;
    for (int64_t c = 0; c < count; ++c, y += kp) {
      vec<T, VB> sum = load_vec<T, VB>(y);
#pragma GCC unroll 8
      for (int q = 0; q < kBlock; ++q) sum += coef[q][c] * d[q];
      store_vec<T, VB>(y, sum);
    }
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

// One item's solve: forward (X = V) or adjoint (X = U) sweeps, dense (C) or
// clause (S) weights. Returns the number of sweeps run.
template <typename T, int VB, bool dense, bool adjoint>
SYMSATNET_INLINE int solve_item(const Problem<T>& p, const bool* is_input, T* X,
                                const T* V, T* gnorm, const T* W) {
  const int64_t N = p.N, m = p.m, kp = p.kp;
  const int64_t width = dense ? N : m;  // length of a weight row
  aligned_vector<T> G(kBlock * kp), D(kBlock * kp), zero_row(width, T(0));
  aligned_vector<T> Y(dense ? 0 : m * kp);
  std::vector<T> sq(dense ? 0 : N);
  std::vector<int64_t> outputs;
  outputs.reserve(N);
  for (int64_t pos = 0; pos < N; ++pos) {
    const int64_t i = p.order[pos];
    if (i != 0 && !is_input[i]) outputs.push_back(i);
  }
  if (!dense) {
    // Y = S^T X, and |s_i|^2 (the diagonal of C, which the update excludes).
    const T* no_rows[kBlock];
    for (int64_t j0 = 0; j0 < N; j0 += kBlock) {
      std::fill(D.begin(), D.end(), T(0));
      for (int q = 0; q < kBlock; ++q) {
        const bool real = j0 + q < N;
        no_rows[q] = real ? p.weights + (j0 + q) * m : zero_row.data();
        if (real) std::copy(X + (j0 + q) * kp, X + (j0 + q + 1) * kp, D.begin() + q * kp);
      }
      block_add_outer<T, VB>(no_rows, D.data(), m, kp, Y.data());
    }
    for (int64_t j = 0; j < N; ++j) sq[j] = dot(p.weights + j * m, p.weights + j * m, m);
  }
  const T* rows[kBlock];
  const int64_t count = static_cast<int64_t>(outputs.size());
  // S-form corrections need C_ij = <s_i, s_j> within each block; the blocks are
  // the same in every sweep, so these are computed once.
  std::vector<T> pairs(dense ? 0 : (count + kBlock - 1) / kBlock * kBlock * kBlock);
  for (int64_t b0 = 0; !dense && b0 < count; b0 += kBlock) {
    T* block_pairs = pairs.data() + b0 * kBlock;
    const int64_t* idx = outputs.data() + b0;
    for (int t = 0; t < kBlock && b0 + t < count; ++t)
      for (int s = 0; s < t; ++s)
        block_pairs[t * kBlock + s] = dot(p.weights + idx[t] * m, p.weights + idx[s] * m, m);
  }
  int sweeps = 0;
  for (int64_t it = 0; it < p.max_iter && !stop_requested(); ++it) {
    T largest = 0, biggest_norm = 0;
    for (int64_t b0 = 0; b0 < count; b0 += kBlock) {
      const int q_count = static_cast<int>(std::min<int64_t>(kBlock, count - b0));
      const int64_t* idx = outputs.data() + b0;
      for (int q = 0; q < kBlock; ++q)
        rows[q] = q < q_count ? p.weights + idx[q] * width : zero_row.data();
      block_combine<T, VB>(rows, dense ? X : Y.data(), width, kp, G.data());
      for (int t = 0; t < q_count; ++t) {
        const int64_t i = idx[t];
        T* g = G.data() + t * kp;
        // Corrections for the outputs already updated in this block.
        for (int s = 0; s < t; ++s) {
          const T c = dense ? rows[t][idx[s]] : pairs[b0 * kBlock + t * kBlock + s];
          const T* d = D.data() + s * kp;
          for (int64_t c0 = 0; c0 < kp; ++c0) g[c0] += c * d[c0];
        }
        const T diag = (dense ? rows[t][i] : sq[i]) + p.prox_lam;
        T* x = X + i * kp;
        T* d = D.data() + t * kp;
        T change = 0, norm = 0;
        if (!adjoint) {
          // g_i = sum_{j != i} C_ij v_j - prox_lam v_i; v_i <- -g_i / |g_i|.
          for (int64_t c0 = 0; c0 < kp; ++c0) g[c0] -= diag * x[c0];
          const T gn = std::sqrt(dot(g, g, kp));
          gnorm[i] = gn;
          // g = 0 leaves f flat in v_i: keep v_i (the backward clamps and counts it).
          const T inv = gn > std::numeric_limits<T>::min() ? T(-1) / gn : T(0);
          for (int64_t c0 = 0; c0 < kp; ++c0) {
            const T next = gn > std::numeric_limits<T>::min() ? inv * g[c0] : x[c0];
            d[c0] = next - x[c0];
            change += d[c0] * d[c0];
            x[c0] = next;
          }
        } else {
          // u_i = P_i (w_i - sum_{j != i} C_ij u_j + prox_lam u_i) / |g_i|.
          const T* v = V + i * kp;
          const T* w = W + i * kp;
          for (int64_t c0 = 0; c0 < kp; ++c0) g[c0] = w[c0] - g[c0] + diag * x[c0];
          const T along = dot(g, v, kp);
          const T inv = T(1) / gnorm[i];
          for (int64_t c0 = 0; c0 < kp; ++c0) {
            const T next = (g[c0] - along * v[c0]) * inv;
            d[c0] = next - x[c0];
            change += d[c0] * d[c0];
            norm += next * next;
            x[c0] = next;
          }
        }
        largest = std::max(largest, change);
        biggest_norm = std::max(biggest_norm, norm);
      }
      if (!dense) {
        for (int q = q_count; q < kBlock; ++q)
          std::fill(D.begin() + q * kp, D.begin() + (q + 1) * kp, T(0));
        block_add_outer<T, VB>(rows, D.data(), m, kp, Y.data());
      }
    }
    sweeps = static_cast<int>(it + 1);
    // Forward: no vector moved by eps. Adjoint: relative to the largest u_i, so the
    // stopping point does not depend on the scale of the incoming gradient.
    if (adjoint ? largest <= p.eps * p.eps * biggest_norm : largest < p.eps * p.eps) break;
  }
  return sweeps;
}

template <typename T, int VB, bool dense>
SYMSATNET_INLINE int forward_item(const Problem<T>& p, const bool* is_input, T* V, T* gnorm) {
  return solve_item<T, VB, dense, false>(p, is_input, V, V, gnorm, nullptr);
}

template <typename T, int VB, bool dense>
SYMSATNET_INLINE void adjoint_item(const Problem<T>& p, const bool* is_input, const T* V,
                                   const T* gnorm, const T* W, T* U) {
  solve_item<T, VB, dense, true>(p, is_input, U, V, const_cast<T*>(gnorm), W);
}

template <typename T, bool dense>
struct Batch : BatchArrays<T> {
  Problem<T> p;
};

template <typename T, int VB, bool dense>
SYMSATNET_INLINE void forward_range(const Batch<T, dense>& a, int64_t begin, int64_t end) {
  const int64_t N = a.p.N, k = a.p.k, kp = a.p.kp;
  std::vector<T> scratch(kp);
  for (int64_t b = begin; b < end; ++b) {
    T* V = a.V + b * N * kp;
    init_item(a.z + b * N, a.is_input + b * N, a.V_init + b * N * k, N, k, kp, V, scratch);
    a.sweeps[b] = forward_item<T, VB, dense>(a.p, a.is_input + b * N, V, a.gnorm + b * N);
  }
}

template <typename T, int VB, bool dense>
SYMSATNET_INLINE void adjoint_range(const Batch<T, dense>& a, int64_t begin, int64_t end) {
  const int64_t N = a.p.N, kp = a.p.kp;
  for (int64_t b = begin; b < end; ++b) {
    adjoint_item<T, VB, dense>(a.p, a.is_input + b * N, a.V + b * N * kp, a.gnorm + b * N,
                           a.W + b * N * kp, a.U + b * N * kp);
  }
}

// The batch loops as kernels of run_batch (kernel_common.h), which picks the
// instruction set.
template <typename T, bool dense>
struct ForwardKernel {
  template <int VB>
  SYMSATNET_INLINE static void range(const Batch<T, dense>& a, int64_t b0, int64_t b1) {
    forward_range<T, VB, dense>(a, b0, b1);
  }
};

template <typename T, bool dense>
struct AdjointKernel {
  template <int VB>
  SYMSATNET_INLINE static void range(const Batch<T, dense>& a, int64_t b0, int64_t b1) {
    adjoint_range<T, VB, dense>(a, b0, b1);
  }
};

template <typename T>
Problem<T> make_problem(const at::Tensor& weights, const at::Tensor& order, int64_t N, int64_t k,
                        int64_t kp, int64_t max_iter, double eps, double prox_lam) {
  return {weights.data_ptr<T>(), N, weights.size(1), k, kp, order.data_ptr<int64_t>(), max_iter,
          static_cast<T>(eps), static_cast<T>(prox_lam)};
}

// Binds a forward or adjoint call to the batch loops of `Kernel` and runs them.
template <template <typename, bool> class Kernel, bool dense, class Call>
void run_sweeps(const at::Tensor& weights, const Call& call, int64_t max_iter, double eps,
                double prox_lam) {
  AT_DISPATCH_FLOATING_TYPES(weights.scalar_type(), "symsatnet_mixing_cpu", [&] {
    Batch<scalar_t, dense> a{};
    a.p = make_problem<scalar_t>(weights, call.order, call.N, call.k, call.kp, max_iter, eps,
                                 prox_lam);
    call.bind(a);
    run_batch<Kernel<scalar_t, dense>>(a, call.B);
  });
}

}  // namespace

template <bool dense>
ForwardResult forward_cpu(const at::Tensor& weights_in, const at::Tensor& z,
                          const at::Tensor& is_input, const at::Tensor& V_init,
                          const at::Tensor& order, int64_t max_iter, double eps, double prox_lam) {
  check_forward_args(weights_in, dense ? "C" : "S", dense, z, is_input, V_init, order, max_iter,
                     eps, prox_lam);
  const auto weights = weights_in.contiguous();
  const ForwardCall call(z, is_input, V_init, order, weights.options());
  run_sweeps<ForwardKernel, dense>(weights, call, max_iter, eps, prox_lam);
  return call.finish();
}

template <bool dense>
at::Tensor adjoint_cpu(const at::Tensor& weights_in, const at::Tensor& V, const at::Tensor& gnorm,
                       const at::Tensor& is_input, const at::Tensor& W, const at::Tensor& order,
                       int64_t max_iter, double eps, double prox_lam) {
  check_adjoint_args(weights_in, dense ? "C" : "S", dense, V, gnorm, is_input, W, order, max_iter,
                     eps, prox_lam);
  const auto weights = weights_in.contiguous();
  const AdjointCall call(V, gnorm, is_input, W, order, weights.options());
  run_sweeps<AdjointKernel, dense>(weights, call, max_iter, eps, prox_lam);
  return call.finish();
}

// The CUDA kernels fall back to these for ranks beyond their registers.
template ForwardResult forward_cpu<true>(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t,
                                         double, double);
template ForwardResult forward_cpu<false>(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t,
                                          double, double);
template at::Tensor adjoint_cpu<true>(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                      int64_t, double, double);
template at::Tensor adjoint_cpu<false>(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                       int64_t, double, double);

}  // namespace symsatnet

TORCH_LIBRARY_IMPL(symsatnet, CPU, m) {
  SYMSATNET_IMPL_MIXING(m, symsatnet::forward_cpu, symsatnet::adjoint_cpu);
}
