//! The shim's C ABI (impls/rust/shim/tch_shim.cpp), declared as torch-sys declares LibTorch's.
//!
//! Every handle is an owned `at::Tensor*`; [`crate::tensor::Tensor`] frees it on drop. After any
//! call, `at_last_error` says whether it failed (and clears the message).

use std::os::raw::{c_char, c_int, c_void};

/// An opaque `at::Tensor` on the C++ side.
#[repr(C)]
pub struct CTensor {
    _private: [u8; 0],
}

pub type Handle = *mut CTensor;

extern "C" {
    pub fn at_last_error() -> *const c_char;
    pub fn at_tensor_of_data(data: *const c_void, dims: *const i64, ndims: usize, kind: c_int) -> Handle;
    pub fn at_copy_data(t: Handle, out: *mut c_void, bytes: usize);
    pub fn at_double_value(t: Handle) -> f64;
    pub fn at_size(t: Handle, dim: i64) -> i64;
    pub fn at_free(t: Handle);
    pub fn at_shallow_clone(t: Handle) -> Handle;
    pub fn at_requires_grad_(t: Handle, requires: c_int);
    pub fn at_grad(t: Handle) -> Handle;
    pub fn at_zero_grad(t: Handle);
    pub fn at_set_grad_enabled(enabled: c_int) -> c_int;
    pub fn at_backward(t: Handle);
    pub fn at_mul_scalar_(t: Handle, s: f64);
    pub fn at_add_(t: Handle, other: Handle, alpha: f64);
    pub fn atg_matmul(a: Handle, b: Handle) -> Handle;
    pub fn atg_add(a: Handle, b: Handle) -> Handle;
    pub fn atg_sub(a: Handle, b: Handle) -> Handle;
    pub fn atg_relu(a: Handle) -> Handle;
    pub fn atg_log_softmax(a: Handle, dim: i64) -> Handle;
    pub fn atg_nll_loss(log_probs: Handle, target: Handle) -> Handle;
    pub fn atg_one_hot(target: Handle, classes: i64) -> Handle;
    pub fn atg_to_kind_of(a: Handle, like: Handle) -> Handle;
    pub fn atg_square(a: Handle) -> Handle;
    pub fn atg_mean(a: Handle) -> Handle;
    pub fn atg_t(a: Handle) -> Handle;
    pub fn atg_reshape(a: Handle, dims: *const i64, ndims: usize) -> Handle;
    pub fn atg_detach(a: Handle) -> Handle;
    pub fn atg_clone(a: Handle) -> Handle;
    pub fn atg_zeros_like(a: Handle) -> Handle;
    pub fn atg_index_select(a: Handle, dim: i64, index: Handle) -> Handle;
    pub fn atg_narrow(a: Handle, dim: i64, start: i64, length: i64) -> Handle;
}
