// CUDA kernels of the mixing method: forward and adjoint sweeps, C-form and S-form.
// Same semantics as csrc/cpu/mixing_cpu.cpp up to rounding (summation order differs).
//
// Design.
//  * Gauss-Seidel is sequential within a batch item, so one thread block solves one
//    item; items run on different SMs. Starting vectors (an embarrassingly parallel
//    step) and, in S-form, Omega = S^T V are computed by separate small kernels so
//    the sweep kernel spends its block only on the sequential part.
//  * Inside the block, a "group" of G lanes (G = 32, or the next power of two >= k for
//    k < 32, so small ranks do not leave lanes idle) holds the k components of one
//    row, lane `comp` owning components comp, comp + G, ... (KT registers; KT is a
//    template parameter so the components live in registers). Groups are numbered as
//    "slots"; row j (of V/U in C-form, of Omega/Psi in S-form) belongs to slot
//    j % nslots. Only its owner thread ever reads or writes a given component of a
//    row, so the rows need no synchronisation at all. Each update is then one pass
//    over the owned rows (a partial field per slot), a shuffle reduction over the
//    groups of a warp, and one cross-warp reduction through a double-buffered shared
//    array of (warps + 1) x k values: the extra row carries the old vector of the
//    updated variable from its owner to everybody. Every thread then computes the
//    same new vector redundantly (the same values summed in the same order give
//    bitwise the same result), which costs one __syncthreads per update instead of
//    two, and makes the stopping decision block-uniform without another barrier.
//    Double buffering is what makes one barrier enough: buffer t % 2 is rewritten at
//    update t + 2 only after everyone has passed barrier t + 1, i.e. finished reading.
//  * In S-form the rank-one update Omega += s_i (v_new - v_old) is deferred and
//    fused into the next update's pass over Omega (each owner applies it to its rows
//    just before reading them), so Omega is streamed once per update, not twice.
//  * Shared memory is bounded whatever N and m are: the reduction buffers take
//    2 (warps + 1) k values; the rows (V in C-form, Omega in S-form) are cached in
//    shared memory as far as the opt-in limit allows and the rest stay in global
//    memory (L2-resident for realistic sizes). Nothing is ever sized by N or m alone,
//    so S-form with m = 4096 launches like m = 100 does, only with fewer rows cached.
//  * Ranks above 256 (far beyond what the relaxation needs) run on the CPU kernels;
//    keeping KT <= 8 register components per thread avoids spills for every k used
//    in practice.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
// c10/cuda rather than ATen/cuda/CUDAContext.h: the latter pulls in the cuBLAS and
// cuSPARSE headers, which this file does not need (at::cuda::getCurrentCUDAStream is
// c10::cuda::getCurrentCUDAStream).
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>
#include <torch/library.h>

#include <algorithm>
#include <cfloat>
#include <cstdint>

#include "../symsatnet.h"

namespace symsatnet {
namespace {

constexpr int kWarp = 32;
constexpr int kMaxWarps = 8;     // block of at most 256 threads (see choose_warps)
constexpr int kInitThreads = 256;
constexpr int64_t kMaxRankGpu = 256;  // 32 lanes x KT = 8 registers
constexpr double kPi = 3.14159265358979323846;

// Smallest positive normal number, as the CPU code's numeric_limits<T>::min()
// (a host constexpr, so not usable in device code without extra nvcc flags).
template <typename T>
struct Tiny;
template <>
struct Tiny<float> {
  static constexpr float value = FLT_MIN;
};
template <>
struct Tiny<double> {
  static constexpr double value = DBL_MIN;
};

// Sum over the G lanes of this thread's group; every lane gets the same bits
// (a butterfly adds the same pairs in every lane, only with operands swapped).
template <typename T>
__device__ __forceinline__ T group_sum(T x, int G, unsigned mask) {
  for (int off = G / 2; off > 0; off >>= 1) x += __shfl_xor_sync(mask, x, off);
  return x;
}

__device__ __forceinline__ unsigned group_mask(int G, int group) {
  return G == kWarp ? 0xffffffffu : ((1u << G) - 1u) << (group * G);
}

template <typename T>
__device__ __forceinline__ T max_of(T a, T b) { return a > b ? a : b; }

// ---------------------------------------------------------------------------
// Starting vectors (docs/design.md, "Forward"; as init_item on the CPU). One group per row;
// every group recomputes v0 from V_init[b, 0] (k values) instead of waiting for it.
template <typename T, int KT>
__global__ void __launch_bounds__(kInitThreads)
    init_kernel(const T* __restrict__ V_init, const T* __restrict__ z,
                const bool* __restrict__ is_input, T* __restrict__ V, int64_t N, int k, int G) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int groups_per_warp = kWarp / G, group = lane / G, comp = lane % G;
  const unsigned mask = group_mask(G, group);
  const int64_t rows_per_block = int64_t(blockDim.x / kWarp) * groups_per_warp;
  const int64_t tiles = (N + rows_per_block - 1) / rows_per_block;
  const int64_t b = blockIdx.x / tiles;
  const int64_t i = (blockIdx.x % tiles) * rows_per_block + warp * groups_per_warp + group;
  const bool active = i < N;
  const int64_t row = active ? i : 0;  // idle groups compute row 0 and write nothing
  const T* draws = V_init + b * N * k;

