"""``idiomatic``: the training loop the PyTorch tutorials teach.

``torchvision.datasets.MNIST`` with ``ToTensor`` + ``Normalize``, a
``DataLoader`` (no worker processes) whose sampler is the harness's
permutation, an ``nn.Module``, ``nn.CrossEntropyLoss`` and ``torch.optim.SGD``.
SGD's momentum buffers are seeded with zeros and ``dampening`` equals the
momentum, which makes it exactly the workload's EMA rule ``v = 0.9 v + 0.1 g``.
On ``mnist-cnn`` the module is the PyTorch examples' convnet (:class:`perfsuite.impls.cnn.Net`)
fed the DataLoader's 1 x 28 x 28 images; everything else is the same loop.
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset

from perfsuite.core.data import MEAN, STD
from perfsuite.core.interface import Implementation
from perfsuite.core.workload import CLASSES, INPUTS
from perfsuite.impls import cnn


class MLP(nn.Module):
    """Flatten -> Linear(784, hidden) -> ReLU -> Linear(hidden, 10)."""

    def __init__(self, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(INPUTS, hidden), nn.ReLU(), nn.Linear(hidden, CLASSES))

    def forward(self, x):
        return self.net(x)

    @torch.no_grad()
    def load_initial(self, params: dict) -> None:
        """Copy the harness's initial parameters (``nn.Linear`` layout) into the layers."""
        first, second = self.net[1], self.net[3]
        first.weight.copy_(params["w1"])
        first.bias.copy_(params["b1"])
        second.weight.copy_(params["w2"])
        second.bias.copy_(params["b2"])


class Idiomatic(Implementation):
    """torchvision dataset + DataLoader + nn.Module + torch.optim.SGD."""

    name = "idiomatic"
    description = "tutorial PyTorch: torchvision MNIST + DataLoader + nn.Module + optim.SGD"
    workloads = ("mnist-mlp", cnn.NAME)

    def setup(self, ctx):
        from torchvision import datasets, transforms  # only the torchvision loops pay for importing it

        transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))])
        dataset = datasets.MNIST(ctx.dataset.root, train=True, download=False, transform=transform)
        self.dataset = dataset if ctx.n_train == len(dataset) else Subset(dataset, range(ctx.n_train))
        self.permutation = ctx.permutation
        self.batch_size = ctx.workload.batch_size
        self.cnn = cnn.is_cnn(ctx.workload)
        self.model = (cnn.Net if self.cnn else MLP)(ctx.workload.hidden)
        self.model.load_initial(ctx.params)
        self.mse = ctx.workload.loss == "mse"
        self.criterion = nn.MSELoss() if self.mse else nn.CrossEntropyLoss()
        momentum = ctx.workload.momentum
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=ctx.workload.lr, momentum=momentum, dampening=momentum
        )
        for p in self.model.parameters():
            self.optimizer.state[p]["momentum_buffer"] = torch.zeros_like(p)

    def batches(self, epoch):
        order = self.permutation(epoch).tolist()
        return DataLoader(self.dataset, batch_size=self.batch_size, sampler=order, num_workers=0)

    def forward(self, x):
        return self.model(x)

    def loss(self, logits, y):
        target = F.one_hot(y, CLASSES).to(logits.dtype) if self.mse else y
        return self.criterion(logits, target)

    def backward(self, loss):
        loss.backward()

    def step(self):
        self.optimizer.step()
        self.optimizer.zero_grad()

    @torch.no_grad()
    def predict(self, x):
        return cnn.predict_in_chunks(self.model, x) if self.cnn else self.model(x)
