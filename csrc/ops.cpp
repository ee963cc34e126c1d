// Operator schemas of the symsatnet:: library and the argument checks shared by
// the CPU and CUDA kernels. Kernels register themselves per dispatch key in
// csrc/cpu/*.cpp and csrc/cuda/*.cu.
#include <Python.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <pybind11/pybind11.h>

#include <atomic>
#include <chrono>
#include <cmath>

#include "symsatnet.h"

// Importing symsatnet._C loads this library, which registers the ops.
extern "C" {
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}

namespace symsatnet {

namespace {

void check_common(const at::Tensor& weights, const char* name, bool square,
                  const at::Tensor& is_input, const at::Tensor& order, int64_t N,
                  int64_t B, int64_t max_iter, double eps, double prox_lam) {
  TORCH_CHECK(weights.dim() == 2, "symsatnet: ", name, " must be a 2-D matrix, got shape ",
              weights.sizes());
  TORCH_CHECK(weights.scalar_type() == at::kFloat || weights.scalar_type() == at::kDouble,
              "symsatnet: ", name, " must be float32 or float64, got ", weights.scalar_type());
  if (square) {
    TORCH_CHECK(weights.size(0) == weights.size(1), "symsatnet: C must be square, got shape ",
                weights.sizes());
  }
  TORCH_CHECK(weights.size(0) == N, "symsatnet: ", name, " has ", weights.size(0),
              " rows but the state has N = ", N, " variables (truth + problem + aux)");
  TORCH_CHECK(N >= 2, "symsatnet: need at least one variable besides truth, got N = ", N);
  TORCH_CHECK(is_input.scalar_type() == at::kBool,
              "symsatnet: is_input must be a bool tensor, got ", is_input.scalar_type());
  TORCH_CHECK(is_input.dim() == 2 && is_input.size(0) == B && is_input.size(1) == N,
              "symsatnet: is_input must have shape (", B, ", ", N, "), got ", is_input.sizes());
  TORCH_CHECK(order.scalar_type() == at::kLong && order.dim() == 1 && order.size(0) == N,
              "symsatnet: order must be an int64 vector of length N = ", N, ", got ",
              order.scalar_type(), " of shape ", order.sizes());
  TORCH_CHECK(max_iter >= 1, "symsatnet: max_iter must be >= 1, got ", max_iter);
  TORCH_CHECK(eps >= 0 && std::isfinite(eps), "symsatnet: eps must be finite and >= 0, got ",
              eps);
  TORCH_CHECK(prox_lam >= 0 && std::isfinite(prox_lam),
              "symsatnet: prox_lam must be finite and >= 0, got ", prox_lam);
  for (const at::Tensor* t : {&is_input, &order}) {
    TORCH_CHECK(t->device() == weights.device(), "symsatnet: all tensors must be on one device; ",
                name, " is on ", weights.device(), " but another argument is on ", t->device());
  }
  // Values: an order that is not a permutation would read out of bounds.
  auto sorted = std::get<0>(order.sort());
  TORCH_CHECK(sorted.equal(at::arange(N, order.options())),
              "symsatnet: order must be a permutation of 0..N-1");
  TORCH_CHECK(at::isfinite(weights).all().item<bool>(), "symsatnet: ", name,
              " contains NaN or inf");
  if (square) check_symmetric(weights, "C", "C");
}

void check_same(const at::Tensor& t, const char* what, const at::Tensor& like,
                at::IntArrayRef shape) {
  TORCH_CHECK(t.sizes() == shape, "symsatnet: ", what, " must have shape ", shape, ", got ",
              t.sizes());
  TORCH_CHECK(t.scalar_type() == like.scalar_type(), "symsatnet: ", what, " must have dtype ",
              like.scalar_type(), " like the weights, got ", t.scalar_type());
  TORCH_CHECK(t.device() == like.device(), "symsatnet: all tensors must be on one device; ",
              what, " is on ", t.device(), " but the weights are on ", like.device());
}

}  // namespace

void check_symmetric(const at::Tensor& block, const char* what, const char* symbol) {
  const double scale = block.abs().max().item<double>();
  const double asym = (block - block.t()).abs().max().item<double>();
  const double tol = (block.scalar_type() == at::kFloat ? 1e-6 : 1e-12) * std::max(scale, 1.0);
  TORCH_CHECK(asym <= tol, "symsatnet: ", what, " must be symmetric, but max |", symbol, " - ",
              symbol, "^T| = ", asym);
}

namespace {
std::atomic<bool> interrupt_pending{false};
}  // namespace

bool stop_requested() {
  if (interrupt_pending.load(std::memory_order_relaxed)) return true;
  // Only a thread Python knows (the one that called the op) can take the GIL without
  // creating a thread state, and only Python's main thread ever sees a signal.
  if (!Py_IsInitialized() || PyGILState_GetThisThreadState() == nullptr) return false;
  using Clock = std::chrono::steady_clock;
  thread_local Clock::time_point last_poll = Clock::now();
  const auto now = Clock::now();
  if (now - last_poll < std::chrono::milliseconds(50)) return false;
  last_poll = now;
  const PyGILState_STATE gil = PyGILState_Ensure();
  // On -1 the handler's exception (KeyboardInterrupt) stays set on this thread until
  // raise_if_interrupted() takes it.
  const bool interrupted = PyErr_CheckSignals() != 0;
  PyGILState_Release(gil);
  if (interrupted) interrupt_pending.store(true, std::memory_order_relaxed);
  return interrupted;
}

void raise_if_interrupted() {
  if (!interrupt_pending.load(std::memory_order_relaxed)) return;
  if (!Py_IsInitialized() || PyGILState_GetThisThreadState() == nullptr) return;
  pybind11::gil_scoped_acquire gil;
  if (!PyErr_Occurred()) return;  // the signal was seen by another thread's op
  interrupt_pending.store(false, std::memory_order_relaxed);
  throw pybind11::error_already_set();  // pybind restores it: Python sees KeyboardInterrupt
}

at::Tensor z_from_vectors(const at::Tensor& V, const at::Tensor& z, const at::Tensor& is_input) {
  const auto cosine = -(V * V.narrow(1, 0, 1)).sum(2);
  auto z_out = at::where(is_input, z, at::arccos(cosine.clamp(-1, 1)) / M_PI);
  z_out.select(1, 0).fill_(1);
  return z_out;
}

void check_forward_args(const at::Tensor& weights, const char* name, bool square,
                        const at::Tensor& z, const at::Tensor& is_input,
                        const at::Tensor& V_init, const at::Tensor& order, int64_t max_iter,
                        double eps, double prox_lam) {
  TORCH_CHECK(z.dim() == 2, "symsatnet: z must be (batch, N), got shape ", z.sizes());
  TORCH_CHECK(V_init.dim() == 3, "symsatnet: V_init must be (batch, N, k), got shape ",
              V_init.sizes());
  const int64_t B = z.size(0), N = z.size(1);
  check_common(weights, name, square, is_input, order, N, B, max_iter, eps, prox_lam);
  check_same(z, "z", weights, {B, N});
  TORCH_CHECK(V_init.size(2) >= 1, "symsatnet: the rank k must be >= 1");
  check_same(V_init, "V_init", weights, {B, N, V_init.size(2)});
  // Only the given entries of z are read (the others start from V_init), so only they
  // are checked: a NaN placeholder for an unknown entry is fine.
  const auto unread = at::logical_not(is_input);
  TORCH_CHECK((at::isfinite(z) | unread).all().item<bool>(),
              "symsatnet: z contains NaN or inf in a given entry");
  TORCH_CHECK((((z >= 0) & (z <= 1)) | unread).all().item<bool>(),
              "symsatnet: given entries of z must lie in [0, 1] (probabilities of truth)");
  TORCH_CHECK(at::isfinite(V_init).all().item<bool>(), "symsatnet: V_init contains NaN or inf");
}

void check_adjoint_args(const at::Tensor& weights, const char* name, bool square,
                        const at::Tensor& V, const at::Tensor& gnorm,
                        const at::Tensor& is_input, const at::Tensor& W,
                        const at::Tensor& order, int64_t max_iter, double eps,
                        double prox_lam) {
  TORCH_CHECK(V.dim() == 3, "symsatnet: V must be (batch, N, k), got shape ", V.sizes());
  const int64_t B = V.size(0), N = V.size(1), k = V.size(2);
  check_common(weights, name, square, is_input, order, N, B, max_iter, eps, prox_lam);
  check_same(W, "W", weights, {B, N, k});
  check_same(V, "V", weights, {B, N, k});
  check_same(gnorm, "gnorm", weights, {B, N});
  TORCH_CHECK(at::isfinite(W).all().item<bool>(), "symsatnet: the incoming gradient contains "
              "NaN or inf");
  // Column 0 is the truth variable, never updated; every output needs |g| > 0.
  TORCH_CHECK(((gnorm > 0) | is_input).slice(1, 1).all().item<bool>(),
              "symsatnet: gnorm must be positive for every output (clamp it before the "
              "adjoint solve)");
}

// How many threads at::parallel_for really runs in this library (the kernels split
// their batch with it): 1 where the build lost OpenMP, whatever torch.set_num_threads
// says. Tests check it against torch.get_num_threads().
int64_t parallel_threads() {
  std::atomic<int64_t> widest{1};
  at::parallel_for(0, 1024, 1, [&](int64_t, int64_t) {
    const int64_t used = at::get_thread_num() + 1;
    int64_t seen = widest.load();
    while (used > seen && !widest.compare_exchange_weak(seen, used)) {
    }
  });
  return widest.load();
}

}  // namespace symsatnet

TORCH_LIBRARY(symsatnet, m) {
  m.def("parallel_threads() -> int", &symsatnet::parallel_threads);
  m.def(
      "mix_forward(Tensor C, Tensor z, Tensor is_input, Tensor V_init, Tensor order, "
      "int max_iter, float eps, float prox_lam) -> (Tensor V, Tensor z_out, Tensor gnorm, Tensor sweeps)");
  m.def(
      "smix_forward(Tensor S, Tensor z, Tensor is_input, Tensor V_init, Tensor order, "
      "int max_iter, float eps, float prox_lam) -> (Tensor V, Tensor z_out, Tensor gnorm, Tensor sweeps)");
  m.def(
      "mix_adjoint(Tensor C, Tensor V, Tensor gnorm, Tensor is_input, Tensor W, "
      "Tensor order, int max_iter, float eps, float prox_lam) -> Tensor U");
  m.def(
      "smix_adjoint(Tensor S, Tensor V, Tensor gnorm, Tensor is_input, Tensor W, "
      "Tensor order, int max_iter, float eps, float prox_lam) -> Tensor U");
}
