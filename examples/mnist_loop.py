"""A plain PyTorch MNIST training loop, instrumented with perfsuite.record.

The article's model (784 -> 128 -> ReLU -> 10), torchvision's MNIST with
``ToTensor`` + ``Normalize`` read from ``--data-dir`` (never downloaded), a
``DataLoader``, cross-entropy and SGD with momentum: the loop the PyTorch
tutorials teach (perfsuite's ``idiomatic`` implementation). The ``record``
scopes cost next to nothing when recording is off, so ``python
examples/mnist_loop.py`` trains as usual; ``perfsuite profile -- python
examples/mnist_loop.py --data-dir DIR`` records its phases::

    perfsuite profile -- python examples/mnist_loop.py --data-dir /work/shared/data --subset 0.1 --epochs 3
"""

import argparse

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

from perfsuite import record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="data", help="torchvision root holding MNIST/raw/ (no download)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.3)
    parser.add_argument("--subset", type=float, default=1.0, help="share (<= 1) or number (> 1) of training samples")
    parser.add_argument("--steps", type=int, default=0, help="stop each epoch after this many steps (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train = datasets.MNIST(args.data_dir, train=True, download=False, transform=transform)
    n = int(args.subset * len(train)) if args.subset <= 1 else int(args.subset)
    train = Subset(train, range(min(n, len(train))))
    loader = DataLoader(train, batch_size=args.batch_size, shuffle=True, num_workers=0)

    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, dampening=0.9)

    for epoch in range(args.epochs):
        total = torch.zeros(())
        with record.epoch():
            for i, (x, y) in enumerate(record.batches(loader)):
                with record.phase("forward"):
                    logits = model(x)
                with record.phase("loss"):
                    loss = F.cross_entropy(logits, y)
                with record.phase("backward"):
                    loss.backward()
                with record.phase("step"):
                    opt.step()
                    opt.zero_grad()
                record.loss(loss)
                total += loss.detach()
                if args.steps and i + 1 >= args.steps:
                    break
        print(f"epoch {epoch}: mean loss {total.item() / (i + 1):.4f}")


if __name__ == "__main__":
    main()
