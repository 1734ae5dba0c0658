"""``torchscript``: the store loop with its model, loss and update compiled by ``torch.jit.script``.

The model (the article's Linear -> ReLU -> Linear with ``W`` stored in x out),
the two losses and the momentum update are TorchScript; autograd computes
the gradients. Batching is the store's ``index_select`` + ``narrow``. The
harness drives the staged methods, so it times every phase itself.

``torch.jit.script`` is deprecated in current PyTorch (it warns with a
``FutureWarning`` on every call). The warnings raised while scripting are
caught in a filter scoped to those calls, never shown, and recorded in
:meth:`TorchScript.info` (``meta.json`` -> ``implementations.torchscript.info``)
so the report can say so.
"""

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from perfsuite.impls.store import StoreBatching


class ScriptedMLP(nn.Module):
    """Linear -> ReLU -> Linear as ``input.matmul(W) + b``, ``W`` in x out (the store's layout)."""

    def __init__(self, params: dict):
        super().__init__()
        self.w1 = nn.Parameter(params["w1"].t().clone())
        self.b1 = nn.Parameter(params["b1"].reshape(1, -1).clone())
        self.w2 = nn.Parameter(params["w2"].t().clone())
        self.b2 = nn.Parameter(params["b2"].reshape(1, -1).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = x.matmul(self.w1) + self.b1
        o = o.relu()
        return o.matmul(self.w2) + self.b2


def cross_entropy(target: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """``log_softmax`` then ``nll_loss`` (scripted)."""
    return F.nll_loss(pred.log_softmax(-1), target)


def mse(target: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """Mean squared error against one-hot targets (scripted)."""
    return (F.one_hot(target, pred.size(-1)).to(pred.dtype) - pred).square().mean()


def sgd_momentum(params: list[torch.Tensor], velocity: list[torch.Tensor], lr: float, beta: float) -> None:
    """``v = beta*v + (1-beta)*g``, ``p -= lr*v``, then zero the gradient (scripted, in place)."""
    with torch.no_grad():
        for i in range(len(params)):
            p = params[i]
            g = p.grad
            assert g is not None, "sgd_momentum: a parameter has no gradient"
            v = velocity[i]
            v.mul_(beta).add_(g, alpha=1.0 - beta)
            p.sub_(v, alpha=lr)
            g.zero_()


def script_quietly(objects: dict) -> tuple:
    """Script every object of ``objects`` (name -> function or module) with the warnings caught.

    Returns ``(scripted, messages)``: name -> scripted object, and the distinct
    warning texts raised while scripting (the deprecation among them).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scripted = {name: torch.jit.script(obj) for name, obj in objects.items()}
    messages = list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
    return scripted, messages


def deprecation_note(messages: list) -> str:
    """The deprecation the scripting calls reported, or an empty string."""
    return next((m for m in messages if "deprecat" in m.lower()), "")


class TorchScript(StoreBatching):
    """Scripted model, loss and momentum update; autograd for backward; store batching."""

    name = "torchscript"
    description = "torch.jit.script model, loss and update (deprecated API), store batching"

    def setup(self, ctx):
        wl = ctx.workload
        self.setup_batching(ctx)
        loss_fn = mse if wl.loss == "mse" else cross_entropy
        scripted, self.warnings = script_quietly(
            {"model": ScriptedMLP(ctx.params), "loss": loss_fn, "update": sgd_momentum}
        )
        self.model, self.errfunc, self.update = scripted["model"], scripted["loss"], scripted["update"]
        self.params = [self.model.w1, self.model.b1, self.model.w2, self.model.b2]
        self.velocity = [torch.zeros_like(p) for p in self.params]

    def forward(self, x):
        return self.model(x)

    def loss(self, logits, y):
        return self.errfunc(y, logits)

    def backward(self, loss):
        loss.backward()

    def step(self):
        self.update(self.params, self.velocity, self.workload.lr, self.workload.momentum)

    @torch.no_grad()
    def predict(self, x):
        """Logits from the scripted model, without gradients."""
        return self.model(x)

    def info(self):
        """The deprecation of ``torch.jit.script`` and every warning scripting raised."""
        note = deprecation_note(self.warnings)
        return {
            "torch": torch.__version__,
            "torch_jit_script_deprecated": bool(note),
            "deprecation": note,
            "scripting_warnings": self.warnings,
        }
