//! The article's training loop (its Listings 1 and 4–7) on the safe tensor layer: a `Memory`
//! store, `Linear` layers holding their parameters' addresses by name, the `Compute` trait,
//! `get_batches` by index_select + narrow, cross entropy or MSE, SGD with EMA momentum.
//!
//! The same two departures as `native` (impls/native/trainer.cpp), for a fair comparison: the
//! epoch's sample order is the harness's permutation, and the momentum velocities persist across
//! steps (the article's listing rebuilt them every step). Parameters are updated in place under
//! a no-grad guard, as `native` and `store` do, where the article's `set_data(t.data() - …)`
//! allocated a new tensor.
//!
//! Each phase is its own non-inlined function, so native stack samples name it, and each is
//! timed with `std::time::Instant`, as `native` times with `steady_clock`.

use crate::tensor::{NoGradGuard, Result, TchError, Tensor};
use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

pub const PHASES: usize = 5;

/// The tensor store: every parameter lives here, addressed by its position.
#[derive(Default)]
pub struct Memory {
    values: Vec<Tensor>,
    velocity: Vec<Tensor>,
}

impl Memory {
    pub fn push(&mut self, value: Tensor) -> Result<usize> {
        self.velocity.push(value.zeros_like()?);
        self.values.push(value);
        Ok(self.values.len() - 1)
    }

    pub fn get(&self, addr: &usize) -> &Tensor {
        &self.values[*addr]
    }

    /// Momentum in EMA form with persistent velocities: v = beta v + (1 - beta) g, p -= lr v.
    pub fn apply_grads_sgd_momentum(&mut self, learning_rate: f64, beta: f64) -> Result<()> {
        let _guard = NoGradGuard::new();
        for (t, v) in self.values.iter().zip(&self.velocity) {
            let g = t.grad()?;
            v.mul_scalar_(beta)?;
            v.add_(&g, 1.0 - beta)?;
            t.add_(v, -learning_rate)?;
            t.zero_grad()?;
        }
        Ok(())
    }
}

/// Anything with a forward pass over parameters held in a Memory.
pub trait Compute {
    fn forward(&self, mem: &Memory, input: &Tensor) -> Result<Tensor>;
}

/// input.matmul(W) + b with W (in x out) and b (1 x out) held in the store by name.
pub struct Linear {
    params: HashMap<String, usize>,
}

impl Linear {
    /// Store `w` (in x out) and `b` (1 x out) as new leaf tensors that require gradients.
    pub fn new(mem: &mut Memory, w: &Tensor, b: &Tensor) -> Result<Linear> {
        let mut params = HashMap::new();
        params.insert("W".to_string(), mem.push(w.clone_tensor()?.requires_grad_(true)?)?);
        params.insert("b".to_string(), mem.push(b.clone_tensor()?.requires_grad_(true)?)?);
        Ok(Linear { params })
    }
}

impl Compute for Linear {
    fn forward(&self, mem: &Memory, input: &Tensor) -> Result<Tensor> {
        let w = mem.get(&self.params["W"]);
        let b = mem.get(&self.params["b"]);
        input.matmul(w)?.add(b)
    }
}

/// The article's model: Linear -> ReLU -> Linear.
pub struct MyModel {
    l1: Linear,
    l2: Linear,
}

impl MyModel {
    /// Initial parameters in nn.Linear layout (out x in), stored transposed (in x out) as the
    /// article stores W, with the biases as rows.
    pub fn new(mem: &mut Memory, w1: &Tensor, b1: &Tensor, w2: &Tensor, b2: &Tensor) -> Result<MyModel> {
        let l1 = Linear::new(mem, &w1.t()?, &b1.reshape(&[1, -1])?)?;
        let l2 = Linear::new(mem, &w2.t()?, &b2.reshape(&[1, -1])?)?;
        Ok(MyModel { l1, l2 })
    }
}

impl Compute for MyModel {
    fn forward(&self, mem: &Memory, input: &Tensor) -> Result<Tensor> {
        let o = self.l1.forward(mem, input)?;
        let o = o.relu()?;
        self.l2.forward(mem, &o)
    }
}

pub fn mse(target: &Tensor, pred: &Tensor) -> Result<Tensor> {
    let hot = target.one_hot(pred.size(-1)?)?.to_kind_of(pred)?;
    hot.sub(pred)?.square()?.mean()
}

pub fn cross_entropy(target: &Tensor, pred: &Tensor) -> Result<Tensor> {
    pred.log_softmax(-1)?.nll_loss(target)
}

/// The article's get_batches: reorder the whole set once, then hand out narrow views.
pub struct Batches {
    x: Tensor,
    y: Tensor,
    rows: i64,
    batch_size: i64,
    start: i64,
}

impl Batches {
    pub fn new(x: &Tensor, y: &Tensor, batch_size: i64, indices: &Tensor) -> Result<Batches> {
        Ok(Batches {
            x: x.index_select(0, indices)?,
            y: y.index_select(0, indices)?,
            rows: x.size(0)?,
            batch_size,
            start: 0,
        })
    }