  T v0[KT], x[KT];
  T n2 = 0;
#pragma unroll
  for (int t = 0; t < KT; ++t) {
    const int c = comp + G * t;
    v0[t] = c < k ? draws[c] : T(0);
    x[t] = c < k ? draws[row * k + c] : T(0);
    n2 += v0[t] * v0[t];
  }
  n2 = group_sum(n2, G, mask);
  const bool v0_ok = n2 > Tiny<T>::value;
  const T inv0 = v0_ok ? T(1) / sqrt(n2) : T(0);
#pragma unroll
  for (int t = 0; t < KT; ++t) {
    // A zero draw falls back to e_0, as normalise_or(..., fallback = 0) does.
    v0[t] = v0_ok ? v0[t] * inv0 : T(comp + G * t == 0 ? 1 : 0);
  }

  // All three candidate formulas are evaluated so the shuffles stay convergent.
  T xx = 0, along = 0;
#pragma unroll
  for (int t = 0; t < KT; ++t) {
    xx += x[t] * x[t];
    along += x[t] * v0[t];
  }
  xx = group_sum(xx, G, mask);
  along = group_sum(along, G, mask);
  T r[KT];
  T rr = 0;
#pragma unroll
  for (int t = 0; t < KT; ++t) {
    r[t] = x[t] - along * v0[t];
    rr += r[t] * r[t];
  }
  rr = group_sum(rr, G, mask);
  if (!active) return;

  const bool input = row != 0 && is_input[b * N + row];
  T* out = V + (b * N + row) * k;
  if (row == 0) {
#pragma unroll
    for (int t = 0; t < KT; ++t) {
      const int c = comp + G * t;
      if (c < k) out[c] = v0[t];
    }
  } else if (!input) {
    const bool ok = xx > Tiny<T>::value;
    const T inv = ok ? T(1) / sqrt(xx) : T(0);
    const int fallback = static_cast<int>(row % k);
#pragma unroll
    for (int t = 0; t < KT; ++t) {
      const int c = comp + G * t;
      if (c < k) out[c] = ok ? x[t] * inv : T(c == fallback ? 1 : 0);
    }
  } else {
    const T angle = T(kPi) * z[b * N + row];
    const T cos_part = -cos(angle);
    // No orthogonal direction (k = 1, or a draw along v0): round onto +-v0.
    const T sin_part = rr > Tiny<T>::value ? sin(angle) / sqrt(rr) : T(0);
#pragma unroll
    for (int t = 0; t < KT; ++t) {
      const int c = comp + G * t;
      if (c < k) out[c] = cos_part * v0[t] + sin_part * r[t];
    }
  }
}

// Omega[b] = S^T V[b] (m x k), one thread per entry; j runs sequentially so the
// result does not depend on the launch configuration.
template <typename T>
__global__ void omega_kernel(const T* __restrict__ S, const T* __restrict__ V,
                             T* __restrict__ omega, int64_t B, int64_t N, int64_t m, int64_t k) {
  const int64_t total = B * m * k;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = idx % k, col = (idx / k) % m, b = idx / (k * m);
    const T* v = V + b * N * k + c;
    T acc = 0;
    for (int64_t j = 0; j < N; ++j) acc += __ldg(S + j * m + col) * v[j * k];
    omega[idx] = acc;
  }
}

