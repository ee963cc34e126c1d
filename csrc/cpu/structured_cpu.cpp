// CPU kernels of the structured mixing ops (csrc/structured.h): forward and
// adjoint sweeps whose problem-block field is a short sum of class aggregates,
// and the aggregate pairings of the backward.
//
// Same conventions as the dense kernels in mixing_cpu.cpp (initial vectors,
// update order, prox_lam, stopping rules, outputs): only the way the field of a
// problem variable is summed differs. Each batch item is solved by one thread; its
// working buffer holds the N variable rows followed by one row per class
// aggregate, all padded to kp, so a term or a member is just a row index.
//
// The aggregates are rebuilt from the vectors before the first sweep and every
// kRebuildEvery sweeps after (a short program of vector additions, finer classes
// first) and kept up to date incrementally in between, so rounding cannot drift
// over a long solve.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "../structured.h"
#include "../symsatnet.h"
#include "kernel_common.h"
#include "simd.h"

namespace symsatnet {
namespace {

using namespace cpu;


// The structure of one call, shared by all items (row ids index the working buffer:
// 0..N-1 the variables, N.. the class aggregates).
template <typename T>
struct Plan {
  int64_t n, N, aux, classes, levels, kp, rows;  // rows = N + classes
  const int32_t* member_rows;  // (n, levels)
  const int32_t* term_offsets; // (n + 1)
  const int32_t* term_rows;    // (nnz)
  const int32_t* term_weights; // (nnz)
  const T* term_alpha;         // (nnz)
  const uint8_t* term_self;    // (nnz) whether the term's class contains its variable
  const T* diag;               // (n) C_pp as the terms count it (sum of alpha over term_self)
  const int32_t* refresh;      // (R, 2) rows (class, source)
  int64_t refresh_count;
  const T* truth;              // (n), forward only
  const T* aux_rows;           // (aux, N)
  const T* aux_cols;           // (n, aux) = aux_rows[:, 1:n+1]^T
  const int64_t* order;
  int64_t max_iter;
  T eps, prox_lam;
};

// Rebuild every class aggregate of X from its sources.
template <typename T, int VB>
SYMSATNET_INLINE void rebuild(const Plan<T>& p, T* X) {
  constexpr int L = VB / sizeof(T);
  const int64_t kp = p.kp;
  std::memset(X + p.N * kp, 0, sizeof(T) * p.classes * kp);
  for (int64_t r = 0; r < p.refresh_count; ++r) {
    T* dst = X + int64_t(p.refresh[2 * r]) * kp;
    const T* src = X + int64_t(p.refresh[2 * r + 1]) * kp;
    for (int64_t c0 = 0; c0 < kp; c0 += L) store_vec<T, VB>(dst + c0, load_vec<T, VB>(dst + c0) + load_vec<T, VB>(src + c0));
  }
}

// Columns [c0, c0 + NCH * L) of the field of problem variable q (row i = 1 + q)
// without the truth term: sum_t alpha_t X[row_t] - (diag_q + prox) x_i + sum_a C_ia x_a.
template <typename T, int VB, int NCH>
SYMSATNET_INLINE void problem_field_chunk(const Plan<T>& p, const T* X, int64_t q, int64_t c0,
                                          vec<T, VB>* acc) {
  constexpr int L = VB / sizeof(T);
  const int64_t kp = p.kp;
  const int32_t begin = p.term_offsets[q], end = p.term_offsets[q + 1];
  const int32_t* rows = p.term_rows;
  const T* alpha = p.term_alpha;
  // Two independent chains of multiply-adds halve the latency of the sum; with more
  // than 4 vectors per row the columns already give enough chains, and a second set
  // of accumulators would not fit in 16 registers.
  constexpr bool two_chains = NCH <= 4;
  vec<T, VB> odd[NCH];
#pragma GCC unroll 8
  for (int h = 0; h < NCH; ++h) odd[h] = vec<T, VB>{};
  int32_t t = begin;
  for (; two_chains && t + 1 < end; t += 2) {
    const T* x = X + int64_t(rows[t]) * kp + c0;
    const T* y = X + int64_t(rows[t + 1]) * kp + c0;
    const T w = alpha[t], v = alpha[t + 1];
#pragma GCC unroll 8
    for (int h = 0; h < NCH; ++h) {
      acc[h] += w * load_vec<T, VB>(x + h * L);
      odd[h] += v * load_vec<T, VB>(y + h * L);
    }
  }
  for (; t < end; ++t) {
    const T* x = X + int64_t(rows[t]) * kp + c0;
    const T w = alpha[t];
#pragma GCC unroll 8
    for (int h = 0; h < NCH; ++h) acc[h] += w * load_vec<T, VB>(x + h * L);
  }
#pragma GCC unroll 8
  for (int h = 0; h < NCH; ++h) acc[h] += odd[h];
  const T* xi = X + (1 + q) * kp + c0;
  const T self = p.diag[q] + p.prox_lam;
#pragma GCC unroll 8
  for (int h = 0; h < NCH; ++h) acc[h] -= self * load_vec<T, VB>(xi + h * L);
  const T* column = p.aux_cols + q * p.aux;
  for (int64_t a = 0; a < p.aux; ++a) {
    const T* x = X + (p.n + 1 + a) * kp + c0;
    const T w = column[a];
#pragma GCC unroll 8
    for (int h = 0; h < NCH; ++h) acc[h] += w * load_vec<T, VB>(x + h * L);
  }
}

template <typename T, int VB, int NCH>
SYMSATNET_INLINE void problem_field_group(const Plan<T>& p, const T* X, int64_t q, int64_t c0,
                                          T truth, const T* v0, T* G) {
  constexpr int L = VB / sizeof(T);
  vec<T, VB> acc[NCH];
#pragma GCC unroll 8
  for (int h = 0; h < NCH; ++h) acc[h] = truth * load_vec<T, VB>(v0 + c0 + h * L);
  problem_field_chunk<T, VB, NCH>(p, X, q, c0, acc);
#pragma GCC unroll 8
  for (int h = 0; h < NCH; ++h) store_vec<T, VB>(G + c0 + h * L, acc[h]);
}

// G = field of problem variable q (truth * v0 added when truth != 0), all kp columns.
template <typename T, int VB>
SYMSATNET_INLINE void problem_field(const Plan<T>& p, const T* X, int64_t q, T truth,
                                    const T* v0, T* G) {
  constexpr int L = VB / sizeof(T);
  const int64_t kp = p.kp;
  int64_t c0 = 0;
  for (; c0 + 4 * L <= kp; c0 += 4 * L) problem_field_group<T, VB, 4>(p, X, q, c0, truth, v0, G);
  switch ((kp - c0) / L) {
    case 3: problem_field_group<T, VB, 3>(p, X, q, c0, truth, v0, G); break;
    case 2: problem_field_group<T, VB, 2>(p, X, q, c0, truth, v0, G); break;
    case 1: problem_field_group<T, VB, 1>(p, X, q, c0, truth, v0, G); break;
    default: break;
  }
}

// G = sum_{j != i} C_ij x_j - prox x_i for auxiliary variable i (a dense row).
template <typename T, int VB>
SYMSATNET_INLINE void aux_field(const Plan<T>& p, const T* X, int64_t i, T* G) {
  constexpr int L = VB / sizeof(T);
  const int64_t kp = p.kp;
  const T* row = p.aux_rows + (i - p.n - 1) * p.N;
  for (int64_t c0 = 0; c0 < kp; c0 += L) store_vec<T, VB>(G + c0, vec<T, VB>{});
  for (int64_t j = 0; j < p.N; ++j) {
    const T w = j == i ? -p.prox_lam : row[j];
    const T* x = X + j * kp;
    for (int64_t c0 = 0; c0 < kp; c0 += L) store_vec<T, VB>(G + c0, load_vec<T, VB>(G + c0) + w * load_vec<T, VB>(x + c0));
  }
}

// Add D to the aggregates of every class containing problem variable q.
template <typename T, int VB>
SYMSATNET_INLINE void scatter(const Plan<T>& p, int64_t q, const T* D, T* X) {
  constexpr int L = VB / sizeof(T);
  const int64_t kp = p.kp;
  const int32_t* members = p.member_rows + q * p.levels;
  for (int64_t l = 0; l < p.levels; ++l) {
    T* y = X + int64_t(members[l]) * kp;
    for (int64_t c0 = 0; c0 < kp; c0 += L) store_vec<T, VB>(y + c0, load_vec<T, VB>(y + c0) + load_vec<T, VB>(D + c0));
  }
}

// Horizontal sum inside the registers (a lane loop would go through the stack):
// add the two halves until one lane is left.
template <typename T, int VB>
SYMSATNET_INLINE T hsum(vec<T, VB> v) {
  if constexpr (VB == sizeof(T)) {
    return v[0];
  } else {
    vec<T, VB / 2> low, high;
    __builtin_memcpy(&low, &v, VB / 2);
    __builtin_memcpy(&high, reinterpret_cast<const char*>(&v) + VB / 2, VB / 2);
    return hsum<T, VB / 2>(low + high);
  }
}

// The update of problem variable i when the padded rank is NCH whole vectors: field,
// new vector and aggregate updates all stay in registers. Scratch arrays would be
// stored as 64-byte vectors and read back at once, which the store-to-load forwarding
// of processors that split 512-bit stores handles badly; this is the hot path.
template <typename T, int VB, int NCH, bool adjoint>
SYMSATNET_INLINE void update_problem(const Plan<T>& p, T* X, int64_t i, const T* V, T* gnorm,
                                     const T* W, T& change, T& norm) {
  constexpr int L = VB / sizeof(T);
  const int64_t kp = p.kp, q = i - 1;
  vec<T, VB> acc[NCH], d[NCH];
  if (adjoint) {
#pragma GCC unroll 8
    for (int h = 0; h < NCH; ++h) acc[h] = vec<T, VB>{};
  } else {
    const T truth = p.truth[q];
#pragma GCC unroll 8
    for (int h = 0; h < NCH; ++h) acc[h] = truth * load_vec<T, VB>(X + h * L);
  }
  problem_field_chunk<T, VB, NCH>(p, X, q, 0, acc);
  T* x = X + i * kp;
  vec<T, VB> moved{};
  if (!adjoint) {
    vec<T, VB> squares{};
#pragma GCC unroll 8
    for (int h = 0; h < NCH; ++h) squares += acc[h] * acc[h];
    const T gn = std::sqrt(hsum<T, VB>(squares));
    gnorm[i] = gn;
    // g = 0 leaves f flat in v_i: keep v_i (the backward clamps and counts it).
    if (gn > std::numeric_limits<T>::min()) {
      const T inv = T(-1) / gn;
#pragma GCC unroll 8
      for (int h = 0; h < NCH; ++h) {
        const vec<T, VB> next = inv * acc[h];
        d[h] = next - load_vec<T, VB>(x + h * L);
        moved += d[h] * d[h];
        store_vec<T, VB>(x + h * L, next);
      }
    } else {
#pragma GCC unroll 8
      for (int h = 0; h < NCH; ++h) d[h] = vec<T, VB>{};
    }
  } else {
    // u_i = P_i (w_i - sum_{j != i} C_ij u_j + prox_lam u_i) / |g_i|.
    const T* v = V + i * kp;
    const T* w = W + i * kp;
    vec<T, VB> along{}, size{};
#pragma GCC unroll 8
    for (int h = 0; h < NCH; ++h) {
      acc[h] = load_vec<T, VB>(w + h * L) - acc[h];
      along += acc[h] * load_vec<T, VB>(v + h * L);
    }
    const T projection = hsum<T, VB>(along), inv = T(1) / gnorm[i];
#pragma GCC unroll 8
    for (int h = 0; h < NCH; ++h) {
      const vec<T, VB> next = (acc[h] - projection * load_vec<T, VB>(v + h * L)) * inv;
      d[h] = next - load_vec<T, VB>(x + h * L);
      moved += d[h] * d[h];
      size += next * next;
      store_vec<T, VB>(x + h * L, next);
    }
    norm = hsum<T, VB>(size);
  }
  change = hsum<T, VB>(moved);
  const int32_t* members = p.member_rows + q * p.levels;
  for (int64_t l = 0; l < p.levels; ++l) {
    T* y = X + int64_t(members[l]) * kp;
#pragma GCC unroll 8
    for (int h = 0; h < NCH; ++h) store_vec<T, VB>(y + h * L, load_vec<T, VB>(y + h * L) + d[h]);
  }
}

// Aggregates are rebuilt exactly every this many sweeps (and before the first), so
// rounding in the incremental updates cannot accumulate over a long solve.
constexpr int64_t kRebuildEvery = 8;

// One item's sweeps: forward (X holds V) or adjoint (X holds U; V, gnorm, W given).
template <typename T, int VB, bool adjoint>
SYMSATNET_INLINE int solve_item(const Plan<T>& p, const bool* is_input, T* X, const T* V,
                                T* gnorm, const T* W) {
  constexpr int L = VB / sizeof(T);
  const int64_t kp = p.kp, n = p.n;
  aligned_vector<T> G(kp), D(kp);
  std::vector<int64_t> outputs;
  outputs.reserve(p.N);
  for (int64_t pos = 0; pos < p.N; ++pos) {
    const int64_t i = p.order[pos];
    if (i != 0 && !is_input[i]) outputs.push_back(i);
  }
  const T* v0 = adjoint ? V : X;  // u0 = 0: the adjoint has no truth term
  const int64_t chunks = kp % L == 0 ? kp / L : 0;
  int sweeps = 0;
  for (int64_t it = 0; it < p.max_iter && !stop_requested(); ++it) {
    if (it % kRebuildEvery == 0) rebuild<T, VB>(p, X);
    T largest = 0, biggest_norm = 0;
    for (const int64_t i : outputs) {
      const bool problem = i <= n;
      if (problem && chunks >= 1 && chunks <= 8) {
        T change = 0, norm = 0;
        switch (chunks) {
          case 1: update_problem<T, VB, 1, adjoint>(p, X, i, V, gnorm, W, change, norm); break;
          case 2: update_problem<T, VB, 2, adjoint>(p, X, i, V, gnorm, W, change, norm); break;
          case 3: update_problem<T, VB, 3, adjoint>(p, X, i, V, gnorm, W, change, norm); break;
          case 4: update_problem<T, VB, 4, adjoint>(p, X, i, V, gnorm, W, change, norm); break;
          case 5: update_problem<T, VB, 5, adjoint>(p, X, i, V, gnorm, W, change, norm); break;
          case 6: update_problem<T, VB, 6, adjoint>(p, X, i, V, gnorm, W, change, norm); break;
          case 7: update_problem<T, VB, 7, adjoint>(p, X, i, V, gnorm, W, change, norm); break;
          default: update_problem<T, VB, 8, adjoint>(p, X, i, V, gnorm, W, change, norm); break;
        }
        largest = std::max(largest, change);
        biggest_norm = std::max(biggest_norm, norm);
        continue;
      }
      if (problem) {
        problem_field<T, VB>(p, X, i - 1, adjoint ? T(0) : p.truth[i - 1], v0, G.data());
      } else {
        aux_field<T, VB>(p, X, i, G.data());
      }
      T* x = X + i * kp;
      T change = 0, norm = 0;
      if (!adjoint) {
        const T gn = std::sqrt(dot(G.data(), G.data(), kp));
        gnorm[i] = gn;
        // g = 0 leaves f flat in v_i: keep v_i (the backward clamps and counts it).
        if (gn > std::numeric_limits<T>::min()) {
          const T inv = T(-1) / gn;
          vec<T, VB> moved{};
          for (int64_t c0 = 0; c0 < kp; c0 += L) {
            const vec<T, VB> next = inv * load_vec<T, VB>(G.data() + c0);
            const vec<T, VB> d = next - load_vec<T, VB>(x + c0);
            store_vec<T, VB>(D.data() + c0, d);
            moved += d * d;
            store_vec<T, VB>(x + c0, next);
          }
          change = hsum<T, VB>(moved);
        } else {
          std::fill(D.begin(), D.end(), T(0));
        }
      } else {
        // u_i = P_i (w_i - sum_{j != i} C_ij u_j + prox_lam u_i) / |g_i|.
        const T* v = V + i * kp;
        const T* w = W + i * kp;
        for (int64_t c0 = 0; c0 < kp; c0 += L) store_vec<T, VB>(G.data() + c0, load_vec<T, VB>(w + c0) - load_vec<T, VB>(G.data() + c0));
        const T along = dot(G.data(), v, kp);
        const T inv = T(1) / gnorm[i];
        vec<T, VB> moved{}, size{};
        for (int64_t c0 = 0; c0 < kp; c0 += L) {
          const vec<T, VB> next = (load_vec<T, VB>(G.data() + c0) - along * load_vec<T, VB>(v + c0)) * inv;
          const vec<T, VB> d = next - load_vec<T, VB>(x + c0);
          store_vec<T, VB>(D.data() + c0, d);
          moved += d * d;
          size += next * next;
          store_vec<T, VB>(x + c0, next);
        }
        change = hsum<T, VB>(moved);
        norm = hsum<T, VB>(size);
      }
      if (problem) scatter<T, VB>(p, i - 1, D.data(), X);
      largest = std::max(largest, change);
      biggest_norm = std::max(biggest_norm, norm);
    }
    sweeps = static_cast<int>(it + 1);
    if (adjoint ? largest <= p.eps * p.eps * biggest_norm : largest < p.eps * p.eps) break;
  }
  return sweeps;
}

// Backward pieces of one item: pairings (W) and field (n, kp) of the problem block.
template <typename T, int VB>
SYMSATNET_INLINE void pair_item(const Plan<T>& p, const bool* is_input, T* XV, T* XU,
                                T* pairings, T* field) {
  constexpr int L = VB / sizeof(T);
  const int64_t kp = p.kp;
  rebuild<T, VB>(p, XV);
  rebuild<T, VB>(p, XU);
  for (int64_t q = 0; q < p.n; ++q) {
    const T* u = XU + (1 + q) * kp;
    // The problem block applied to U, without the diagonal (prox_lam is 0 here).
    problem_field<T, VB>(p, XU, q, T(0), XU, field + q * kp);
    if (is_input[1 + q]) continue;  // u_q = 0: no pairings
    const T self = dot(u, XV + (1 + q) * kp, kp);
    for (int32_t t = p.term_offsets[q]; t < p.term_offsets[q + 1]; ++t) {
      const T* a = XV + int64_t(p.term_rows[t]) * kp;
      vec<T, VB> acc{};
      for (int64_t c0 = 0; c0 < kp; c0 += L) acc += load_vec<T, VB>(u + c0) * load_vec<T, VB>(a + c0);
      const T s = hsum<T, VB>(acc);
      pairings[p.term_weights[t]] += s - (p.term_self[t] ? self : T(0));
    }
  }
}

template <typename T>
struct Batch : BatchArrays<T> {
  Plan<T> p;
  int64_t k = 0;
  T* pairings = nullptr;  // (B, weights), pairings
  T* field = nullptr;     // (B, n, kp), pairings
  int64_t num_weights = 0;
};

template <typename T, int VB>
SYMSATNET_INLINE void forward_range(const Batch<T>& a, int64_t begin, int64_t end) {
  const Plan<T>& p = a.p;
  const int64_t N = p.N, kp = p.kp;
  std::vector<T> scratch(kp);
  aligned_vector<T> X(p.rows * kp);
  for (int64_t b = begin; b < end; ++b) {
    init_item(a.z + b * N, a.is_input + b * N, a.V_init + b * N * a.k, N, a.k, kp, X.data(),
              scratch);
    a.sweeps[b] = solve_item<T, VB, false>(p, a.is_input + b * N, X.data(), nullptr,
                                       a.gnorm + b * N, nullptr);
    std::copy(X.begin(), X.begin() + N * kp, a.V + b * N * kp);
  }
}

template <typename T, int VB>
SYMSATNET_INLINE void adjoint_range(const Batch<T>& a, int64_t begin, int64_t end) {
  const Plan<T>& p = a.p;
  const int64_t N = p.N, kp = p.kp;
  aligned_vector<T> X(p.rows * kp);
  for (int64_t b = begin; b < end; ++b) {
    std::fill(X.begin(), X.end(), T(0));
    solve_item<T, VB, true>(p, a.is_input + b * N, X.data(), a.V + b * N * kp, a.gnorm + b * N,
                        a.W + b * N * kp);
    std::copy(X.begin(), X.begin() + N * kp, a.U + b * N * kp);
  }
}

template <typename T, int VB>
SYMSATNET_INLINE void pairings_range(const Batch<T>& a, int64_t begin, int64_t end) {
  const Plan<T>& p = a.p;
  const int64_t N = p.N, kp = p.kp;
  aligned_vector<T> XV(p.rows * kp), XU(p.rows * kp);
  for (int64_t b = begin; b < end; ++b) {
    std::copy(a.V + b * N * kp, a.V + (b + 1) * N * kp, XV.begin());
    std::copy(a.U + b * N * kp, a.U + (b + 1) * N * kp, XU.begin());
    pair_item<T, VB>(p, a.is_input + b * N, XV.data(), XU.data(), a.pairings + b * a.num_weights,
              a.field + b * p.n * kp);
  }
}

enum class Kind { forward, adjoint, pairings };

// The batch loops as one kernel of run_batch (kernel_common.h), which picks the
// instruction set.
template <typename T, Kind kind>
struct RangeKernel {
  template <int VB>
  SYMSATNET_INLINE static void range(const Batch<T>& a, int64_t b0, int64_t b1) {
    if constexpr (kind == Kind::forward) forward_range<T, VB>(a, b0, b1);
    if constexpr (kind == Kind::adjoint) adjoint_range<T, VB>(a, b0, b1);
    if constexpr (kind == Kind::pairings) pairings_range<T, VB>(a, b0, b1);
  }
};

// Host-side tables of one call: the node ids turned into buffer rows, the per-term
// weights gathered, the diagonal each variable's terms count.
struct Tables {
  at::Tensor member_rows, term_offsets, term_rows, term_weights, term_self, refresh;
  int64_t classes;
};

at::Tensor node_rows(const at::Tensor& nodes, int64_t n, int64_t N) {
  // node < n: variable row 1 + node; class node n + c: row N + c.
  return at::where(nodes < n, nodes + 1, nodes - n + N).to(at::kInt).contiguous();
}

Tables make_tables(const at::Tensor& members, const at::Tensor& term_offsets,
                   const at::Tensor& term_nodes, const at::Tensor& term_weights,
                   const at::Tensor& refresh, int64_t N) {
  const int64_t n = members.size(0);
  Tables t;
  const auto members_long = members.to(at::kLong);
  t.classes = members.numel() ? std::max<int64_t>(members_long.max().item<int64_t>() + 1 - n, 0) : 0;
  t.member_rows = node_rows(members_long, n, N);
  t.term_offsets = term_offsets.contiguous();
  const auto nodes = term_nodes.to(at::kLong);
  t.term_rows = node_rows(nodes, n, N);
  t.term_weights = term_weights.contiguous();
  // A term counts C_pp when its class is one of the classes containing p.
  const auto counts = term_offsets.to(at::kLong).diff();
  const auto owner = at::repeat_interleave(at::arange(n, counts.options()), counts);
  auto self = at::zeros({nodes.size(0)}, nodes.options().dtype(at::kBool));
  if (members.size(1) > 0 && nodes.size(0) > 0)
    self = (members_long.index_select(0, owner) == nodes.unsqueeze(1)).any(1);
  t.term_self = self.to(at::kByte).contiguous();
  t.refresh = node_rows(refresh.to(at::kLong), n, N);
  return t;
}

// Everything the plan of one call points into: the tables, the per-term weights and the
// diagonal they count (in the weights' dtype), the aux rows and their columns.
struct CallTables {
  Tables t;
  at::Tensor alpha, diag, aux_rows, aux_cols;
  int64_t n, N;
};

// `aux_rows` undefined: no aux rows are read (the pairings add the aux share in Python).
CallTables prepare(const at::Tensor& weights, const at::Tensor& aux_rows,
                   const at::Tensor& members, const at::Tensor& term_offsets,
                   const at::Tensor& term_nodes, const at::Tensor& term_weights,
                   const at::Tensor& refresh, int64_t N) {
  CallTables c;
  c.n = members.size(0);
  c.N = N;
  c.t = make_tables(members, term_offsets, term_nodes, term_weights, refresh, N);
  c.alpha = weights.contiguous().index_select(0, c.t.term_weights.to(at::kLong)).contiguous();
  const auto counts = c.t.term_offsets.to(at::kLong).diff();
  const auto owner = at::repeat_interleave(at::arange(c.n, counts.options()), counts);
  auto diag = at::zeros({c.n}, weights.options());
  diag.index_add_(0, owner, c.alpha * c.t.term_self.to(weights.scalar_type()));
  c.diag = diag.contiguous();
  if (aux_rows.defined()) {
    c.aux_rows = aux_rows.contiguous();
    c.aux_cols = c.aux_rows.narrow(1, 1, c.n).t().contiguous();
  } else {
    c.aux_rows = at::zeros({0, N}, weights.options());
    c.aux_cols = at::zeros({c.n, 0}, weights.options());
  }
  return c;
}

template <typename T>
Plan<T> make_plan(const CallTables& c, const at::Tensor& truth, const at::Tensor& order,
                  int64_t kp, int64_t max_iter, double eps, double prox_lam) {
  Plan<T> p;
  p.n = c.n;
  p.N = c.N;
  p.aux = c.aux_rows.size(0);
  p.classes = c.t.classes;
  p.levels = c.t.member_rows.size(1);
  p.kp = kp;
  p.rows = c.N + c.t.classes;
  p.member_rows = c.t.member_rows.data_ptr<int32_t>();
  p.term_offsets = c.t.term_offsets.data_ptr<int32_t>();
  p.term_rows = c.t.term_rows.data_ptr<int32_t>();
  p.term_weights = c.t.term_weights.data_ptr<int32_t>();
  p.term_alpha = c.alpha.data_ptr<T>();
  p.term_self = c.t.term_self.data_ptr<uint8_t>();
  p.diag = c.diag.data_ptr<T>();
  p.refresh = c.t.refresh.data_ptr<int32_t>();
  p.refresh_count = c.t.refresh.size(0);
  p.truth = truth.defined() ? truth.data_ptr<T>() : nullptr;
  p.aux_rows = c.aux_rows.data_ptr<T>();
  p.aux_cols = c.aux_cols.data_ptr<T>();
  p.order = order.defined() ? order.data_ptr<int64_t>() : nullptr;
  p.max_iter = max_iter;
  p.eps = static_cast<T>(eps);
  p.prox_lam = static_cast<T>(prox_lam);
  return p;
}

}  // namespace

ForwardResult structured_forward_cpu(
    const at::Tensor& weights, const at::Tensor& truth_in, const at::Tensor& aux_rows,
    const at::Tensor& members, const at::Tensor& term_offsets, const at::Tensor& term_nodes,
    const at::Tensor& term_weights, const at::Tensor& refresh, const at::Tensor& z,
    const at::Tensor& is_input, const at::Tensor& V_init, const at::Tensor& order,
    int64_t max_iter, double eps, double prox_lam) {
  TORCH_CHECK(z.dim() == 2, "symsatnet: z must be (batch, N), got shape ", z.sizes());
  const int64_t N = z.size(1);
  // The state checks of the dense op, with an empty stand-in for its weights.
  check_forward_args(at::empty({N, 0}, z.options()), "the state", false, z, is_input, V_init,
                     order, max_iter, eps, prox_lam);
  check_structure_args(weights, truth_in, aux_rows, members, term_offsets, term_nodes,
                       term_weights, refresh, N, true);
  TORCH_CHECK(weights.scalar_type() == z.scalar_type(),
              "symsatnet: the structured weights and z must have one dtype");
  const ForwardCall call(z, is_input, V_init, order, z.options());
  const auto truth = truth_in.contiguous();
  const CallTables c = prepare(weights, aux_rows, members, term_offsets, term_nodes, term_weights,
                               refresh, N);
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "symsatnet_structured_forward_cpu", [&] {
    Batch<scalar_t> a{};
    a.p = make_plan<scalar_t>(c, truth, call.order, call.kp, max_iter, eps, prox_lam);
    a.k = call.k;
    call.bind(a);
    run_batch<RangeKernel<scalar_t, Kind::forward>>(a, call.B);
  });
  return call.finish();
}

