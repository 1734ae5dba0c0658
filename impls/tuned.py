"""``tuned``: how close a Python-driven staged loop can get to the compute floor.

Same workload, same staged methods (the harness still times batching,
forward, loss, backward and step), but every step does only what the
arithmetic needs, in as few calls and memory passes as it can:

* **storage** — the four parameters are views of one flat tensor and their
  momentum buffers views of another; W1 is kept in x out (the input gradient
  is never needed, and ``x.T @ dh`` lands in W1's own layout), W2 out x in;
* **batching** — the training split is preprocessed once into one contiguous
  float32 tensor; a batch is one ``index_select`` of the permutation slice
  into a preallocated buffer (``out=``), never a copy of the whole set;
* **forward** — ``addmm`` fuses each bias into its matmul, ReLU runs in
  place; the second layer is computed *class-major*, ``logits.T = W2 h.T + b2``
  (10 x B): softmax along 128 contiguous columns is several times cheaper on
  CPU than along rows of 10 (log_softmax 1.8 µs against 12.7 µs here);
* **loss** — ``log_softmax`` along dim 0 into a buffer, then ``nll_loss``
  (a fresh 0-d tensor per step: the harness keeps every step's loss);
* **backward** — written by hand, no autograd graph: ``g = softmax - onehot``;
  the batch scale ``s`` and the momentum blend are folded into the products'
  ``alpha``/``beta``, so each gradient goes straight into its momentum buffer
  (``v = beta·v + (1-beta)·grad`` in the GEMM's epilogue): ``vW2 ← s·g h``,
  ``vb2 ← s·g 1``, ``dh = s·g.T W2`` masked by ``h > 0``, ``vW1 ← x.T dh``,
  ``vb1 ← dh.T 1``. No gradient is ever stored on its own;
* **step** — what is left of SGD with momentum: ``p.add_(v, alpha=-lr)``, one
  call on the flat tensors.

Because the momentum blend runs inside ``backward``, this loop's ``step``
phase is only the parameter update; compare its backward + step with the
other loops' (the README says so too).

Losses match ``store`` to float rounding (``perfsuite check``); only the
order of the floating-point operations inside the fused kernels differs.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from perfsuite.data import preprocess
from perfsuite.interface import Implementation
from perfsuite.workload import CLASSES, INPUTS


@dataclass(frozen=True)
class Buffers:
    """Preallocated tensors for a batch of one size."""

    x: torch.Tensor
    y: torch.Tensor
    y_row: torch.Tensor
    minus_one: torch.Tensor
    ones: torch.Tensor
    hidden: torch.Tensor
    grad_hidden: torch.Tensor
    logits_t: torch.Tensor
    log_probs_t: torch.Tensor
    grad_logits_t: torch.Tensor
    scale: float

    @classmethod
    def allocate(cls, rows: int, hidden: int, scale: float) -> "Buffers":
        """Buffers for ``rows`` samples; the class-major ones are ``CLASSES x rows``."""
        y = torch.empty(rows, dtype=torch.int64)
        return cls(x=torch.empty(rows, INPUTS), y=y, y_row=y.unsqueeze(0), minus_one=torch.full((1, rows), -1.0),
                   ones=torch.ones(rows), hidden=torch.empty(rows, hidden), grad_hidden=torch.empty(rows, hidden),
                   logits_t=torch.empty(CLASSES, rows), log_probs_t=torch.empty(CLASSES, rows),
                   grad_logits_t=torch.empty(CLASSES, rows), scale=scale)


def flat_views(flat: torch.Tensor, shapes: list) -> list:
    """Consecutive views of the 1-d tensor ``flat`` with the given shapes."""
    sizes = [torch.Size(shape).numel() for shape in shapes]
    return [part.view(shape) for part, shape in zip(torch.split(flat, sizes), shapes)]


class Tuned(Implementation):
    """Staged loop on flat parameters: gather into buffers, addmm, class-major loss, momentum in the GEMM epilogue."""

    name = "tuned"
    description = ("near the floor: contiguous data, gather into buffers, addmm, class-major loss, "
                   "hand-written backward into the momentum, one-call step")

    def setup(self, ctx):
        wl = ctx.workload
        self.batch_size, self.hidden = wl.batch_size, wl.hidden
        self.lr, self.beta = wl.lr, wl.momentum
        self.mse = wl.loss == "mse"
        self.permutation = ctx.permutation
        self.n = ctx.n_train
        self.x = preprocess(ctx.train.images[: ctx.n_train]).contiguous()
        self.y = ctx.train.labels[: ctx.n_train].to(torch.int64).contiguous()
        p = ctx.params
        layout = [p["w1"].t(), p["b1"], p["w2"], p["b2"]]
        shapes = [t.shape for t in layout]
        self.flat_params = torch.cat([t.reshape(-1) for t in layout])
        self.flat_velocity = torch.zeros_like(self.flat_params)
        self.w1, self.b1, self.w2, self.b2 = self.params = flat_views(self.flat_params, shapes)
        self.velocity = flat_views(self.flat_velocity, shapes)
        self.b2_column = self.b2.unsqueeze(1)
        self._buffers = {}
        self._active = None
        self._x = self._y = None

    def buffers(self, rows: int) -> Buffers:
        """The buffers of a batch of ``rows`` samples (allocated once per batch size)."""
        found = self._buffers.get(rows)
        if found is None:
            scale = 2.0 / (rows * CLASSES) if self.mse else 1.0 / rows
            found = self._buffers[rows] = Buffers.allocate(rows, self.hidden, scale)
        return found

    def batches(self, epoch):
        return self._gather(self.permutation(epoch))

    def _gather(self, order: torch.Tensor):
        """Yield ``(x, y)`` gathered into the preallocated buffers, ``batch_size`` rows at a time."""
        size = self.batch_size
        for start in range(0, self.n, size):
            index = order[start: start + size]
            buf = self.buffers(index.shape[0])
            torch.index_select(self.x, 0, index, out=buf.x)
            torch.index_select(self.y, 0, index, out=buf.y)
            yield buf.x, buf.y

    def forward(self, x):
        """Hidden activations in place, then the class-major logits ``CLASSES x rows``."""
        buf = self.buffers(x.shape[0])
        self._active, self._x = buf, x
        torch.addmm(self.b1, x, self.w1, out=buf.hidden).relu_()
        return torch.addmm(self.b2_column, self.w2, buf.hidden.t(), out=buf.logits_t)

    def loss(self, logits_t, y):
        self._y = y
        if self.mse:
            return (F.one_hot(y, CLASSES).t().to(logits_t.dtype) - logits_t).square().mean()
        log_probs_t = torch.log_softmax(logits_t, 0, out=self._active.log_probs_t)
        return F.nll_loss(log_probs_t.t(), y)

    def backward(self, loss):
        """Gradients by hand, each blended into its momentum buffer by the product that computes it."""
        buf = self._active
        g = buf.grad_logits_t
        if self.mse:
            g.copy_(buf.logits_t)
        else:
            torch.exp(buf.log_probs_t, out=g)
        if self._y is not buf.y:
            buf.y.copy_(self._y)
        g.scatter_add_(0, buf.y_row, buf.minus_one)
        keep, blend, s = self.beta, 1 - self.beta, buf.scale
        vw1, vb1, vw2, vb2 = self.velocity
        torch.addmm(vw2, g, buf.hidden, beta=keep, alpha=blend * s, out=vw2)
        torch.addmv(vb2, g, buf.ones, beta=keep, alpha=blend * s, out=vb2)
        dh = torch.addmm(buf.grad_hidden, g.t(), self.w2, beta=0, alpha=s, out=buf.grad_hidden)
        torch.ops.aten.threshold_backward.grad_input(dh, buf.hidden, 0, grad_input=dh)
        torch.addmm(vw1, self._x.t(), dh, beta=keep, alpha=blend, out=vw1)
        torch.addmv(vb1, dh.t(), buf.ones, beta=keep, alpha=blend, out=vb1)

    def step(self):
        self.flat_params.add_(self.flat_velocity, alpha=-self.lr)

    @torch.no_grad()
    def predict(self, x):
        hidden = torch.addmm(self.b1, x, self.w1).relu_()
        return torch.addmm(self.b2, hidden, self.w2.t())