// ---------------------------------------------------------------------------
// Sweeps.
template <typename T>
struct SweepArgs {
  const T* weights;        // C (N x N) or S (N x m)
  const T* sq;             // S-form: |s_i|^2 (N); unused in C-form (C_ii is read)
  const int64_t* order;    // (N,)
  const bool* is_input;    // (B, N)
  T* state;                // (B, N, k): V (forward) or U (adjoint), the output
  T* rows_global;          // (B, count, k): C-form == state; S-form Omega / Psi
  T* gnorm_out;            // forward: (B, N)
  int* sweeps;             // forward: (B,)
  const T* V;              // adjoint: (B, N, k)
  const T* W;              // adjoint: (B, N, k)
  const T* gnorm_in;       // adjoint: (B, N)
  int64_t N, count, cached;  // count = N (C-form) or m; rows < cached live in shared memory
  int k, G;
  int64_t max_iter;
  T eps, prox_lam;
};

template <typename T, int KT, bool dense, bool adjoint>
__global__ void __launch_bounds__(kWarp * kMaxWarps) sweep_kernel(SweepArgs<T> a) {
  extern __shared__ __align__(16) unsigned char smem_bytes[];
  T* smem = reinterpret_cast<T*>(smem_bytes);
  const int k = a.k, G = a.G;
  const int warps = blockDim.x / kWarp;
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int groups_per_warp = kWarp / G, group = lane / G, comp = lane % G;
  const int64_t nslots = int64_t(warps) * groups_per_warp;
  const int64_t slot = int64_t(warp) * groups_per_warp + group;
  const unsigned mask = group_mask(G, group);
  const int64_t b = blockIdx.x;
  const int64_t N = a.N, count = a.count, cached = a.cached;

  T* partial = smem;                              // 2 x (warps + 1) x k
  T* cache = smem + 2 * int64_t(warps + 1) * k;   // cached x k
  T* rows_global = a.rows_global + b * count * k;
  T* state = a.state + b * N * k;
  const bool* is_input = a.is_input + b * N;
  auto row = [&](int64_t j) -> T* { return j < cached ? cache + j * k : rows_global + j * k; };

  // Owners fill their cached rows; no barrier, nobody else reads them.
  for (int64_t j = slot; j < cached; j += nslots) {
#pragma unroll
    for (int t = 0; t < KT; ++t) {
      const int c = comp + G * t;
      if (c < k) cache[j * k + c] = rows_global[j * k + c];
    }
  }

  T delta[KT];  // S-form: v_new - v_old of the previous update, not yet in Omega
#pragma unroll
  for (int t = 0; t < KT; ++t) delta[t] = 0;
  int64_t prev = -1;
  int64_t updates = 0;
  int64_t sweeps = 0;

  for (int64_t it = 0; it < a.max_iter; ++it) {
    T largest = 0, biggest = 0;
    for (int64_t pos = 0; pos < N; ++pos) {
      const int64_t i = __ldg(a.order + pos);
      if (i == 0 || is_input[i]) continue;  // block-uniform
      T* buf = partial + (updates & 1) * int64_t(warps + 1) * k;
      ++updates;

      // Partial field of the owned rows (and, S-form, the deferred Omega update).
      T acc[KT];
#pragma unroll
      for (int t = 0; t < KT; ++t) acc[t] = 0;
      const T* coef = a.weights + i * count;
      const T* prev_coef = a.weights + (prev < 0 ? 0 : prev) * count;
      for (int64_t j = slot; j < count; j += nslots) {
        T* r = row(j);
        const T cj = __ldg(coef + j);
        if (!dense && prev >= 0) {
          const T pj = __ldg(prev_coef + j);
#pragma unroll
          for (int t = 0; t < KT; ++t) {
            const int c = comp + G * t;
            if (c < k) {
              const T value = r[c] + pj * delta[t];
              r[c] = value;
              acc[t] += cj * value;
            }
          }
        } else {
#pragma unroll
          for (int t = 0; t < KT; ++t) {
            const int c = comp + G * t;
            if (c < k) acc[t] += cj * r[c];
          }
        }
      }
#pragma unroll
      for (int t = 0; t < KT; ++t) {
        for (int off = G; off < kWarp; off <<= 1) acc[t] += __shfl_xor_sync(0xffffffffu, acc[t], off);
      }
      if (group == 0) {
#pragma unroll
        for (int t = 0; t < KT; ++t) {
          const int c = comp + G * t;
          if (c < k) buf[warp * k + c] = acc[t];
        }
      }
      const bool owner = slot == i % nslots;
      T* own_row = dense ? row(i) : state + i * k;  // only the owner dereferences it
      if (owner) {
#pragma unroll
        for (int t = 0; t < KT; ++t) {
          const int c = comp + G * t;
          if (c < k) buf[int64_t(warps) * k + c] = own_row[c];
        }
      }
      __syncthreads();

      T field[KT], old[KT];
#pragma unroll
      for (int t = 0; t < KT; ++t) {
        const int c = comp + G * t;
        field[t] = 0;
        old[t] = 0;
        if (c < k) {
          for (int w = 0; w < warps; ++w) field[t] += buf[w * k + c];
          old[t] = buf[int64_t(warps) * k + c];
        }
      }
      const T diag = (dense ? __ldg(a.weights + i * N + i) : __ldg(a.sq + i)) + a.prox_lam;
      T next[KT];
      T change = 0;
      if (!adjoint) {
        // g = sum_j C_ij v_j - (C_ii + prox_lam) v_i;  v_i <- -g / |g|.
        T g2 = 0;
#pragma unroll
        for (int t = 0; t < KT; ++t) {
          field[t] -= diag * old[t];
          g2 += field[t] * field[t];
        }
        g2 = group_sum(g2, G, mask);
        const T gn = sqrt(g2);
        // g = 0 leaves f flat in v_i: keep it (the backward clamps and counts this).
        const bool moves = gn > Tiny<T>::value;
        const T inv = moves ? T(-1) / gn : T(0);
#pragma unroll
        for (int t = 0; t < KT; ++t) {
          next[t] = moves ? inv * field[t] : old[t];
          const T d = next[t] - old[t];
          change += d * d;
          delta[t] = d;
        }
        change = group_sum(change, G, mask);
        if (owner && comp == 0) a.gnorm_out[b * N + i] = gn;
      } else {
        // u_i = P_i (w_i - (sum_j C_ij u_j - (C_ii + prox_lam) u_i)) / |g_i|.
        const T* v = a.V + (b * N + i) * k;
        const T* w = a.W + (b * N + i) * k;
        T vi[KT];
        T along = 0;
#pragma unroll
        for (int t = 0; t < KT; ++t) {
          const int c = comp + G * t;
          vi[t] = c < k ? __ldg(v + c) : T(0);
          const T wi = c < k ? __ldg(w + c) : T(0);
          field[t] = wi - field[t] + diag * old[t];
          along += field[t] * vi[t];
        }
        along = group_sum(along, G, mask);
        const T inv = T(1) / __ldg(a.gnorm_in + b * N + i);
        T norm = 0;
#pragma unroll
        for (int t = 0; t < KT; ++t) {
          next[t] = (field[t] - along * vi[t]) * inv;
          const T d = next[t] - old[t];
          change += d * d;
          norm += next[t] * next[t];
          delta[t] = d;
        }
        change = group_sum(change, G, mask);
        norm = group_sum(norm, G, mask);
        biggest = max_of(biggest, norm);
      }
      largest = max_of(largest, change);
      if (owner) {
#pragma unroll
        for (int t = 0; t < KT; ++t) {
          const int c = comp + G * t;
          if (c < k) own_row[c] = next[t];
        }
      }
      prev = i;
    }
    sweeps = it + 1;
    // Same stopping rules as the CPU (the adjoint one is relative to the largest |u_i|).
    if (!adjoint ? largest < a.eps * a.eps : largest <= a.eps * a.eps * biggest) break;
  }

  if (dense) {  // C-form: the cached rows are the state; owners write theirs back.
    for (int64_t j = slot; j < cached; j += nslots) {
#pragma unroll
      for (int t = 0; t < KT; ++t) {
        const int c = comp + G * t;
        if (c < k) rows_global[j * k + c] = cache[j * k + c];
      }
    }
  }
  if (!adjoint && threadIdx.x == 0) a.sweeps[b] = static_cast<int>(sweeps);
}

