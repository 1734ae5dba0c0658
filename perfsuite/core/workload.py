"""The one workload every implementation trains, and what the harness draws for it.

:class:`Workload` holds the article's configuration (DESIGN.md) as defaults.
The harness, not the implementations, draws the initial parameters and the
per-epoch permutations from the seed, so every implementation starts from the
same numbers and sees the same batches.
"""

import dataclasses
import math
import os
from dataclasses import dataclass

import torch

from perfsuite.core.errors import UsageError

INPUTS = 28 * 28
CLASSES = 10
LOSSES = ("ce", "mse")
DEFAULT_WORKLOAD = "mnist-mlp"
"""The workload trained when ``--workload`` is not given: the article's MLP (:mod:`perfsuite.core.workloads`)."""


def default_threads() -> int:
    """The thread count used when none is given: every CPU this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Workload:
    """What is trained and how it is measured. Immutable once built.

    ``epochs`` measured epochs follow ``warmup`` warm-up epochs in each of
    ``repeats`` rounds; every round restarts training from the same initial
    parameters. ``subset`` is the fraction of the training split used.
    ``nproc`` is the number of ranks a multi-rank implementation (``ddp``)
    runs on; they share the global batch and ``threads`` between them.
    ``name`` is the workload definition trained (:mod:`perfsuite.core.workloads`):
    a registered name such as ``mnist-mlp`` or ``mnist-cnn``, or a
    ``module:Class`` / ``file.py:Class`` spec; ``hidden`` is its width.
    """

    name: str = DEFAULT_WORKLOAD
    batch_size: int = 128
    hidden: int = 128
    lr: float = 0.3
    momentum: float = 0.9
    loss: str = "ce"
    epochs: int = 5
    warmup: int = 1
    repeats: int = 1
    subset: float = 1.0
    seed: int = 0
    threads: int = dataclasses.field(default_factory=default_threads)
    nproc: int = 2

    def __post_init__(self):
        checks = [
            (self.batch_size >= 1, "--batch-size", "must be a whole number of at least 1"),
            (self.hidden >= 1, "--hidden", "must be a whole number of at least 1"),
            (math.isfinite(self.lr) and self.lr > 0, "--lr", "must be a positive number"),
            (0 <= self.momentum < 1, "--momentum", "must be in [0, 1)"),
            (self.loss in LOSSES, "--loss", f"must be one of {', '.join(LOSSES)}"),
            (self.epochs >= 1, "--epochs", "must be a whole number of at least 1"),
            (self.warmup >= 0, "--warmup", "must be a whole number of at least 0"),
            (self.repeats >= 1, "--repeats", "must be a whole number of at least 1"),
            (0 < self.subset <= 1, "--subset", "must be a fraction in (0, 1]"),
            (self.threads >= 1, "--threads", "must be a whole number of at least 1"),
            (self.nproc >= 1, "--nproc", "must be a whole number of at least 1"),
        ]
        for ok, option, problem in checks:
            if not ok:
                value = getattr(self, option[2:].replace("-", "_"))
                raise UsageError(f"{option} {value}: {problem}")

    @property
    def epochs_per_round(self) -> int:
        """Warm-up plus measured epochs in one round."""
        return self.warmup + self.epochs

    @property
    def threads_per_rank(self) -> int:
        """Torch threads of each rank of a multi-rank implementation: ``threads`` shared by ``nproc``."""
        return max(1, self.threads // self.nproc)

    def train_size(self, available: int) -> int:
        """How many training samples the subset keeps (the first ones)."""
        return max(1, round(self.subset * available))

    def steps(self, n_train: int) -> int:
        """Optimizer steps in one epoch over ``n_train`` samples (last batch partial)."""
        return math.ceil(n_train / self.batch_size)

    def to_dict(self) -> dict:
        """The workload as plain JSON-ready data."""
        return dataclasses.asdict(self)


def _generator(seed: int, stream: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + stream)


def initial_parameters(workload: Workload) -> dict:
    """Draw the initial parameters once from the seed, in ``nn.Linear`` layout.

    Returns ``w1`` (hidden x 784), ``b1`` (hidden), ``w2`` (10 x hidden) and
    ``b2`` (10), each uniform in ``±1/sqrt(fan_in)``: the distribution of
    PyTorch's default Linear init (kaiming_uniform with a=sqrt(5)).
    Implementations that store ``W`` as in x out transpose it themselves.
    """
    g = _generator(workload.seed, 0)

    def uniform(shape, fan_in):
        bound = 1.0 / math.sqrt(fan_in)
        return torch.rand(shape, generator=g).mul_(2 * bound).sub_(bound)

    h = workload.hidden
    return {
        "w1": uniform((h, INPUTS), INPUTS),
        "b1": uniform((h,), INPUTS),
        "w2": uniform((CLASSES, h), h),
        "b2": uniform((CLASSES,), h),
    }


def epoch_permutation(workload: Workload, n_train: int, epoch: int) -> torch.Tensor:
    """The order of the training samples in ``epoch`` (int64, length ``n_train``).

    Every round replays the same sequence of epoch orders, so rounds are
    repeated measurements of the same computation.
    """
    return torch.randperm(n_train, generator=_generator(workload.seed, 1 + epoch))
