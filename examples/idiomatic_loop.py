"""perfsuite's ``idiomatic`` implementation written out as a user's script, instrumented with perfsuite.record.

The same computation as ``perfsuite run --impls idiomatic`` step for step:
torchvision's MNIST with ``ToTensor`` + ``Normalize`` read from ``--data-dir``
(never downloaded), a ``DataLoader`` fed the workload's permutation of each
epoch, the article's MLP loaded with the workload's initial parameters,
``nn.CrossEntropyLoss`` and ``torch.optim.SGD`` whose momentum buffers start at
zero. Each phase scope holds what the harness times as that phase, and the
DataLoader of an epoch is made inside its first ``batching``, as the harness
makes it. So this script's losses equal the implementation's, and its phase
times are the yardstick of how far ``perfsuite profile`` agrees with ``perfsuite
run`` (``benchmarks/profile_agreement.py``)::

    perfsuite profile -- python examples/idiomatic_loop.py --data-dir ../shared/data --subset 0.1 --epochs 3
"""

import argparse

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

from perfsuite import record
from perfsuite.core.data import MEAN, STD
from perfsuite.core.workload import Workload, epoch_permutation, initial_parameters


class MLP(nn.Module):
    """Flatten -> Linear(784, hidden) -> ReLU -> Linear(hidden, 10), as the implementation nests it."""

    def __init__(self, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 10))

    def forward(self, x):
        return self.net(x)


def build_model(workload: Workload) -> nn.Module:
    """The article's MLP holding the workload's initial parameters."""
    model = MLP(workload.hidden)
    params = initial_parameters(workload)
    with torch.no_grad():
        model.net[1].weight.copy_(params["w1"])
        model.net[1].bias.copy_(params["b1"])
        model.net[3].weight.copy_(params["w2"])
        model.net[3].bias.copy_(params["b2"])
    return model


def batches(dataset, workload: Workload, epoch: int):
    """The epoch's batches, the DataLoader made on the first request (as the harness times it)."""
    order = epoch_permutation(workload, len(dataset), epoch).tolist()
    yield from DataLoader(dataset, batch_size=workload.batch_size, sampler=order, num_workers=0)


def setup(args) -> dict:
    """The data set, model, loss and optimiser of ``args``, as the implementation sets them up."""
    workload = Workload(batch_size=args.batch_size, subset=args.subset)
    torch.set_num_threads(args.threads or workload.threads)
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))])
    dataset = datasets.MNIST(args.data_dir, train=True, download=False, transform=transform)
    n = workload.train_size(len(dataset))
    if n != len(dataset):
        dataset = Subset(dataset, range(n))
    model = build_model(workload)
    momentum = workload.momentum
    optimizer = torch.optim.SGD(model.parameters(), lr=workload.lr, momentum=momentum, dampening=momentum)
    for p in model.parameters():
        optimizer.state[p]["momentum_buffer"] = torch.zeros_like(p)
    return {"workload": workload, "dataset": dataset, "model": model, "criterion": nn.CrossEntropyLoss(),
            "optimizer": optimizer}  # fmt: skip


def train_epoch(state: dict, epoch: int):
    """One epoch, each phase in its ``record`` scope; returns the last step's loss tensor."""
    model, criterion, optimizer = state["model"], state["criterion"], state["optimizer"]
    with record.epoch():
        for x, y in record.batches(batches(state["dataset"], state["workload"], epoch)):
            with record.phase("forward"):
                logits = model(x)
            with record.phase("loss"):
                loss = criterion(logits, y)
            with record.phase("backward"):
                loss.backward()
            with record.phase("step"):
                optimizer.step()
                optimizer.zero_grad()
            record.loss(loss)
    return loss


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="data", help="torchvision root holding MNIST/raw/ (no download)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--subset", type=float, default=1.0, help="share of the training split, in (0, 1]")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: perfsuite's default, every CPU)")
    return parser.parse_args(argv)


def main() -> None:
    args = parse()
    state = setup(args)
    for epoch in range(args.epochs):
        loss = train_epoch(state, epoch)
        print(f"epoch {epoch}: last loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
