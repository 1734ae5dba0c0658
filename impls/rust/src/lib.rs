//! perfsuite `rust`: the article's tch-rs training loop as a Rust library with a C ABI.
//!
//! Three layers, as in tch-rs: `sys` declares the C ABI shim over LibTorch
//! (impls/rust/shim/tch_shim.cpp, torch-sys's role), `tensor` wraps it safely (tch's role),
//! `trainer` is the article's loop. This file is the library's own C ABI, which the Python
//! worker calls through ctypes (which releases the GIL for the whole call): make a trainer from
//! the harness's data and initial parameters, train an epoch in a given order (phase seconds and
//! losses written into the caller's buffers), predict, free. A failure returns null or -1 and
//! leaves its message for `psr_last_error`; no panic or C++ exception crosses the boundary.

mod sys;
mod tensor;
mod trainer;

use std::cell::RefCell;
use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use tensor::{Kind, Result, TchError, Tensor};
use trainer::{Trainer, PHASES};

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

fn remember(message: String) {
    let text = CString::new(message.replace('\0', " ")).expect("no NUL left in the message");
    LAST_ERROR.with(|e| *e.borrow_mut() = Some(text));
}

/// Run `body`, turning an error or a panic into a remembered message and `failed`.
fn guarded<T>(failed: T, body: impl FnOnce() -> Result<T>) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => value,
        Ok(Err(TchError(message))) => {
            remember(message);
            failed
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            remember(format!("rust panic: {what}"));
            failed
        }
    }
}

/// The message of the last failed call on this thread, or null. Valid until the next failure.
#[no_mangle]
pub extern "C" fn psr_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ref().map_or(std::ptr::null(), |m| m.as_ptr()))
}

/// A trainer over `n` x `d` float32 inputs and `n` int64 labels, with the initial parameters in
/// nn.Linear layout: w1 (hidden x d), b1 (hidden), w2 (classes x hidden), b2 (classes). The data
/// are copied. `use_mse` 0 trains with cross entropy, 1 with MSE. Null on failure.
///
/// # Safety
/// Every pointer must point at the number of elements its shape says.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn psr_trainer_new(
    x: *const f32,
    y: *const i64,
    n: i64,
    d: i64,
    w1: *const f32,
    b1: *const f32,
    w2: *const f32,
    b2: *const f32,
    hidden: i64,
    classes: i64,
    batch_size: i64,
    lr: f64,
    momentum: f64,
    use_mse: c_int,
) -> *mut Trainer {
    guarded(std::ptr::null_mut(), || {
        let of = |p: *const f32, dims: &[i64]| Tensor::of_data(p as *const c_void, dims, Kind::Float);
        let x = of(x, &[n, d])?;
        let y = Tensor::of_data(y as *const c_void, &[n], Kind::Int64)?;
        let w1 = of(w1, &[hidden, d])?;
        let b1 = of(b1, &[hidden])?;
        let w2 = of(w2, &[classes, hidden])?;
        let b2 = of(b2, &[classes])?;
        let trainer = Trainer::new(x, y, [&w1, &b1, &w2, &b2], batch_size, lr, momentum, use_mse != 0)?;
        Ok(Box::into_raw(Box::new(trainer)))
    })
}

/// Train one epoch in the order of the `n` int64 `indices` (a permutation of the rows). Writes
/// steps x 5 phase seconds into `seconds` and each step's loss into `losses`, which hold
/// `capacity` steps. Returns the number of steps, or -1 on failure.
///
/// # Safety
/// `trainer` must come from `psr_trainer_new`; the buffers must hold `capacity` steps.
#[no_mangle]
pub unsafe extern "C" fn psr_train_epoch(
    trainer: *mut Trainer,
    indices: *const i64,
    n: i64,
    seconds: *mut f64,
    losses: *mut f64,
    capacity: i64,
) -> i64 {
    guarded(-1, || {
        let trainer = trainer.as_mut().ok_or_else(|| TchError("null trainer".into()))?;
        if n != trainer.rows()? {
            return Err(TchError(format!("indices must be a permutation of the {} rows, got {n}", trainer.rows()?)));
        }
        let order = Tensor::of_data(indices as *const c_void, &[n], Kind::Int64)?;
        let epoch = trainer.train_epoch(&order)?;
        let steps = epoch.losses.len();
        if steps as i64 > capacity {
            return Err(TchError(format!("{steps} steps do not fit the buffers of {capacity}")));
        }
        std::slice::from_raw_parts_mut(seconds, steps * PHASES).copy_from_slice(&epoch.seconds);
        let out = std::slice::from_raw_parts_mut(losses, steps);
        for (slot, loss) in out.iter_mut().zip(&epoch.losses) {
            *slot = loss.double_value()?;
        }
        Ok(steps as i64)
    })
}

/// Logits (`n` x classes float32, into `out`) for `n` x `d` preprocessed inputs. 0, or -1 on failure.
///
/// # Safety
/// `trainer` must come from `psr_trainer_new`; `x` and `out` must hold their shapes' elements.
#[no_mangle]
pub unsafe extern "C" fn psr_predict(
    trainer: *const Trainer,
    x: *const f32,
    n: i64,
    d: i64,
    out: *mut f32,
    classes: i64,
) -> c_int {
    guarded(-1, || {
        let trainer = trainer.as_ref().ok_or_else(|| TchError("null trainer".into()))?;
        let input = Tensor::of_data(x as *const c_void, &[n, d], Kind::Float)?;
        let logits = trainer.predict(&input)?;
        logits.copy_to_f32(std::slice::from_raw_parts_mut(out, (n * classes) as usize))?;
        Ok(0)
    })
}

/// Free a trainer made by `psr_trainer_new` (null is ignored).
///
/// # Safety
/// `trainer` must come from `psr_trainer_new` and not be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn psr_trainer_free(trainer: *mut Trainer) {
    if !trainer.is_null() {
        drop(Box::from_raw(trainer));
    }
}
