"""``compiled``: the store's step with ``torch.compile`` (Inductor, CPU), compile time kept apart.

Forward, loss and the momentum update are three compiled functions
(``dynamic=False``: static shapes, the fastest kernels); autograd runs the
backward graph AOTAutograd compiled with the forward. Batching is the
store's ``index_select`` + ``narrow``. The harness drives the staged methods
and times every phase.

Compilation happens in :meth:`Compiled.setup`, not in the first epoch: one
throwaway training step per batch shape of the epoch (full batches and the
partial last one, which with static shapes is a second graph) runs on
*copies* of the initial parameters, so every graph, forward and backward, is
built before the first measured step while the real parameters, velocities
and gradients stay untouched. The seconds this takes are returned as
``compile_seconds`` (and kept in :meth:`Compiled.info`); they never enter an
epoch's time. Should a guard still fail later, Dynamo's recompile log is
switched on after setup, so the recompile shows on the terminal; it would
land in the first (warm-up) epoch, as every batch shape occurs in each epoch.
:meth:`Compiled.epoch_facts` counts the graphs compiled during each epoch
(``graphs_compiled``: the ``facts`` column of ``epochs.csv``, summed in
``summary.json``; the report warns when a measured epoch compiled any).
``predict`` runs the same math eagerly: evaluation batch sizes differ and
would only add graphs.

On ``mnist-cnn`` the compiled forward is the convnet over the store's layout
(:func:`perfsuite.impls.cnn.forward_fn`: Inductor calls oneDNN for the
convolutions and generates the pointwise, pooling and loss kernels); loss,
update, batching and the compile-in-setup protocol are the same.
"""

import time

import torch
import torch.nn.functional as F

from perfsuite.impls import cnn, toolchain
from perfsuite.impls.store import StoreBatching


def forward_fn(x: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor):
    """Linear -> ReLU -> Linear as ``input.matmul(W) + b`` with ``W`` in x out (the store's math)."""
    o = x.matmul(w1) + b1
    o = o.relu()
    return o.matmul(w2) + b2


def cross_entropy(target: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """``log_softmax`` then ``nll_loss``."""
    return F.nll_loss(pred.log_softmax(-1), target)


def mse(target: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """Mean squared error against one-hot targets."""
    return (F.one_hot(target, pred.shape[-1]).to(pred.dtype) - pred).square().mean()


def make_update(lr: float, beta: float):
    """The momentum update with ``lr`` and ``beta`` fixed: ``v = beta v + (1-beta) g``, ``p -= lr v``, ``g = 0``."""

    def sgd_momentum(params: list[torch.Tensor], grads: list[torch.Tensor], velocity: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for p, g, v in zip(params, grads, velocity, strict=True):
                v.mul_(beta).add_(g, alpha=1 - beta)
                p.sub_(v, alpha=lr)
                g.zero_()

    return sgd_momentum


def store_layout(params: dict) -> list:
    """The initial parameters as the store keeps them: ``W`` in x out, ``b`` 1 x out, requiring grad."""
    return [
        params["w1"].t().clone().requires_grad_(True),
        params["b1"].reshape(1, -1).clone().requires_grad_(True),
        params["w2"].t().clone().requires_grad_(True),
        params["b2"].reshape(1, -1).clone().requires_grad_(True),
    ]


def batch_sizes(n_train: int, batch_size: int) -> list:
    """The distinct batch sizes of an epoch: full batches, then the partial last one if any."""
    full = min(batch_size, n_train)
    sizes = [full]
    if n_train % batch_size and n_train > batch_size:
        sizes.append(n_train % batch_size)
    return sizes


class Compiled(StoreBatching):
    """torch.compile'd forward, loss and update; autograd backward; store batching."""

    name = "compiled"
    description = "torch.compile (Inductor, CPU) forward, loss and update; compile time reported apart"
    workloads = ("mnist-mlp", cnn.NAME)

    @classmethod
    def unavailable_reason(cls):
        """Inductor on CPU compiles C++: says so when no compiler (``$CXX`` or its default) is found."""
        missing = toolchain.missing_compiler(toolchain.inductor_compiler_defaults())
        return f"Inductor (torch.compile on CPU) cannot compile its kernels: {missing}" if missing else None

    def setup(self, ctx):
        self.setup_batching(ctx)
        self.cnn = cnn.is_cnn(ctx.workload)
        self.layout, self.eager = (cnn.store_layout, cnn.forward_fn) if self.cnn else (store_layout, forward_fn)
        self.params = self.layout(ctx.params)
        self.velocity = [torch.zeros_like(p) for p in self.params]
        self.compile = self._compile(ctx)
        self._graphs_seen = _graph_count()
        torch._logging.set_logs(recompiles=True)
        return {"compile_seconds": self.compile["compile_seconds"]}

    def _compile(self, ctx) -> dict:
        """Wrap the three functions with torch.compile and build every graph; returns compile facts.

        ``compile_seconds`` covers importing Dynamo and Inductor, tracing, code
        generation and the C++ builds (or Inductor's on-disk cache lookups).
        """
        wl = ctx.workload
        start = time.perf_counter()
        toolchain.quiet_cpp_extension()  # Inductor imports it; its CUDA_HOME warning is noise on CPU
        options = {"backend": "inductor", "dynamic": False}
        self._forward = torch.compile(self.eager, **options)
        self._loss = torch.compile(mse if wl.loss == "mse" else cross_entropy, **options)
        self._update = torch.compile(make_update(wl.lr, wl.momentum), **options)
        shapes = batch_sizes(ctx.n_train, wl.batch_size)
        graphs_before = _graph_count()
        for size in shapes:
            self._throwaway_step(ctx.params, size)
        return {
            "compile_seconds": time.perf_counter() - start,
            "compiled_graphs": _graph_count() - graphs_before,
            "batch_shapes": shapes,
        }

    def _throwaway_step(self, initial: dict, size: int) -> None:
        """One full training step of batch ``size`` on copies of the parameters: compiles its graphs."""
        params = self.layout(initial)
        velocity = [torch.zeros_like(p) for p in params]
        loss = self._loss(self.y[:size], self._forward(self.x[:size], *params))
        loss.backward()
        self._update(params, [p.grad for p in params], velocity)

    def forward(self, x):
        return self._forward(x, *self.params)

    def loss(self, logits, y):
        return self._loss(y, logits)

    def backward(self, loss):
        loss.backward()

    def step(self):
        self._update(self.params, [p.grad for p in self.params], self.velocity)

    def epoch_facts(self):
        """Graphs Dynamo compiled during the epoch just run (0 when setup compiled every shape)."""
        now = _graph_count()
        compiled, self._graphs_seen = now - self._graphs_seen, now
        return {"graphs_compiled": compiled}

    @torch.no_grad()
    def predict(self, x):
        """Logits computed eagerly with the trained parameters (same math as the compiled forward)."""
        if self.cnn:
            return cnn.predict_in_chunks(lambda images: self.eager(images, *self.params), x)
        return forward_fn(x, *self.params)

    def info(self):
        """Compile seconds, graphs built in setup and the batch shapes compiled for."""
        return {"torch": torch.__version__, "backend": "inductor", "dynamic": False, **self.compile}


def _graph_count() -> int:
    """Graphs Dynamo has compiled in this process so far."""
    from torch._dynamo.utils import counters  # private module: loaded only where Dynamo has run

    return int(counters["stats"]["unique_graphs"])
