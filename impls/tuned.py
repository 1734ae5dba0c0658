"""``tuned``: how close a Python-driven staged loop can get to the compute floor.

Same workload, same staged methods (the harness still times batching,
forward, loss, backward and step), but every step does only what the
arithmetic needs, in as few calls as it can: 14 ATen calls per step, none of
them an autograd node. Every call outside the two large products costs
microseconds however small its tensors (dispatch, cold code and caches
between different kernels), so the count of calls is what is tuned:

* **storage** — the parameters are views of one flat tensor and their momentum
  buffers views of another. The first layer is stored *augmented*: ``W1a`` is
  ``(INPUTS+1) x hidden``, ``w1.T`` with ``b1`` as its last row, and every
  input row carries a constant 1 after its 784 pixels, so ``x W1a`` adds the
  bias and ``x.T dh`` computes the bias gradient inside the same product;
* **batching** — the training split is preprocessed once into one contiguous
  ``n x ROW`` float32 tensor: the 784 pixels, the constant 1, then the
  sample's 10 targets (``-1/batch_size`` at its label: the gradient of the
  batch's mean negative log-likelihood with respect to its log-probabilities).
  A batch is one ``index_select`` of the permutation's slice into a
  preallocated buffer, so inputs and targets come from the same rows of
  memory, then one copy turns the targets class-major (``CLASSES x rows``).
  The rows are allocated on transparent huge pages where the OS offers them;
* **forward** — ``mm`` then an in-place ReLU; the second layer is computed
  *class-major*, ``logits.T = W2 h.T + b2`` (``CLASSES x rows``): softmax
  along 128 contiguous columns is several times cheaper on CPU than along
  rows of 10;
* **loss** — ``log_softmax`` along dim 0 into a buffer, then the loss is one
  ``dot`` of the log-probabilities with the gathered targets (a fresh 0-d
  tensor per step: the harness keeps every step's loss);
* **backward** — written by hand, no autograd graph. ATen's log-softmax
  backward applied to the targets gives ``g = (softmax - onehot) / rows`` in
  one call; the momentum blend is folded into each product's ``alpha`` and
  ``beta``, so gradients go straight into their momentum buffers
  (``v = beta·v + (1-beta)·grad`` in the GEMM's epilogue): ``vW2 ← g h``,
  ``vb2 ← g 1``, ``dh = g.T W2`` masked by ``h > 0``, ``vW1a ← xa.T dh``.
  No gradient is ever stored on its own;
* **step** — what is left of SGD with momentum: ``p.add_(v, alpha=-lr)``, one
  call on the flat tensors.

Because the momentum blend runs inside ``backward``, this loop's ``step``
phase is only the parameter update; compare its backward + step with the
other loops'.

Losses match ``store`` to float rounding (``perfsuite check``); only the
order of the floating-point operations inside the fused kernels differs.

Measured results (per-call costs, floor multiples, what was tried):
docs/findings.md.
"""

import mmap
from dataclasses import dataclass

import torch

from perfsuite.core.data import preprocess
from perfsuite.core.interface import Implementation
from perfsuite.core.workload import CLASSES, INPUTS

ROW = INPUTS + 1 + CLASSES
"""Floats per gathered row: the pixels, the constant 1 of the bias, the targets."""

threshold_backward = torch.ops.aten.threshold_backward.grad_input


@dataclass(frozen=True)
class Buffers:
    """Preallocated tensors for a batch of one size, with the views the step uses."""

    gathered: torch.Tensor
    x: torch.Tensor
    x_t: torch.Tensor
    gathered_targets_t: torch.Tensor
    targets_t: torch.Tensor
    targets_flat: torch.Tensor
    hidden: torch.Tensor
    hidden_t: torch.Tensor
    grad_hidden: torch.Tensor
    logits_t: torch.Tensor
    log_probs_t: torch.Tensor
    log_probs_flat: torch.Tensor
    ones: torch.Tensor

    @classmethod
    def allocate(cls, rows: int, hidden: int) -> "Buffers":
        """Buffers for ``rows`` samples: gathered rows (inputs then targets), class-major ``CLASSES x rows`` ones."""
        gathered, targets_t, h = torch.empty(rows, ROW), torch.empty(CLASSES, rows), torch.empty(rows, hidden)
        x, log_probs_t = gathered[:, : INPUTS + 1], torch.empty(CLASSES, rows)
        return cls(
            gathered=gathered,
            x=x,
            x_t=x.t(),
            gathered_targets_t=gathered[:, INPUTS + 1 :].t(),
            targets_t=targets_t,
            targets_flat=targets_t.view(-1),
            hidden=h,
            hidden_t=h.t(),
            grad_hidden=torch.empty(rows, hidden),
            logits_t=torch.empty(CLASSES, rows),
            log_probs_t=log_probs_t,
            log_probs_flat=log_probs_t.view(-1),
            ones=torch.ones(rows),
        )