// ---------------------------------------------------------------------------
// Host side.

// Lanes per row: 32, or the next power of two >= k so several small rows share a warp.
int group_width(int64_t k) {
  int G = 1;
  while (G < k && G < kWarp) G <<= 1;
  return G;
}

// Register components per lane, a power of two so few kernels are instantiated.
int components_per_lane(int64_t k) {
  const int64_t per = (k + kWarp - 1) / kWarp;
  return per <= 1 ? 1 : per <= 2 ? 2 : per <= 4 ? 4 : 8;
}

// Enough warps that every slot owns a few rows (to hide load latency), at most 8:
// each thread sums all warps' partials, so the reduction grows with warps^2.
int choose_warps(int64_t count, int G) {
  const int64_t groups_per_warp = kWarp / G;
  const int64_t want = (count + 4 * groups_per_warp - 1) / (4 * groups_per_warp);
  return static_cast<int>(std::clamp<int64_t>(want, 1, kMaxWarps));
}

template <typename T, int KT>
void launch_init(const at::Tensor& V_init, const at::Tensor& z, const at::Tensor& is_input,
                 at::Tensor& V, int G, cudaStream_t stream) {
  const int64_t B = V.size(0), N = V.size(1), k = V.size(2);
  const int64_t rows_per_block = int64_t(kInitThreads / kWarp) * (kWarp / G);
  const int64_t blocks = B * ((N + rows_per_block - 1) / rows_per_block);
  TORCH_CHECK(blocks <= INT32_MAX, "symsatnet: batch x N too large for one CUDA launch");
  init_kernel<T, KT><<<static_cast<unsigned>(blocks), kInitThreads, 0, stream>>>(
      V_init.data_ptr<T>(), z.data_ptr<T>(), is_input.data_ptr<bool>(), V.data_ptr<T>(), N,
      static_cast<int>(k), G);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename T>
void launch_omega(const at::Tensor& S, const at::Tensor& V, at::Tensor& omega,
                  cudaStream_t stream) {
  const int64_t B = V.size(0), N = V.size(1), k = V.size(2), m = S.size(1);
  const int64_t total = B * m * k;
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((total + threads - 1) / threads, 65535LL * 32);
  omega_kernel<T><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(
      S.data_ptr<T>(), V.data_ptr<T>(), omega.data_ptr<T>(), B, N, m, k);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// An attribute of the current device (cheap, unlike cudaGetDeviceProperties).
size_t device_attribute(cudaDeviceAttr attribute) {
  int device = 0, value = 0;
  C10_CUDA_CHECK(cudaGetDevice(&device));
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&value, attribute, device));
  return static_cast<size_t>(value);
}

