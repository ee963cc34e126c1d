// Declarations of the structured ("aggregate") mixing kernels: the problem block
// of C is tied by a group from the Symmetric / Trivial / Wreath / Product family
// (symsatnet/structured.py), so row i of it applied to V is a short signed sum of
// aggregates, sums of V over a few classes of variables:
//
//     sum_{j != i} C_ij v_j = sum_{t in terms(i)} alpha_t A_{node_t} - diag_i v_i
//
// and the aggregates are kept up to date by adding v_i,new - v_i,old to the
// classes containing i. The op schemas live in csrc/structured_ops.cpp.
//
// Layout (n problem variables, N = 1 + n + aux, all index tables int32):
//   weights      (W,) the per-term weights alpha (a linear map of the orbital
//                coefficients, built in Python).
//   truth        (n,) C[0, 1:n+1].
//   aux_rows     (aux, N) rows n+1.. of C (free; the aux x aux block symmetric).
//   members      (n, L) for problem variable p (row 1+p of V) the node id of each
//                class containing it, one per stored level. A node id < n is a
//                problem variable itself; node n + c is class c.
//   term_offsets (n+1,) CSR offsets of the terms of each problem variable.
//   term_nodes   (nnz,) node whose vector (or aggregate) the term reads.
//   term_weights (nnz,) index into weights.
//   refresh      (R, 2) (class node, source node) pairs: every aggregate is the sum
//                of its sources, listed finer classes first, so running the list
//                from zero rebuilds all aggregates (before the first sweep, then
//                every few sweeps against rounding drift).
#pragma once

#include <ATen/ATen.h>

#include "symsatnet.h"

#include <tuple>

namespace symsatnet {

ForwardResult structured_forward_cpu(
    const at::Tensor& weights, const at::Tensor& truth, const at::Tensor& aux_rows,
    const at::Tensor& members, const at::Tensor& term_offsets, const at::Tensor& term_nodes,
    const at::Tensor& term_weights, const at::Tensor& refresh, const at::Tensor& z,
    const at::Tensor& is_input, const at::Tensor& V_init, const at::Tensor& order,
    int64_t max_iter, double eps, double prox_lam);

at::Tensor structured_adjoint_cpu(
    const at::Tensor& weights, const at::Tensor& aux_rows, const at::Tensor& members,
    const at::Tensor& term_offsets, const at::Tensor& term_nodes, const at::Tensor& term_weights,
    const at::Tensor& refresh, const at::Tensor& V, const at::Tensor& gnorm,
    const at::Tensor& is_input, const at::Tensor& W, const at::Tensor& order, int64_t max_iter,
    double eps, double prox_lam);

// The pieces of the backward that need the aggregates:
//   pairings (B, W): sum over the terms t with weight w of <u_p, A^V_t - [p in t] v_p>
//                    (d loss / d weights[w] = -pairings[:, w].sum()),
//   field    (B, n, k): sum_{j != p} P_pj u_j, the problem block applied to U.
std::tuple<at::Tensor, at::Tensor> structured_pairings_cpu(
    const at::Tensor& weights, const at::Tensor& members, const at::Tensor& term_offsets,
    const at::Tensor& term_nodes, const at::Tensor& term_weights, const at::Tensor& refresh,
    const at::Tensor& V, const at::Tensor& U, const at::Tensor& is_input);

// Argument checks (csrc/structured_ops.cpp). `with_truth` is false for the ops
// that do not read the truth row (pass an undefined tensor).
void check_structure_args(const at::Tensor& weights, const at::Tensor& truth,
                          const at::Tensor& aux_rows, const at::Tensor& members,
                          const at::Tensor& term_offsets, const at::Tensor& term_nodes,
                          const at::Tensor& term_weights, const at::Tensor& refresh, int64_t N,
                          bool with_truth);

}  // namespace symsatnet
