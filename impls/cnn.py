"""The ``mnist-cnn`` workload's model, shared by the implementations that train it.

The PyTorch examples' MNIST convnet (``examples/mnist/main.py``) without its
two dropout layers, so training is deterministic and implementations can be
compared step by step: conv 1→32 3×3 → ReLU → conv 32→64 3×3 → ReLU →
max-pool 2 → flatten (9216) → Linear(9216→h) → ReLU → Linear(h→10).
The harness draws its initial parameters
(:class:`perfsuite.core.workloads.MnistCnn`); :class:`Net` is the
``nn.Module`` form (``idiomatic``), :func:`forward_fn` the functional form
over parameters held elsewhere (``store``, ``compiled``).
"""

import torch
import torch.nn.functional as F
from torch import nn

from perfsuite.core.workload import CLASSES
from perfsuite.core.workloads import FLAT, IMAGE

NAME = "mnist-cnn"
PREDICT_CHUNK = 1024
"""Samples per forward in ``predict``: activations of 8,192 images would take over 2 GB."""

ORDER = ("conv1_w", "conv1_b", "conv2_w", "conv2_b", "fc1_w", "fc1_b", "fc2_w", "fc2_b")
"""The parameters in the order :func:`forward_fn` takes them."""


def is_cnn(workload) -> bool:
    """Whether ``workload`` (a :class:`~perfsuite.core.workload.Workload`) trains the convnet."""
    return workload.name == NAME


def images(x: torch.Tensor) -> torch.Tensor:
    """Preprocessed rows (N x 784) as images (N x 1 x 28 x 28), a view."""
    return x.view(-1, *IMAGE)


class Net(nn.Module):
    """The examples' ``Net`` with ``dropout1``/``dropout2`` left out."""

    def __init__(self, hidden: int):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.fc1 = nn.Linear(FLAT, hidden)
        self.fc2 = nn.Linear(hidden, CLASSES)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        return self.fc2(x)

    @torch.no_grad()
    def load_initial(self, params: dict) -> None:
        """Copy the harness's initial parameters (``nn.Conv2d``/``nn.Linear`` layout) into the layers."""
        for layer in ("conv1", "conv2", "fc1", "fc2"):
            module = getattr(self, layer)
            module.weight.copy_(params[f"{layer}_w"])
            module.bias.copy_(params[f"{layer}_b"])


def forward_fn(x, conv1_w, conv1_b, conv2_w, conv2_b, fc1_w, fc1_b, fc2_w, fc2_b):
    """The same net over explicit parameters, the linear layers as ``input.matmul(W) + b`` with ``W`` in x out."""
    o = F.conv2d(x, conv1_w, conv1_b).relu()
    o = F.conv2d(o, conv2_w, conv2_b).relu()
    o = F.max_pool2d(o, 2).flatten(1)
    o = (o.matmul(fc1_w) + fc1_b).relu()
    return o.matmul(fc2_w) + fc2_b


def store_layout(params: dict) -> list:
    """The initial parameters in :data:`ORDER` as the store keeps them (linear ``W`` in x out, ``b`` 1 x out)."""
    out = []
    for key in ORDER:
        value = params[key]
        if key.startswith("fc") and key.endswith("_w"):
            value = value.t()
        elif key.startswith("fc"):
            value = value.reshape(1, -1)
        out.append(value.clone().requires_grad_(True))
    return out


@torch.no_grad()
def predict_in_chunks(forward, x: torch.Tensor) -> torch.Tensor:
    """Logits of ``forward`` for preprocessed rows ``x`` (N x 784), :data:`PREDICT_CHUNK` images at a time."""
    x = images(x)
    return torch.cat([forward(x[start : start + PREDICT_CHUNK]) for start in range(0, len(x), PREDICT_CHUNK)])