// Sizes the shared memory (reduction buffers + as many cached rows as fit) and
// launches one block per batch item.
template <typename T, int KT, bool dense, bool adjoint>
void launch_sweeps_kt(SweepArgs<T> a, int64_t B, cudaStream_t stream) {
  const int warps = choose_warps(a.count, a.G);
  const size_t row_bytes = size_t(a.k) * sizeof(T);
  const size_t buffer_bytes = 2 * size_t(warps + 1) * row_bytes;
  size_t budget = device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin);
  if (static_cast<size_t>(B) > device_attribute(cudaDevAttrMultiProcessorCount)) {
    // More items than SMs: leave room for a second resident block per SM, whose
    // warps hide the latency of the first one's barriers.
    const size_t half = device_attribute(cudaDevAttrMaxSharedMemoryPerMultiprocessor) / 2;
    const size_t reserved = device_attribute(cudaDevAttrReservedSharedMemoryPerBlock);
    budget = std::min(budget, half > reserved ? half - reserved : size_t(0));
  }
  budget = std::max(budget, buffer_bytes);
  a.cached = std::min<int64_t>(a.count, static_cast<int64_t>((budget - buffer_bytes) / row_bytes));
  const size_t bytes = buffer_bytes + size_t(a.cached) * row_bytes;
  auto kernel = &sweep_kernel<T, KT, dense, adjoint>;
  if (bytes > 48 * 1024) {
    C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(bytes)));
  }
  TORCH_CHECK(B <= INT32_MAX, "symsatnet: batch too large for one CUDA launch");
  kernel<<<static_cast<unsigned>(B), warps * kWarp, bytes, stream>>>(a);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename T, bool dense, bool adjoint>
