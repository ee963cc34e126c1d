// Operator schemas of the structured (aggregate) mixing ops and their argument
// checks; see csrc/structured.h for the layout of the structure tables and
// symsatnet/structured.py for how they are derived from a group expression.
#include <torch/library.h>

#include "structured.h"
#include "symsatnet.h"

namespace symsatnet {

namespace {

void check_table(const at::Tensor& t, const char* what, int64_t dims) {
  TORCH_CHECK(t.scalar_type() == at::kInt, "symsatnet: the structure table ", what,
              " must be int32, got ", t.scalar_type());
  TORCH_CHECK(t.dim() == dims, "symsatnet: the structure table ", what, " must be ", dims,
              "-D, got shape ", t.sizes());
}

void check_range(const at::Tensor& t, const char* what, int64_t low, int64_t high) {
  if (t.numel() == 0) return;
  const int64_t lo = t.min().item<int64_t>(), hi = t.max().item<int64_t>();
  TORCH_CHECK(lo >= low && hi < high, "symsatnet: the structure table ", what,
              " has entries in [", lo, ", ", hi, "], outside [", low, ", ", high, ")");
}

}  // namespace

void check_structure_args(const at::Tensor& weights, const at::Tensor& truth,
                          const at::Tensor& aux_rows, const at::Tensor& members,
                          const at::Tensor& term_offsets, const at::Tensor& term_nodes,
                          const at::Tensor& term_weights, const at::Tensor& refresh, int64_t N,
                          bool with_truth) {
  TORCH_CHECK(weights.dim() == 1, "symsatnet: the structured weights must be a vector, got shape ",
              weights.sizes());
  TORCH_CHECK(weights.scalar_type() == at::kFloat || weights.scalar_type() == at::kDouble,
              "symsatnet: the structured weights must be float32 or float64, got ",
              weights.scalar_type());
  TORCH_CHECK(at::isfinite(weights).all().item<bool>(),
              "symsatnet: the structured weights contain NaN or inf");
  check_table(members, "members", 2);
  check_table(term_offsets, "term_offsets", 1);
  check_table(term_nodes, "term_nodes", 1);
  check_table(term_weights, "term_weights", 1);
  check_table(refresh, "refresh", 2);
  const int64_t n = members.size(0), aux = N - 1 - n;
  TORCH_CHECK(aux >= 0, "symsatnet: the structure has n = ", n,
              " problem variables, more than the state's N - 1 = ", N - 1);
  TORCH_CHECK(term_offsets.size(0) == n + 1, "symsatnet: term_offsets must have n + 1 = ", n + 1,
              " entries, got ", term_offsets.size(0));
  TORCH_CHECK(term_nodes.sizes() == term_weights.sizes(),
              "symsatnet: term_nodes and term_weights must have one entry per term");
  TORCH_CHECK(refresh.size(1) == 2, "symsatnet: refresh must have shape (R, 2), got ",
              refresh.sizes());
  for (const at::Tensor* t : {&members, &term_offsets, &term_nodes, &term_weights, &refresh}) {
    TORCH_CHECK(t->device() == weights.device(),
                "symsatnet: all tensors must be on one device; the weights are on ",
                weights.device(), " but a structure table is on ", t->device());
  }
  const int64_t nnz = term_nodes.size(0);
  TORCH_CHECK(term_offsets[0].item<int64_t>() == 0 && term_offsets[n].item<int64_t>() == nnz &&
                  (n == 0 || (term_offsets.diff() >= 0).all().item<bool>()),
              "symsatnet: term_offsets must rise from 0 to the number of terms ", nnz);
  // Class nodes are numbered after the n variables; the members table names all of them.
  const int64_t nodes = members.numel() ? std::max(members.max().item<int64_t>() + 1, n) : n;
  check_range(members, "members", n, nodes);
  check_range(term_nodes, "term_nodes", 0, nodes);
  check_range(term_weights, "term_weights", 0, weights.size(0));
  check_range(refresh.select(1, 0), "refresh (classes)", n, nodes);
  check_range(refresh.select(1, 1), "refresh (sources)", 0, nodes);
  if (with_truth) {
    TORCH_CHECK(truth.dim() == 1 && truth.size(0) == n, "symsatnet: the truth row must have shape (",
                n, "), got ", truth.sizes());
    TORCH_CHECK(truth.scalar_type() == weights.scalar_type() && truth.device() == weights.device(),
                "symsatnet: the truth row must match the weights' dtype and device");
    TORCH_CHECK(at::isfinite(truth).all().item<bool>(), "symsatnet: the truth row contains NaN or inf");
  }
  TORCH_CHECK(aux_rows.dim() == 2 && aux_rows.size(0) == aux && aux_rows.size(1) == N,
              "symsatnet: aux_rows must have shape (", aux, ", ", N, "), got ", aux_rows.sizes());
  TORCH_CHECK(aux_rows.scalar_type() == weights.scalar_type() && aux_rows.device() == weights.device(),
              "symsatnet: aux_rows must match the weights' dtype and device");
  TORCH_CHECK(at::isfinite(aux_rows).all().item<bool>(), "symsatnet: aux_rows contains NaN or inf");
  if (aux > 0) check_symmetric(aux_rows.narrow(1, n + 1, aux), "the aux x aux block of aux_rows", "A");
}

}  // namespace symsatnet

TORCH_LIBRARY_FRAGMENT(symsatnet, m) {
  m.def(
      "structured_forward(Tensor weights, Tensor truth, Tensor aux_rows, Tensor members, "
      "Tensor term_offsets, Tensor term_nodes, Tensor term_weights, Tensor refresh, Tensor z, "
      "Tensor is_input, Tensor V_init, Tensor order, int max_iter, float eps, float prox_lam) "
      "-> (Tensor V, Tensor z_out, Tensor gnorm, Tensor sweeps)");
  m.def(
      "structured_adjoint(Tensor weights, Tensor aux_rows, Tensor members, Tensor term_offsets, "
      "Tensor term_nodes, Tensor term_weights, Tensor refresh, Tensor V, Tensor gnorm, "
      "Tensor is_input, Tensor W, Tensor order, int max_iter, float eps, float prox_lam) -> Tensor U");
  m.def(
      "structured_pairings(Tensor weights, Tensor members, Tensor term_offsets, Tensor term_nodes, "
      "Tensor term_weights, Tensor refresh, Tensor V, Tensor U, Tensor is_input) "
      "-> (Tensor pairings, Tensor field)");
}
