// perfsuite `rust`: a C ABI over ATen for the Rust loop (impls/rust/src), as torch-sys is for tch-rs.
//
// tch-rs is two layers: torch-sys, `extern "C"` functions over LibTorch's C++ API (`at_*` for
// tensor plumbing, `atg_*` for the generated operations), and safe Rust wrappers over them. The
// crates registry is not reachable here, so this file is torch-sys reduced to the operations the
// article's loop issues, and impls/rust/src/tensor.rs is the safe layer. Names follow torch-sys.
//
// Tensors cross the ABI as owned heap handles (`at::Tensor*`); the caller frees each with
// `at_free`. No C++ exception crosses the ABI: every function runs inside PROTECT, which stores the
// exception's message for `at_last_error` (torch-sys's `get_and_reset_last_err`) and returns a null
// handle or does nothing, so the Rust side checks for an error after every call, as tch-rs does.

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

using at::Tensor;
typedef Tensor* tensor;

namespace {

thread_local std::string last_error;
thread_local bool has_error = false;

void set_error(const char* message) {
  last_error = message;
  has_error = true;
}

at::ScalarType kind_of(int kind) {
  switch (kind) {
    case 0: return at::kFloat;
    case 1: return at::kLong;
    case 2: return at::kDouble;
    default: throw std::invalid_argument("unknown element kind " + std::to_string(kind));
  }
}

tensor own(Tensor t) { return new Tensor(std::move(t)); }

}  // namespace

#define PROTECT(...)                                 \
  try {                                              \
    __VA_ARGS__                                      \
  } catch (const std::exception& e) {                \
    set_error(e.what());                             \
  } catch (...) {                                    \
    set_error("unknown C++ exception in tch_shim");  \
  }

extern "C" {

// The message of the last failed call on this thread, or null; reading it clears it.
// The pointer stays valid until the next failing call on this thread.
const char* at_last_error() {
  if (!has_error) return nullptr;
  has_error = false;
  return last_error.c_str();
}

// A new tensor holding a copy of `numel(dims)` elements at `data` (kind 0 float32, 1 int64, 2 float64).
tensor at_tensor_of_data(const void* data, const int64_t* dims, size_t ndims, int kind) {
  PROTECT(
    auto sizes = std::vector<int64_t>(dims, dims + ndims);
    return own(at::from_blob(const_cast<void*>(data), sizes, at::TensorOptions().dtype(kind_of(kind))).clone());
  )
  return nullptr;
}

// Copy the tensor's elements (made contiguous) into `out`, which holds `bytes` bytes.
void at_copy_data(tensor t, void* out, size_t bytes) {
  PROTECT(
    Tensor c = t->contiguous();
    size_t have = c.numel() * c.element_size();
    if (have != bytes) throw std::invalid_argument("at_copy_data: tensor has " + std::to_string(have) +
                                                   " bytes, buffer " + std::to_string(bytes));
    std::memcpy(out, c.data_ptr(), bytes);
  )
}

double at_double_value(tensor t) {
  PROTECT(return t->item<double>();)
  return 0.0;
}

int64_t at_size(tensor t, int64_t dim) {
  PROTECT(return t->size(dim);)
  return -1;
}

void at_free(tensor t) { delete t; }

tensor at_shallow_clone(tensor t) {
  PROTECT(return own(*t);)
  return nullptr;
}

void at_requires_grad_(tensor t, int flag) {
  PROTECT(t->requires_grad_(flag != 0);)
}

tensor at_grad(tensor t) {
  PROTECT(return own(t->grad());)
  return nullptr;
}

void at_zero_grad(tensor t) {
  PROTECT(
    Tensor& g = t->mutable_grad();
    if (g.defined()) g.zero_();
  )
}

// Enable or disable gradient recording on this thread; returns the previous setting.
int at_set_grad_enabled(int enabled) {
  bool previous = c10::GradMode::is_enabled();
  c10::GradMode::set_enabled(enabled != 0);
  return previous ? 1 : 0;
}

void at_backward(tensor t) {
  PROTECT(t->backward();)
}

// In place: t *= s.
void at_mul_scalar_(tensor t, double s) {
  PROTECT(t->mul_(s);)
}

// In place: t += alpha * other.
void at_add_(tensor t, tensor other, double alpha) {
  PROTECT(t->add_(*other, alpha);)
}

tensor atg_matmul(tensor a, tensor b) {
  PROTECT(return own(a->matmul(*b));)
  return nullptr;
}

tensor atg_add(tensor a, tensor b) {
  PROTECT(return own(*a + *b);)
  return nullptr;
}

tensor atg_sub(tensor a, tensor b) {
  PROTECT(return own(*a - *b);)
  return nullptr;
}

tensor atg_relu(tensor a) {
  PROTECT(return own(a->relu());)
  return nullptr;
}

tensor atg_log_softmax(tensor a, int64_t dim) {
  PROTECT(return own(a->log_softmax(dim));)
  return nullptr;
}

tensor atg_nll_loss(tensor log_probs, tensor target) {
  PROTECT(return own(at::nll_loss(*log_probs, *target));)
  return nullptr;
}

tensor atg_one_hot(tensor target, int64_t classes) {
  PROTECT(return own(at::one_hot(*target, classes));)
  return nullptr;
}

// A copy of `a` converted to the element kind of `like`.
tensor atg_to_kind_of(tensor a, tensor like) {
  PROTECT(return own(a->to(like->scalar_type()));)
  return nullptr;
}

tensor atg_square(tensor a) {
  PROTECT(return own(a->square());)
  return nullptr;
}

tensor atg_mean(tensor a) {
  PROTECT(return own(a->mean());)
  return nullptr;
}

tensor atg_t(tensor a) {
  PROTECT(return own(a->t());)
  return nullptr;
}

tensor atg_reshape(tensor a, const int64_t* dims, size_t ndims) {
  PROTECT(return own(a->reshape(at::IntArrayRef(dims, ndims)));)
  return nullptr;
}

tensor atg_detach(tensor a) {
  PROTECT(return own(a->detach());)
  return nullptr;
}

tensor atg_clone(tensor a) {
  PROTECT(return own(a->clone());)
  return nullptr;
}

tensor atg_zeros_like(tensor a) {
  PROTECT(return own(at::zeros_like(*a));)
  return nullptr;
}

tensor atg_index_select(tensor a, int64_t dim, tensor index) {
  PROTECT(return own(a->index_select(dim, *index));)
  return nullptr;
}

tensor atg_narrow(tensor a, int64_t dim, int64_t start, int64_t length) {
  PROTECT(return own(a->narrow(dim, start, length));)
  return nullptr;
}

}  // extern "C"