void launch_sweeps(const SweepArgs<T>& a, int64_t B, cudaStream_t stream) {
  switch (components_per_lane(a.k)) {
    case 1: launch_sweeps_kt<T, 1, dense, adjoint>(a, B, stream); break;
    case 2: launch_sweeps_kt<T, 2, dense, adjoint>(a, B, stream); break;
    case 4: launch_sweeps_kt<T, 4, dense, adjoint>(a, B, stream); break;
    default: launch_sweeps_kt<T, 8, dense, adjoint>(a, B, stream); break;
  }
}

template <typename T>
void launch_init_any(const at::Tensor& V_init, const at::Tensor& z, const at::Tensor& is_input,
                     at::Tensor& V, int G, cudaStream_t stream) {
  switch (components_per_lane(V.size(2))) {
    case 1: launch_init<T, 1>(V_init, z, is_input, V, G, stream); break;
    case 2: launch_init<T, 2>(V_init, z, is_input, V, G, stream); break;
    case 4: launch_init<T, 4>(V_init, z, is_input, V, G, stream); break;
    default: launch_init<T, 8>(V_init, z, is_input, V, G, stream); break;
  }
}

// The sweeps of one call: on the state itself for a dense C; for the S form on the k-wide
// projections `rows` (Omega = S^T V forward, Psi = S^T U adjoint) with the squared row
// norms of S, written to `sq`, which the caller keeps alive past the launch.
template <typename T, bool adjoint>
void launch_either_sweeps(SweepArgs<T>& a, bool dense, const at::Tensor& weights,
                          const at::Tensor& rows, at::Tensor& sq, int64_t B,
                          cudaStream_t stream) {
  if (dense) {
    a.rows_global = a.state;
    launch_sweeps<T, true, adjoint>(a, B, stream);
    return;
  }
  sq = weights.square().sum(1).contiguous();
  a.sq = sq.data_ptr<T>();
  a.rows_global = rows.data_ptr<T>();
  launch_sweeps<T, false, adjoint>(a, B, stream);
}

template <typename T>
SweepArgs<T> common_args(const at::Tensor& weights, const at::Tensor& order,
                         const at::Tensor& is_input, int64_t N, int64_t k, int64_t max_iter,
                         double eps, double prox_lam, bool dense) {
  SweepArgs<T> a{};
  a.weights = weights.data_ptr<T>();
  a.order = order.data_ptr<int64_t>();
  a.is_input = is_input.data_ptr<bool>();
  a.N = N;
  a.count = dense ? N : weights.size(1);
  a.k = static_cast<int>(k);
  a.G = group_width(k);
  a.max_iter = max_iter;
  a.eps = static_cast<T>(eps);
  a.prox_lam = static_cast<T>(prox_lam);
  return a;
}

// Where the rank is beyond the register-resident kernels, the CPU kernels solve it.
template <bool dense>
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> forward_on_cpu(
    const at::Tensor& weights, const at::Tensor& z, const at::Tensor& is_input,
    const at::Tensor& V_init, const at::Tensor& order, int64_t max_iter, double eps,
    double prox_lam) {
  TORCH_WARN_ONCE("symsatnet: rank k > ", kMaxRankGpu,
                  " has no CUDA kernel; the mixing sweeps run on the CPU");
  auto fn = &forward_cpu<dense>;
  auto [V, z_out, gnorm, sweeps] = fn(weights.cpu(), z.cpu(), is_input.cpu(), V_init.cpu(),
                                      order.cpu(), max_iter, eps, prox_lam);
  const auto device = weights.device();
  return {V.to(device), z_out.to(device), gnorm.to(device), sweeps.to(device)};
}

