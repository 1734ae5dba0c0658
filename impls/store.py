"""``store``: the article's Rust/tch-rs design, written in Python with its names.

A ``Memory`` tensor store holds every parameter; ``Linear`` layers keep the
addresses of their parameters by name; models follow a ``Compute`` protocol
with ``forward(mem, input)``; ``get_batches`` shuffles once per epoch with
``index_select`` and hands out ``narrow`` views. Unlike the article's
``apply_grads_sgd_momentum``, which rebuilt its velocities on every call, the
velocities here persist across steps (the rule the article intended).

On ``mnist-cnn`` the same design trains the convnet: :class:`Conv2d` layers keep
their kernel and bias addresses in the store like :class:`Linear` does,
:class:`MyCnn` follows the ``Compute`` protocol, the preprocessed set is held as
1 x 28 x 28 images so ``index_select`` + ``narrow`` hand out image batches, and
``apply_grads_sgd_momentum`` updates every tensor of the store as before.
"""

from collections.abc import Iterator
from typing import Protocol

import torch
import torch.nn.functional as F

from perfsuite.core.data import preprocess
from perfsuite.core.interface import Implementation
from perfsuite.core.workload import CLASSES, INPUTS
from perfsuite.core.workloads import FLAT
from perfsuite.impls import cnn


class Memory:
    """The tensor store: parameters live here and are addressed by position."""

    def __init__(self):
        self.size = 0
        self.values = []
        self.velocity = []

    def push(self, value: torch.Tensor) -> int:
        """Store ``value`` and return its address."""
        self.values.append(value)
        self.velocity.append(torch.zeros_like(value))
        self.size += 1
        return self.size - 1

    def new_push(self, size, requires_grad: bool) -> int:
        """Store a new uniform [0, 1) tensor of ``size`` (the article's init) and return its address."""
        return self.push(torch.rand(size).requires_grad_(requires_grad))

    def get(self, addr: int) -> torch.Tensor:
        """The tensor stored at ``addr``."""
        return self.values[addr]

    @torch.no_grad()
    def apply_grads_sgd(self, learning_rate: float) -> None:
        """Plain gradient descent: ``p -= lr * g``, then zero the gradient."""
        for t in self.values:
            t.sub_(t.grad, alpha=learning_rate)
            t.grad.zero_()

    @torch.no_grad()
    def apply_grads_sgd_momentum(self, learning_rate: float, beta: float = 0.9) -> None:
        """Momentum in EMA form: ``v = beta*v + (1-beta)*g``, ``p -= lr*v``, then zero the gradient."""
        for t, v in zip(self.values, self.velocity, strict=True):
            v.mul_(beta).add_(t.grad, alpha=1 - beta)
            t.sub_(v, alpha=learning_rate)
            t.grad.zero_()


class Compute(Protocol):
    """Anything with a forward pass over parameters held in a :class:`Memory`."""

    def forward(self, mem: Memory, input: torch.Tensor) -> torch.Tensor: ...


class Linear:
    """``input @ W + b`` with ``W`` (in x out) and ``b`` (1 x out) held in the store by name."""

    def __init__(self, mem: Memory, ninputs: int, noutputs: int, w=None, b=None):
        self.params = {
            "W": mem.push(w.clone().requires_grad_(True)) if w is not None else mem.new_push((ninputs, noutputs), True),
            "b": mem.push(b.clone().requires_grad_(True)) if b is not None else mem.new_push((1, noutputs), True),
        }

    def forward(self, mem: Memory, input: torch.Tensor) -> torch.Tensor:
        w = mem.get(self.params["W"])
        b = mem.get(self.params["b"])
        return input.matmul(w) + b


class MyModel:
    """The article's model: Linear -> ReLU -> Linear."""

    def __init__(self, mem: Memory, hidden: int, params: dict):
        self.l1 = Linear(mem, INPUTS, hidden, params["w1"].t(), params["b1"].reshape(1, -1))
        self.l2 = Linear(mem, hidden, CLASSES, params["w2"].t(), params["b2"].reshape(1, -1))

    def forward(self, mem: Memory, input: torch.Tensor) -> torch.Tensor:
        o = self.l1.forward(mem, input)
        o = o.relu()
        return self.l2.forward(mem, o)


