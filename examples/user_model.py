"""A user's own model and data, generated in the script, instrumented with perfsuite.record.

A small residual MLP regressing a noisy nonlinear function of 32 features,
trained with AdamW: nothing about MNIST, nothing downloaded. Besides the five
standard phases it names three of its own — ``to_device`` (the copy to the
model's device and dtype), ``logging`` (a running metric every few steps) and
``eval`` (a held-out loss after each epoch's training steps) — which
``perfsuite profile`` records per step and reports as a breakdown of ``other``::

    perfsuite profile -- python examples/user_model.py --steps 50 --epochs 3
"""

import argparse

import torch
from torch import nn

from perfsuite import record


class Block(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.ff = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))

    def forward(self, x):
        return x + self.ff(self.norm(x))


class Regressor(nn.Module):
    def __init__(self, features: int, width: int, depth: int):
        super().__init__()
        self.inp = nn.Linear(features, width)
        self.blocks = nn.Sequential(*[Block(width) for _ in range(depth)])
        self.out = nn.Linear(width, 1)

    def forward(self, x):
        return self.out(self.blocks(self.inp(x))).squeeze(-1)


def make_data(n: int, features: int, generator: torch.Generator):
    """Features and a noisy nonlinear target, generated here (float64, so ``to_device`` has work to do)."""
    x = torch.randn(n, features, generator=generator, dtype=torch.float64)
    w = torch.randn(features, generator=generator, dtype=torch.float64)
    y = torch.sin(x @ w / features**0.5) + 0.1 * x[:, 0] * x[:, 1] + 0.05 * torch.randn(n, generator=generator)
    return x, y


def batches(x, y, batch_size: int, generator: torch.Generator):
    order = torch.randperm(len(x), generator=generator)
    for start in range(0, len(x), batch_size):
        index = order[start : start + batch_size]
        yield x[index], y[index]


@record.phase("step")
def update(opt):
    opt.step()
    opt.zero_grad(set_to_none=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100, help="training steps per epoch")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--fail-at-epoch", type=int, default=-1, help="raise in this epoch (to test crash handling)")
    args = parser.parse_args()

    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    x, y = make_data(args.steps * args.batch_size, args.features, g)
    x_val, y_val = make_data(4 * args.batch_size, args.features, g)
    model = Regressor(args.features, args.width, args.depth)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    seen = []

    for epoch in range(args.epochs):
        with record.epoch():
            for step, (xb, yb) in enumerate(record.batches(batches(x, y, args.batch_size, g))):
                if epoch == args.fail_at_epoch and step == args.steps // 2:
                    raise RuntimeError(f"simulated failure in epoch {epoch}")
                with record.phase("to_device"):
                    xb, yb = xb.to(torch.float32), yb.to(torch.float32)
                with record.phase("forward"):
                    pred = model(xb)
                with record.phase("loss"):
                    loss = nn.functional.mse_loss(pred, yb)
                with record.phase("backward"):
                    loss.backward()
                update(opt)
                record.loss(loss)
                if step % args.log_every == 0:
                    with record.phase("logging"):
                        seen.append(loss.detach())
            with record.phase("eval"), torch.no_grad():
                val = nn.functional.mse_loss(model(x_val.to(torch.float32)), y_val.to(torch.float32))
        print(f"epoch {epoch}: train loss {torch.stack(seen).mean().item():.4f}, validation loss {val.item():.4f}")
        seen.clear()


if __name__ == "__main__":
    main()