template <bool dense>
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> forward_cuda(
    const at::Tensor& weights_in, const at::Tensor& z_in, const at::Tensor& is_input_in,
    const at::Tensor& V_init_in, const at::Tensor& order_in, int64_t max_iter, double eps,
    double prox_lam) {
  const c10::cuda::CUDAGuard guard(weights_in.device());
  check_forward_args(weights_in, dense ? "C" : "S", dense, z_in, is_input_in, V_init_in,
                     order_in, max_iter, eps, prox_lam);
  const int64_t B = z_in.size(0), N = z_in.size(1), k = V_init_in.size(2);
  if (k > kMaxRankGpu) {
    return forward_on_cpu<dense>(weights_in, z_in, is_input_in, V_init_in, order_in, max_iter,
                                 eps, prox_lam);
  }
  const auto weights = weights_in.contiguous();
  const auto z = z_in.contiguous();
  const auto is_input = is_input_in.contiguous();
  const auto V_init = V_init_in.contiguous();
  const auto order = order_in.contiguous();
  auto V = at::empty({B, N, k}, weights.options());
  auto gnorm = at::zeros({B, N}, weights.options());
  auto sweeps = at::zeros({B}, weights.options().dtype(at::kInt));
  if (B > 0) {
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    at::Tensor omega, sq;
    AT_DISPATCH_FLOATING_TYPES(weights.scalar_type(), "symsatnet_forward_cuda", [&] {
      const int G = group_width(k);
      launch_init_any<scalar_t>(V_init, z, is_input, V, G, stream);
      auto a = common_args<scalar_t>(weights, order, is_input, N, k, max_iter, eps, prox_lam,
                                     dense);
      a.state = V.data_ptr<scalar_t>();
      a.gnorm_out = gnorm.data_ptr<scalar_t>();
      a.sweeps = sweeps.data_ptr<int>();
      if (!dense) {
        omega = at::empty({B, weights.size(1), k}, weights.options());
        launch_omega<scalar_t>(weights, V, omega, stream);
      }
      launch_either_sweeps<scalar_t, false>(a, dense, weights, omega, sq, B, stream);
    });
  }
  return {V, z_from_vectors(V, z, is_input), gnorm, sweeps};
}

template <bool dense>
at::Tensor adjoint_cuda(const at::Tensor& weights_in, const at::Tensor& V_in,
                        const at::Tensor& gnorm_in, const at::Tensor& is_input_in,
                        const at::Tensor& W_in, const at::Tensor& order_in, int64_t max_iter,
                        double eps, double prox_lam) {
  const c10::cuda::CUDAGuard guard(weights_in.device());
  check_adjoint_args(weights_in, dense ? "C" : "S", dense, V_in, gnorm_in, is_input_in, W_in,
                     order_in, max_iter, eps, prox_lam);
  const int64_t B = V_in.size(0), N = V_in.size(1), k = V_in.size(2);
  if (k > kMaxRankGpu) {
    TORCH_WARN_ONCE("symsatnet: rank k > ", kMaxRankGpu,
                    " has no CUDA kernel; the adjoint sweeps run on the CPU");
    auto fn = &adjoint_cpu<dense>;
    return fn(weights_in.cpu(), V_in.cpu(), gnorm_in.cpu(), is_input_in.cpu(), W_in.cpu(),
              order_in.cpu(), max_iter, eps, prox_lam)
        .to(weights_in.device());
  }
  const auto weights = weights_in.contiguous();
  const auto V = V_in.contiguous();
  const auto gnorm = gnorm_in.contiguous();
  const auto is_input = is_input_in.contiguous();
  const auto W = W_in.contiguous();
  const auto order = order_in.contiguous();
  auto U = at::zeros({B, N, k}, weights.options());
  if (B == 0) return U;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  at::Tensor psi, sq;
  AT_DISPATCH_FLOATING_TYPES(weights.scalar_type(), "symsatnet_adjoint_cuda", [&] {
    auto a = common_args<scalar_t>(weights, order, is_input, N, k, max_iter, eps, prox_lam,
                                   dense);
    a.state = U.data_ptr<scalar_t>();
    a.V = V.data_ptr<scalar_t>();
    a.W = W.data_ptr<scalar_t>();
    a.gnorm_in = gnorm.data_ptr<scalar_t>();
    if (!dense) psi = at::zeros({B, weights.size(1), k}, weights.options());  // Psi = S^T U, U = 0
    launch_either_sweeps<scalar_t, true>(a, dense, weights, psi, sq, B, stream);
  });
  return U;
}

}  // namespace

}  // namespace symsatnet

TORCH_LIBRARY_IMPL(symsatnet, CUDA, m) {
  SYMSATNET_IMPL_MIXING(m, symsatnet::forward_cuda, symsatnet::adjoint_cuda);
}