at::Tensor structured_adjoint_cpu(
    const at::Tensor& weights, const at::Tensor& aux_rows, const at::Tensor& members,
    const at::Tensor& term_offsets, const at::Tensor& term_nodes, const at::Tensor& term_weights,
    const at::Tensor& refresh, const at::Tensor& V, const at::Tensor& gnorm,
    const at::Tensor& is_input, const at::Tensor& W, const at::Tensor& order, int64_t max_iter,
    double eps, double prox_lam) {
  TORCH_CHECK(V.dim() == 3, "symsatnet: V must be (batch, N, k), got shape ", V.sizes());
  const int64_t N = V.size(1);
  check_adjoint_args(at::empty({N, 0}, V.options()), "the state", false, V, gnorm, is_input, W,
                     order, max_iter, eps, prox_lam);
  check_structure_args(weights, at::Tensor(), aux_rows, members, term_offsets, term_nodes,
                       term_weights, refresh, N, false);
  TORCH_CHECK(weights.scalar_type() == V.scalar_type(),
              "symsatnet: the structured weights and V must have one dtype");
  const AdjointCall call(V, gnorm, is_input, W, order, V.options());
  const CallTables c = prepare(weights, aux_rows, members, term_offsets, term_nodes, term_weights,
                               refresh, N);
  AT_DISPATCH_FLOATING_TYPES(V.scalar_type(), "symsatnet_structured_adjoint_cpu", [&] {
    Batch<scalar_t> a{};
    a.p = make_plan<scalar_t>(c, at::Tensor(), call.order, call.kp, max_iter, eps, prox_lam);
    call.bind(a);
    run_batch<RangeKernel<scalar_t, Kind::adjoint>>(a, call.B);
  });
  return call.finish();
}