    /// The next (x, y) batch, or None at the end of the epoch.
    pub fn next_batch(&mut self) -> Result<Option<(Tensor, Tensor)>> {
        if self.start >= self.rows {
            return Ok(None);
        }
        let n = self.batch_size.min(self.rows - self.start);
        let batch = (self.x.narrow(0, self.start, n)?, self.y.narrow(0, self.start, n)?);
        self.start += n;
        Ok(Some(batch))
    }
}

// --- the five phases, one non-inlined function each ------------------------------------------
// `black_box` on the result keeps each call from becoming a tail call: a tail call would replace the
// phase's frame on the stack, and a sampled stack deeper in the phase would no longer name it.

/// Where an epoch's batches come from: the data set, the batch size and the epoch's order.
struct Source<'a> {
    x: &'a Tensor,
    y: &'a Tensor,
    batch_size: i64,
    indices: &'a Tensor,
}

/// The next batch. The first request reorders the data set (the article's get_batches) and the last,
/// empty one releases the reordered copy, so all of the data pipeline's work runs inside this frame.
#[inline(never)]
fn phase_batching(batches: &mut Option<Batches>, source: &Source) -> Result<Option<(Tensor, Tensor)>> {
    if batches.is_none() {
        *batches = Some(Batches::new(source.x, source.y, source.batch_size, source.indices)?);
    }
    let next = batches.as_mut().map_or(Ok(None), Batches::next_batch)?;
    if next.is_none() {
        *batches = None;
    }
    black_box(Ok(next))
}

#[inline(never)]
fn phase_forward(model: &dyn Compute, mem: &Memory, x: &Tensor) -> Result<Tensor> {
    black_box(model.forward(mem, x))
}

#[inline(never)]
fn phase_loss(use_mse: bool, logits: &Tensor, y: &Tensor) -> Result<Tensor> {
    black_box(if use_mse { mse(y, logits) } else { cross_entropy(y, logits) })
}

#[inline(never)]
fn phase_backward(loss: &Tensor) -> Result<()> {
    black_box(loss.backward())
}

#[inline(never)]
fn phase_step(mem: &mut Memory, lr: f64, beta: f64) -> Result<()> {
    black_box(mem.apply_grads_sgd_momentum(lr, beta))
}

// ----------------------------------------------------------------------------------------------

/// The training set, the store and the model between epochs.
pub struct Trainer {
    x: Tensor,
    y: Tensor,
    mem: Memory,
    model: MyModel,
    batch_size: i64,
    lr: f64,
    momentum: f64,
    use_mse: bool,
}

/// What one epoch measured: steps x 5 phase seconds (row-major) and each step's loss tensor.
pub struct Epoch {
    pub seconds: Vec<f64>,
    pub losses: Vec<Tensor>,
}

impl Trainer {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        x: Tensor,
        y: Tensor,
        params: [&Tensor; 4],
        batch_size: i64,
        lr: f64,
        momentum: f64,
        use_mse: bool,
    ) -> Result<Trainer> {
        if batch_size < 1 {
            return Err(TchError(format!("batch_size must be at least 1, got {batch_size}")));
        }
        let mut mem = Memory::default();
        let model = MyModel::new(&mut mem, params[0], params[1], params[2], params[3])?;
        Ok(Trainer { x, y, mem, model, batch_size, lr, momentum, use_mse })
    }

    pub fn rows(&self) -> Result<i64> {
        self.x.size(0)
    }

    /// One epoch in the order `indices` gives.
    pub fn train_epoch(&mut self, indices: &Tensor) -> Result<Epoch> {
        let steps = ((self.rows()? + self.batch_size - 1) / self.batch_size) as usize;
        let source = Source { x: &self.x, y: &self.y, batch_size: self.batch_size, indices };
        let mut batches = None;
        let mut seconds = Vec::with_capacity(steps * PHASES);
        let mut losses = Vec::with_capacity(steps);
        loop {
            let t0 = Instant::now();
            let Some((bx, by)) = phase_batching(&mut batches, &source)? else {
                // The final, empty request (and the release of the reordered copy) is the last step's batching.
                if !seconds.is_empty() {
                    let first = seconds.len() - PHASES;
                    seconds[first] += t0.elapsed().as_secs_f64();
                }
                break;
            };
            let t1 = Instant::now();
            let logits = phase_forward(&self.model, &self.mem, &bx)?;
            let t2 = Instant::now();
            let loss = phase_loss(self.use_mse, &logits, &by)?;
            let t3 = Instant::now();
            phase_backward(&loss)?;
            let t4 = Instant::now();
            phase_step(&mut self.mem, self.lr, self.momentum)?;
            let t5 = Instant::now();
            seconds.extend_from_slice(&[
                (t1 - t0).as_secs_f64(),
                (t2 - t1).as_secs_f64(),
                (t3 - t2).as_secs_f64(),
                (t4 - t3).as_secs_f64(),
                (t5 - t4).as_secs_f64(),
            ]);
            losses.push(loss.detach()?);
        }
        Ok(Epoch { seconds, losses })
    }

    /// Logits for preprocessed inputs, without gradients.
    pub fn predict(&self, x: &Tensor) -> Result<Tensor> {
        let _guard = NoGradGuard::new();
        self.model.forward(&self.mem, x)
    }
}