class Conv2d:
    """``conv2d(input, W, b)`` (3 x 3, stride 1, no padding) with ``W`` and ``b`` held in the store by name."""

    def __init__(self, mem: Memory, w: torch.Tensor, b: torch.Tensor):
        self.params = {"W": mem.push(w.clone().requires_grad_(True)), "b": mem.push(b.clone().requires_grad_(True))}

    def forward(self, mem: Memory, input: torch.Tensor) -> torch.Tensor:
        return F.conv2d(input, mem.get(self.params["W"]), mem.get(self.params["b"]))


class MyCnn:
    """The ``mnist-cnn`` net in the store: Conv2d -> ReLU -> Conv2d -> ReLU -> max-pool -> Linear -> ReLU -> Linear."""

    def __init__(self, mem: Memory, hidden: int, params: dict):
        self.c1 = Conv2d(mem, params["conv1_w"], params["conv1_b"])
        self.c2 = Conv2d(mem, params["conv2_w"], params["conv2_b"])
        self.l1 = Linear(mem, FLAT, hidden, params["fc1_w"].t(), params["fc1_b"].reshape(1, -1))
        self.l2 = Linear(mem, hidden, CLASSES, params["fc2_w"].t(), params["fc2_b"].reshape(1, -1))

    def forward(self, mem: Memory, input: torch.Tensor) -> torch.Tensor:
        o = self.c1.forward(mem, input).relu()
        o = self.c2.forward(mem, o).relu()
        o = F.max_pool2d(o, 2).flatten(1)
        o = self.l1.forward(mem, o).relu()
        return self.l2.forward(mem, o)


def mse(target: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """Mean squared error against one-hot targets."""
    return (F.one_hot(target, pred.shape[-1]).to(pred.dtype) - pred).square().mean()


def cross_entropy(target: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """``log_softmax`` then ``nll_loss``, as the article wrote it."""
    return F.nll_loss(pred.log_softmax(-1), target)


def get_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, indices: torch.Tensor) -> Iterator:
    """Reorder the whole set once by ``indices``, then yield ``narrow`` views of ``batch_size``."""
    num_rows = x.shape[0]
    x = x.index_select(0, indices)
    y = y.index_select(0, indices)
    return (
        (x.narrow(0, start, min(batch_size, num_rows - start)), y.narrow(0, start, min(batch_size, num_rows - start)))
        for start in range(0, num_rows, batch_size)
    )


def accuracy(target: torch.Tensor, pred: torch.Tensor) -> float:
    """Share of rows whose arg-max matches ``target``."""
    return (pred.argmax(1) == target).double().mean().item()


class StoreBatching(Implementation):
    """The store's data pipeline, shared by the loops built on the article's design.

    The training split is preprocessed once; each epoch reorders it by the
    harness's permutation and cuts it into ``narrow`` views (:func:`get_batches`).
    """

    def setup_batching(self, ctx) -> None:
        """Keep the workload and the permutation; preprocess the training split."""
        self.workload = ctx.workload
        self.permutation = ctx.permutation
        self.x = preprocess(ctx.train.images[: ctx.n_train])
        self.y = ctx.train.labels[: ctx.n_train]
        if cnn.is_cnn(ctx.workload):
            self.x = cnn.images(self.x)  # batches of 1 x 28 x 28 images for the convnet

    def batches(self, epoch):
        return get_batches(self.x, self.y, self.workload.batch_size, self.permutation(epoch))


class Store(StoreBatching):
    """The article's tensor-store training loop, in Python."""

    name = "store"
    description = "article's design: Memory tensor store, randperm + index_select + narrow batching"
    workloads = ("mnist-mlp", cnn.NAME)

    def setup(self, ctx):
        self.setup_batching(ctx)
        self.mem = Memory()
        self.cnn = cnn.is_cnn(ctx.workload)
        self.model = (MyCnn if self.cnn else MyModel)(self.mem, ctx.workload.hidden, ctx.params)
        self.errfunc = cross_entropy if ctx.workload.loss == "ce" else mse

    def forward(self, x):
        return self.model.forward(self.mem, x)

    def loss(self, logits, y):
        return self.errfunc(y, logits)

    def backward(self, loss):
        loss.backward()

    def step(self):
        self.mem.apply_grads_sgd_momentum(self.workload.lr, self.workload.momentum)

    @torch.no_grad()
    def predict(self, x):
        if self.cnn:
            return cnn.predict_in_chunks(lambda images: self.model.forward(self.mem, images), x)
        return self.model.forward(self.mem, x)