std::tuple<at::Tensor, at::Tensor> structured_pairings_cpu(
    const at::Tensor& weights, const at::Tensor& members, const at::Tensor& term_offsets,
    const at::Tensor& term_nodes, const at::Tensor& term_weights, const at::Tensor& refresh,
    const at::Tensor& V_in, const at::Tensor& U_in, const at::Tensor& is_input_in) {
  TORCH_CHECK(V_in.dim() == 3 && U_in.sizes() == V_in.sizes(),
              "symsatnet: V and U must be (batch, N, k) of one shape, got ", V_in.sizes(), " and ",
              U_in.sizes());
  TORCH_CHECK(V_in.scalar_type() == weights.scalar_type() && U_in.scalar_type() == weights.scalar_type(),
              "symsatnet: V, U and the structured weights must have one dtype");
  const int64_t B = V_in.size(0), N = V_in.size(1), k = V_in.size(2), kp = padded_rank(k);
  TORCH_CHECK(is_input_in.scalar_type() == at::kBool && is_input_in.dim() == 2 &&
                  is_input_in.size(0) == B && is_input_in.size(1) == N,
              "symsatnet: is_input must be a bool tensor of shape (", B, ", ", N, ")");
  const auto no_aux = at::zeros({N - 1 - members.size(0), N}, V_in.options());
  check_structure_args(weights, at::Tensor(), no_aux, members, term_offsets, term_nodes,
                       term_weights, refresh, N, false);
  const auto is_input = is_input_in.contiguous();
  const auto V = pad_rank(V_in, kp);
  const auto U = pad_rank(U_in, kp);
  // The aux columns of the field are added in Python: the plan reads no aux rows.
  const CallTables c = prepare(weights, at::Tensor(), members, term_offsets, term_nodes,
                               term_weights, refresh, N);
  auto pairings = at::zeros({B, weights.size(0)}, V.options());
  auto field = at::zeros({B, c.n, kp}, V.options());
  AT_DISPATCH_FLOATING_TYPES(V.scalar_type(), "symsatnet_structured_pairings_cpu", [&] {
    Batch<scalar_t> a{};
    a.p = make_plan<scalar_t>(c, at::Tensor(), at::Tensor(), kp, 1, 0.0, 0.0);
    a.is_input = is_input.data_ptr<bool>();
    a.V = const_cast<scalar_t*>(V.data_ptr<scalar_t>());
    a.U = const_cast<scalar_t*>(U.data_ptr<scalar_t>());
    a.pairings = pairings.data_ptr<scalar_t>();
    a.field = field.data_ptr<scalar_t>();
    a.num_weights = weights.size(0);
    run_batch<RangeKernel<scalar_t, Kind::pairings>>(a, B);
  });
  return {pairings, field.narrow(2, 0, k).contiguous()};
}

}  // namespace symsatnet

TORCH_LIBRARY_IMPL(symsatnet, CPU, m) {
  m.impl("structured_forward", &symsatnet::structured_forward_cpu);
  m.impl("structured_adjoint", &symsatnet::structured_adjoint_cpu);
  m.impl("structured_pairings", &symsatnet::structured_pairings_cpu);
}