def flat_views(flat: torch.Tensor, shapes: list) -> list:
    """Consecutive views of the 1-d tensor ``flat`` with the given shapes."""
    sizes = [torch.Size(shape).numel() for shape in shapes]
    return [part.view(shape) for part, shape in zip(torch.split(flat, sizes), shapes, strict=True)]


def huge_page_zeros(rows: int, cols: int) -> tuple:
    """A zeroed float32 ``rows x cols`` tensor, and whether it asked the OS for transparent huge pages.

    The training rows are gathered at random, 128 rows of 3 kB from 190 MB per
    step: with 4 kB pages nearly every row costs a TLB miss, with 2 MB pages
    the whole set fits in the TLB (batching 13% faster here). Anonymous memory
    with ``madvise(MADV_HUGEPAGE)`` gets them where the kernel's THP setting
    is ``madvise`` or ``always``; elsewhere (no such advice on this OS, or a
    kernel built without THP, which refuses it) this is a plain ``torch.zeros``.
    """
    advice = getattr(mmap, "MADV_HUGEPAGE", None)
    if advice is None or rows * cols == 0:
        return torch.zeros(rows, cols), False
    region = mmap.mmap(-1, rows * cols * 4, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        region.madvise(advice)
    except OSError:
        region.close()
        return torch.zeros(rows, cols), False
    return torch.frombuffer(region, dtype=torch.float32).view(rows, cols), True


def huge_page_bytes(tensor: torch.Tensor, smaps: str = "/proc/self/smaps"):
    """Bytes of the mapping holding ``tensor`` that the kernel backs with huge pages, or ``None`` if unknown."""
    address = tensor.data_ptr()
    try:
        with open(smaps) as lines:
            inside = False
            for line in lines:
                head = line.split(maxsplit=1)[0]
                if "-" in head and not head.endswith(":"):
                    start, end = (int(part, 16) for part in head.split("-"))
                    inside = start <= address < end
                elif inside and head == "AnonHugePages:":
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def training_rows(images: torch.Tensor, labels: torch.Tensor, target: float) -> tuple:
    """One ``n x ROW`` float32 tensor: each sample's preprocessed pixels, a constant 1, then its targets.

    The targets hold ``target`` at the sample's label and 0 elsewhere, so one
    gather brings a batch's inputs and targets from the same rows of memory.
    Returns the tensor and whether it is on huge pages (:func:`huge_page_zeros`).
    """
    pixels = preprocess(images)
    data, huge = huge_page_zeros(len(pixels), ROW)
    data[:, :INPUTS] = pixels
    data[:, INPUTS] = 1.0
    data[torch.arange(len(labels)), INPUTS + 1 + labels.to(torch.int64)] = target
    return data, huge


class Tuned(Implementation):
    """Staged loop on flat parameters: bias-augmented inputs, class-major loss, momentum in the GEMM epilogue."""

    name = "tuned"
    description = (
        "near the floor: contiguous bias-augmented data gathered into buffers, class-major loss, "
        "hand-written backward into the momentum, one-call step"
    )

    def setup(self, ctx):
        wl = ctx.workload
        self.batch_size, self.hidden = wl.batch_size, wl.hidden
        self.lr, self.beta = wl.lr, wl.momentum
        self.mse = wl.loss == "mse"
        self.permutation = ctx.permutation
        self.n = ctx.n_train
        target = 1.0 if self.mse else -1.0 / self.batch_size
        images, labels = ctx.train.images[: ctx.n_train], ctx.train.labels[: ctx.n_train]
        self.data, self.huge_pages = training_rows(images, labels, target)
        p = ctx.params
        w1a = torch.cat([p["w1"].t(), p["b1"].unsqueeze(0)])
        self.flat_params = torch.cat([w1a.reshape(-1), p["w2"].reshape(-1), p["b2"]])
        self.flat_velocity = torch.zeros_like(self.flat_params)
        shapes = [w1a.shape, p["w2"].shape, p["b2"].shape]
        self.w1a, self.w2, self.b2 = flat_views(self.flat_params, shapes)
        self.vw1a, self.vw2, self.vb2 = flat_views(self.flat_velocity, shapes)
        self.w1, self.b1 = self.w1a[:INPUTS], self.w1a[INPUTS]
        self.params = [self.w1, self.b1, self.w2, self.b2]
        self.velocity = [self.vw1a[:INPUTS], self.vw1a[INPUTS], self.vw2, self.vb2]
        self.b2_column = self.b2.unsqueeze(1)
        self._buffers = {}
        self._active = None

    def buffers(self, rows: int) -> Buffers:
        """The buffers of a batch of ``rows`` samples (allocated once per batch size)."""
        found = self._buffers.get(rows)
        if found is None:
            found = self._buffers[rows] = Buffers.allocate(rows, self.hidden)
        return found

    def batches(self, epoch):
        return self._gather(self.permutation(epoch))

    def _gather(self, order: torch.Tensor):
        """Yield ``(x, targets_t)`` gathered into the preallocated buffers, ``batch_size`` rows at a time.

        The targets are stored for a full batch; a shorter last batch rescales
        its cross-entropy targets from ``-1/batch_size`` to ``-1/rows``.
        """
        size = self.batch_size
        for start in range(0, self.n, size):
            index = order[start : start + size]
            rows = index.shape[0]
            buf = self._active = self.buffers(rows)
            torch.index_select(self.data, 0, index, out=buf.gathered)
            buf.targets_t.copy_(buf.gathered_targets_t)
            if rows != size and not self.mse:
                buf.targets_t.mul_(size / rows)
            yield buf.x, buf.targets_t

    def _buffers_of(self, x) -> Buffers:
        buf = self._active
        if buf is None or buf.x is not x:
            buf = self._active = self.buffers(x.shape[0])
            buf.x.copy_(x)
        return buf

    def forward(self, x):
        """Hidden activations in place, then the class-major logits ``CLASSES x rows``."""
        buf = self._buffers_of(x)
        torch.mm(buf.x, self.w1a, out=buf.hidden).relu_()
        return torch.addmm(self.b2_column, self.w2, buf.hidden_t, out=buf.logits_t)

    def loss(self, logits_t, targets_t):
        buf = self._active
        if targets_t is not buf.targets_t:
            buf.targets_t.copy_(targets_t)
        if self.mse:
            return (buf.targets_t - logits_t).square().mean()
        torch.log_softmax(logits_t, 0, out=buf.log_probs_t)
        return torch.dot(buf.log_probs_flat, buf.targets_flat)

    def backward(self, loss):
        """Gradients by hand, each blended into its momentum buffer by the product that computes it."""
        buf = self._active
        if self.mse:
            g = torch.sub(buf.logits_t, buf.targets_t).mul_(2.0 / buf.logits_t.numel())
        else:
            g = torch._log_softmax_backward_data(buf.targets_t, buf.log_probs_t, 0, torch.float32)
        keep, blend = self.beta, 1 - self.beta
        torch.addmm(self.vw2, g, buf.hidden, beta=keep, alpha=blend, out=self.vw2)
        torch.addmv(self.vb2, g, buf.ones, beta=keep, alpha=blend, out=self.vb2)
        dh = torch.mm(g.t(), self.w2, out=buf.grad_hidden)
        threshold_backward(dh, buf.hidden, 0, grad_input=dh)
        torch.addmm(self.vw1a, buf.x_t, dh, beta=keep, alpha=blend, out=self.vw1a)

    def step(self):
        self.flat_params.add_(self.flat_velocity, alpha=-self.lr)

    def info(self):
        huge = huge_page_bytes(self.data) if self.huge_pages else 0
        return {"data_huge_page_mb": None if huge is None else round(huge / 2**20, 1)}

    @torch.no_grad()
    def predict(self, x):
        hidden = torch.addmm(self.b1, x, self.w1).relu_()
        return torch.addmm(self.b2, hidden, self.w2.t())
