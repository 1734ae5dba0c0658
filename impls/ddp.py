"""``ddp``: the ``idiomatic`` loop wrapped in ``DistributedDataParallel`` over gloo.

Launched by torchrun (``perfsuite run --impls ddp --nproc N`` starts it; see
:mod:`perfsuite.measure.ddp_launch`), one process per rank. Every rank takes its
shard of each *global* batch of the harness's permutation, so the N ranks
together train on exactly the batches of the single-process run:

* global batch ``k`` is ``perm[k*B:(k+1)*B]``; rank ``r`` takes the ``r``-th
  of N nearly equal contiguous pieces of it (:class:`GlobalBatchShards`);
* each rank's loss is its samples' *summed* loss divided by the global batch
  size, and the communication hook all-reduces gradients with SUM, so every
  rank ends up with the gradient of the global-batch mean loss (exact even
  when the pieces differ in size) and SGD makes the single-process update;
* the loss logged per step is the global-batch mean: the ranks' detached loss
  contributions are summed by one all-reduce per epoch, in
  :meth:`Ddp.logged_losses`, after the epoch's clock has stopped (it is
  logging, which the single-process loops do not need).

``comm`` is measured by the DDP communication hook (:class:`CommTimer`): the
time within ``backward`` (``loss.backward()``, which returns only after DDP
has waited for every bucket's all-reduce) during which at least one
all-reduce is in flight, from the hook launching it to its future completing.
It is a sub-interval of ``backward`` and is recorded per step on every rank.
"""

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Sampler, Subset

from perfsuite.core.clock import monotonic
from perfsuite.core.data import MEAN, STD
from perfsuite.core.interface import EpochTiming, Implementation
from perfsuite.core.phases import time_staged_epoch
from perfsuite.core.workload import CLASSES
from perfsuite.impls.idiomatic import MLP


class GlobalBatchShards(Sampler):
    """Batch sampler: rank ``rank``'s piece of every global batch of ``order``.

    ``sizes`` holds the size of each *global* batch (the loss divisor).
    """

    def __init__(self, order: torch.Tensor, batch_size: int, rank: int, world: int):
        batches = torch.split(order, batch_size)
        self.sizes = [len(b) for b in batches]
        self.shards = [torch.tensor_split(b, world)[rank].tolist() for b in batches]

    def __iter__(self):
        return iter(self.shards)

    def __len__(self):
        return len(self.shards)


def union_seconds(intervals) -> float:
    """Total length of the union of ``(start, end)`` intervals."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


class CommTimer:
    """A DDP communication hook that all-reduces (SUM) and records when each all-reduce runs.

    Each step's intervals go to the list opened by :meth:`next_step`;
    :meth:`per_step` turns them into seconds (their union) per step.
    """

    def __init__(self, clock=monotonic):
        self.clock = clock
        self.steps = []

    def reset(self) -> None:
        """Forget the recorded steps (start of an epoch)."""
        self.steps = []

    def next_step(self) -> None:
        """Start collecting the intervals of a new step."""
        self.steps.append([])

    def hook(self, state, bucket):
        """The communication hook: launch the bucket's all-reduce, note launch and completion times."""
        start = self.clock()
        intervals = self.steps[-1]
        future = dist.all_reduce(bucket.buffer(), async_op=True).get_future()

        def done(fut):
            intervals.append((start, self.clock()))
            return fut.value()[0]

        return future.then(done)

    def per_step(self) -> list:
        """Seconds with an all-reduce in flight, per recorded step."""
        return [union_seconds(step) for step in self.steps]


class Ddp(Implementation):
    """The idiomatic loop under DistributedDataParallel (gloo), one rank per process."""

    name = "ddp"
    description = (
        "idiomatic loop in DistributedDataParallel (gloo, CPU), launched by torchrun; comm = gradient all-reduce"
    )
    distributed = True
    """Tells the runner to launch this implementation with torchrun, ``--nproc`` ranks."""

    @classmethod
    def unavailable_reason(cls):
        if not dist.is_available():
            return "this torch build has no torch.distributed"
        if not dist.is_gloo_available():
            return "this torch build has no gloo backend"
        return None

    def setup(self, ctx):
        from torchvision import datasets, transforms  # only the torchvision loops pay for importing it

        if not dist.is_initialized():
            raise RuntimeError("ddp needs an initialised process group: run it through perfsuite run (torchrun)")
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))])
        dataset = datasets.MNIST(ctx.dataset.root, train=True, download=False, transform=transform)
        self.dataset = dataset if ctx.n_train == len(dataset) else Subset(dataset, range(ctx.n_train))
        self.permutation = ctx.permutation
        self.batch_size = ctx.workload.batch_size
        self.module = MLP(ctx.workload.hidden)
        self.module.load_initial(ctx.params)
        self.model = DistributedDataParallel(self.module)
        self.comm = CommTimer(ctx.clock)
        self.model.register_comm_hook(None, self.comm.hook)
        self.mse = ctx.workload.loss == "mse"
        self.criterion = nn.MSELoss(reduction="sum") if self.mse else nn.CrossEntropyLoss(reduction="sum")
        momentum = ctx.workload.momentum
        self.optimizer = torch.optim.SGD(
            self.module.parameters(), lr=ctx.workload.lr, momentum=momentum, dampening=momentum
        )
        for p in self.module.parameters():
            self.optimizer.state[p]["momentum_buffer"] = torch.zeros_like(p)
        self.divisor = 1.0
        return {"world_size": self.world, "parameters": sum(p.numel() for p in self.module.parameters())}

    def batches(self, epoch):
        shards = GlobalBatchShards(self.permutation(epoch), self.batch_size, self.rank, self.world)
        loader = DataLoader(self.dataset, batch_sampler=shards, num_workers=0)
        for batch, size in zip(loader, shards.sizes, strict=True):
            self.divisor = size * CLASSES if self.mse else size
            yield batch

    def forward(self, x):
        return self.model(x)

    def loss(self, logits, y):
        target = F.one_hot(y, CLASSES).to(logits.dtype) if self.mse else y
        return self.criterion(logits, target) / self.divisor

    def backward(self, loss):
        self.comm.next_step()
        loss.backward()

    def step(self):
        self.optimizer.step()
        self.optimizer.zero_grad()

    def train_epoch(self, epoch, clock):
        """The harness's staged timer over this rank's shards, plus ``comm``."""
        self.comm.reset()
        timing = time_staged_epoch(self, epoch, clock)
        return EpochTiming(timing.phases, timing.losses, subphases={"comm": self.comm.per_step()})

    def logged_losses(self, losses):
        """The global-batch losses: the ranks' contributions summed (after the epoch's clock stopped)."""
        total = losses.detach().clone()
        dist.all_reduce(total)
        return total

    @torch.no_grad()
    def predict(self, x):
        return self.module(x)

    def info(self):
        return {
            "world_size": self.world,
            "backend": dist.get_backend(),
            "comm_hook": "all-reduce SUM of the bucket; loss = local sum / global batch size",
        }
