//! Safe tensors over the shim, the way tch-rs wraps torch-sys: every call is checked for a C++
//! error (tch-rs's `unsafe_torch_err!`), every handle is freed once on drop.

use crate::sys::{self, Handle};
use std::ffi::CStr;
use std::os::raw::c_void;

/// A failed LibTorch call or a bad argument, with its message.
#[derive(Debug, Clone)]
pub struct TchError(pub String);

pub type Result<T> = std::result::Result<T, TchError>;

/// The shim's error of the last call on this thread, if any (reading clears it).
fn check() -> Result<()> {
    let message = unsafe { sys::at_last_error() };
    if message.is_null() {
        Ok(())
    } else {
        Err(TchError(unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned()))
    }
}

/// Run one shim call and check it; a null handle without a message is an error too.
fn handle(made: Handle) -> Result<Tensor> {
    check()?;
    if made.is_null() {
        return Err(TchError("the shim returned no tensor".into()));
    }
    Ok(Tensor { c: made })
}

/// Element kinds the shim copies in (its `kind` codes).
#[derive(Clone, Copy)]
pub enum Kind {
    Float = 0,
    Int64 = 1,
}

/// An owned `at::Tensor`.
pub struct Tensor {
    c: Handle,
}

impl Drop for Tensor {
    fn drop(&mut self) {
        unsafe { sys::at_free(self.c) }
    }
}

impl Tensor {
    /// A tensor holding a copy of `dims`' worth of elements at `data`.
    ///
    /// # Safety
    /// `data` must point at `product(dims)` readable elements of `kind`.
    pub unsafe fn of_data(data: *const c_void, dims: &[i64], kind: Kind) -> Result<Tensor> {
        handle(sys::at_tensor_of_data(data, dims.as_ptr(), dims.len(), kind as i32))
    }

    /// Copy the elements (row-major) into `out`.
    pub fn copy_to_f32(&self, out: &mut [f32]) -> Result<()> {
        unsafe { sys::at_copy_data(self.c, out.as_mut_ptr() as *mut c_void, std::mem::size_of_val(out)) };
        check()
    }

    pub fn double_value(&self) -> Result<f64> {
        let value = unsafe { sys::at_double_value(self.c) };
        check().map(|_| value)
    }

    pub fn size(&self, dim: i64) -> Result<i64> {
        let value = unsafe { sys::at_size(self.c, dim) };
        check().map(|_| value)
    }

    /// Another handle to the same tensor (shares storage and autograd state).
    pub fn shallow_clone(&self) -> Result<Tensor> {
        handle(unsafe { sys::at_shallow_clone(self.c) })
    }

    pub fn requires_grad_(self, requires: bool) -> Result<Tensor> {
        unsafe { sys::at_requires_grad_(self.c, requires as i32) };
        check().map(|_| self)
    }

    pub fn grad(&self) -> Result<Tensor> {
        handle(unsafe { sys::at_grad(self.c) })
    }

    pub fn zero_grad(&self) -> Result<()> {
        unsafe { sys::at_zero_grad(self.c) };
        check()
    }

    pub fn backward(&self) -> Result<()> {
        unsafe { sys::at_backward(self.c) };
        check()
    }

    /// In place: `self *= s`.
    pub fn mul_scalar_(&self, s: f64) -> Result<()> {
        unsafe { sys::at_mul_scalar_(self.c, s) };
        check()
    }

    /// In place: `self += alpha * other`.
    pub fn add_(&self, other: &Tensor, alpha: f64) -> Result<()> {
        unsafe { sys::at_add_(self.c, other.c, alpha) };
        check()
    }

    pub fn matmul(&self, other: &Tensor) -> Result<Tensor> {
        handle(unsafe { sys::atg_matmul(self.c, other.c) })
    }

    pub fn add(&self, other: &Tensor) -> Result<Tensor> {
        handle(unsafe { sys::atg_add(self.c, other.c) })
    }

    pub fn sub(&self, other: &Tensor) -> Result<Tensor> {
        handle(unsafe { sys::atg_sub(self.c, other.c) })
    }

    pub fn relu(&self) -> Result<Tensor> {
        handle(unsafe { sys::atg_relu(self.c) })
    }

    pub fn log_softmax(&self, dim: i64) -> Result<Tensor> {
        handle(unsafe { sys::atg_log_softmax(self.c, dim) })
    }

    pub fn nll_loss(&self, target: &Tensor) -> Result<Tensor> {
        handle(unsafe { sys::atg_nll_loss(self.c, target.c) })
    }

    pub fn one_hot(&self, classes: i64) -> Result<Tensor> {
        handle(unsafe { sys::atg_one_hot(self.c, classes) })
    }

    /// A copy converted to `like`'s element kind.
    pub fn to_kind_of(&self, like: &Tensor) -> Result<Tensor> {
        handle(unsafe { sys::atg_to_kind_of(self.c, like.c) })
    }

    pub fn square(&self) -> Result<Tensor> {
        handle(unsafe { sys::atg_square(self.c) })
    }

    pub fn mean(&self) -> Result<Tensor> {
        handle(unsafe { sys::atg_mean(self.c) })
    }

    pub fn t(&self) -> Result<Tensor> {
        handle(unsafe { sys::atg_t(self.c) })
    }

    pub fn reshape(&self, dims: &[i64]) -> Result<Tensor> {
        handle(unsafe { sys::atg_reshape(self.c, dims.as_ptr(), dims.len()) })
    }

    pub fn detach(&self) -> Result<Tensor> {
        handle(unsafe { sys::atg_detach(self.c) })
    }

    pub fn clone_tensor(&self) -> Result<Tensor> {
        handle(unsafe { sys::atg_clone(self.c) })
    }

    pub fn zeros_like(&self) -> Result<Tensor> {
        handle(unsafe { sys::atg_zeros_like(self.c) })
    }

    pub fn index_select(&self, dim: i64, index: &Tensor) -> Result<Tensor> {
        handle(unsafe { sys::atg_index_select(self.c, dim, index.c) })
    }

    pub fn narrow(&self, dim: i64, start: i64, length: i64) -> Result<Tensor> {
        handle(unsafe { sys::atg_narrow(self.c, dim, start, length) })
    }
}

/// Gradient recording off until dropped (tch's `no_grad_guard`).
pub struct NoGradGuard {
    previous: i32,
}

impl NoGradGuard {
    pub fn new() -> NoGradGuard {
        NoGradGuard { previous: unsafe { sys::at_set_grad_enabled(0) } }
    }
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        unsafe { sys::at_set_grad_enabled(self.previous) };
    }
}
