// Shared declarations of the symsatnet kernels: the CPU kernels (csrc/cpu), which the
// CUDA ones (csrc/cuda, same arguments) fall back to, the shared epilogue and the
// argument checks. Each kernel file registers itself for its dispatch key;
// csrc/ops.cpp declares the operator schemas.
//
// Conventions (all tensors of one call share dtype and device):
//   N        number of variables: index 0 is the truth variable, then the problem
//            variables, then auxiliary ones.
//   B        batch size; k the relaxation rank (any k >= 1; the Python layer asks k >= 2).
//   C        (N, N) symmetric interaction matrix (C-form), used row by row.
//   S        (N, m) clause matrix (S-form), C = S S^T kept implicit.
//   z        (B, N) values in [0, 1]; column 0 is ignored (truth).
//   is_input (B, N) bool; column 0 is ignored (the truth vector is always fixed).
//   V_init   (B, N, k) random draws: row 0 gives the truth direction v0, rows of
//            inputs the direction r orthogonal to v0, other rows the start vectors.
//   order    (N,) int64 permutation of 0..N-1: the order of updates in a sweep.
//   prox_lam proximal weight: an update minimises f + prox_lam/2 |v_i - v_i,old|^2,
//            i.e. g_i -= prox_lam v_i. It damps the sweeps without moving their
//            fixed points; gnorm is |g_i - prox_lam v_i| and the adjoint uses the
//            same damping, so gradients at convergence do not depend on it.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

namespace symsatnet {

// What every forward op returns:
//   V      (B, N, k) the final unit vectors,
//   z_out  (B, N) arccos(-<v_i, v0>)/pi for outputs, z for inputs, 1 for truth,
//   gnorm  (B, N) |g_i| at the last update of each output (0 for non-outputs),
//   sweeps (B,) int32 number of sweeps run.
using ForwardResult = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

// CPU kernels of the C-form (dense = true, `weights` is C, ops mix_*) and S-form
// (dense = false, `weights` is S, ops smix_*) ops; the CUDA kernels
// (csrc/cuda/mixing_cuda.cu) have the same arguments and fall back to these for ranks
// beyond their registers.
//
// Forward mixing sweeps from the starting vectors of V_init.
template <bool dense>
ForwardResult forward_cpu(const at::Tensor& weights, const at::Tensor& z,
                          const at::Tensor& is_input, const at::Tensor& V_init,
                          const at::Tensor& order, int64_t max_iter, double eps, double prox_lam);

// Adjoint sweeps: solve u_o = P_o (w_o - sum_{j != o} C_oj u_j) / gnorm_o for the outputs
// o (rows of U for non-outputs are zero). gnorm must be positive for every output (the
// Python side clamps it). Returns U (B, N, k).
template <bool dense>
at::Tensor adjoint_cpu(const at::Tensor& weights, const at::Tensor& V, const at::Tensor& gnorm,
                       const at::Tensor& is_input, const at::Tensor& W, const at::Tensor& order,
                       int64_t max_iter, double eps, double prox_lam);

// The epilogue of every forward kernel, CPU and CUDA (csrc/ops.cpp): z_out from the
// final vectors V (B, N, k): arccos(-<v_i, v0>)/pi for outputs, z for inputs, 1 for
// the truth column.
at::Tensor z_from_vectors(const at::Tensor& V, const at::Tensor& z, const at::Tensor& is_input);

// Ctrl-C during a long op (csrc/ops.cpp). Python runs signal handlers only on its main
// thread and only between bytecodes, so a kernel that sweeps for minutes would never see
// one: the CPU sweep loops call stop_requested() between sweeps (cheap: the calling
// Python thread polls PyErr_CheckSignals at most every 50 ms, other threads read a flag)
// and stop early; the batch driver then calls raise_if_interrupted(), which throws the
// pending KeyboardInterrupt. Without a signal nothing changes, so results are bitwise
// the same. The flag is process-wide: a Ctrl-C stops every CPU op running at that moment.
bool stop_requested();
void raise_if_interrupted();

// Registers the four mixing ops of one dispatch key (csrc/cpu/mixing_cpu.cpp,
// csrc/cuda/mixing_cuda.cu): `forward<dense>` and `adjoint<dense>`, dense (C) and S form.
#define SYMSATNET_IMPL_MIXING(m, forward, adjoint)       \
  do {                                                   \
    (m).impl("mix_forward", &forward<true>);             \
    (m).impl("smix_forward", &forward<false>);           \
    (m).impl("mix_adjoint", &adjoint<true>);             \
    (m).impl("smix_adjoint", &adjoint<false>);           \
  } while (false)

// Raises unless the square matrix `block` is symmetric up to the rounding of its dtype
// (relative to its largest entry); `what` names it and `symbol` writes it in the message.
void check_symmetric(const at::Tensor& block, const char* what, const char* symbol);

// Argument checks shared by both devices (shapes, dtypes, devices, scalars).
// `weights_name` is "C" or "S"; `square` says whether the weights must be N x N.
void check_forward_args(const at::Tensor& weights, const char* weights_name, bool square,
                        const at::Tensor& z, const at::Tensor& is_input,
                        const at::Tensor& V_init, const at::Tensor& order,
                        int64_t max_iter, double eps, double prox_lam);
void check_adjoint_args(const at::Tensor& weights, const char* weights_name, bool square,
                        const at::Tensor& V, const at::Tensor& gnorm,
                        const at::Tensor& is_input, const at::Tensor& W,
                        const at::Tensor& order, int64_t max_iter, double eps, double prox_lam);

}  // namespace symsatnet
