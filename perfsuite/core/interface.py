"""The small interface every implementation offers, and what it is handed.

An implementation is a class. The harness builds it with no arguments,
calls :meth:`Implementation.setup` with a :class:`SetupContext`, then either

* drives the staged methods ``batches(epoch)``, ``forward(x)``,
  ``loss(logits, y)``, ``backward(loss)`` and ``step()`` and times each call
  (so the phase names are real frames in sampled stacks), or
* calls a fused ``train_epoch(epoch, clock)`` that runs the whole epoch
  itself (a compiled or native loop) and returns per-step phase seconds in an
  :class:`EpochTiming`.

``predict(x)`` returns logits for preprocessed inputs (N x 784) and is used
for accuracy, outside every timed region. Subclassing
:class:`Implementation` is optional: any class with these methods works.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch

from perfsuite.core.data import DatasetInfo, Split
from perfsuite.core.workload import DEFAULT_WORKLOAD, Workload

PHASES = ("batching", "forward", "loss", "backward", "step")
"""The five timed phases of a training step, in the order they run."""

OTHER = "other"
"""Epoch wall time not inside any of the five phases."""

SUBPHASES = {"comm": "backward"}
"""Sub-intervals of a phase that some implementations also measure, by the phase that contains them.

``comm`` (only multi-rank implementations such as ``ddp``) is the part of
``backward`` during which a gradient all-reduce is in flight. A sub-phase is
already counted in its parent phase: never add it to the five.
"""

STAGED_METHODS = ("batches", "forward", "loss", "backward", "step")


@dataclass(frozen=True)
class SetupContext:
    """Everything an implementation needs, identical for every implementation.

    ``train`` holds the first ``n_train`` samples of the training split
    (the workload's subset), ``params`` the initial parameters in
    ``nn.Linear`` layout (fresh copies: mutate freely; ``w1``, ``b1``, ``w2``,
    ``b2`` for ``mnist-mlp``, the names of
    :class:`~perfsuite.core.workloads.MnistCnn` for ``mnist-cnn``), and
    ``permutation(epoch)`` the sample order of that epoch.
    """

    workload: Workload
    dataset: DatasetInfo
    train: Split
    test: Split
    n_train: int
    params: dict
    permutation: Callable[[int], torch.Tensor]
    clock: Callable[[], float]


@dataclass
class EpochTiming:
    """Per-step phase seconds and losses of one epoch.

    ``phases`` has one row per step, one column per entry of :data:`PHASES`;
    ``losses`` one detached scalar per step; ``subphases`` maps a name of
    :data:`SUBPHASES` to its seconds per step (only for implementations that
    measure one).
    """

    phases: Sequence[Sequence[float]]
    losses: torch.Tensor
    extra: dict = field(default_factory=dict)
    subphases: dict = field(default_factory=dict)


class Implementation:
    """Optional base class with the interface's names and documentation."""

    name: str = ""
    description: str = ""
    workloads: tuple = (DEFAULT_WORKLOAD,)
    """The workloads (:mod:`perfsuite.core.workloads` names) this implementation trains."""

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why this implementation cannot run on this machine, or ``None``."""
        return None

    def setup(self, ctx: SetupContext) -> dict | None:
        """Build the model, optimizer and data pipeline; may return metrics (e.g. build seconds)."""
        raise NotImplementedError

    def batches(self, epoch: int) -> Iterable:
        """Yield ``(x, y)`` batches of ``epoch`` in the order ``ctx.permutation(epoch)`` gives."""
        raise NotImplementedError

    def forward(self, x):
        """Model input -> logits."""
        raise NotImplementedError

    def loss(self, logits, y):
        """Logits and targets -> scalar loss tensor."""
        raise NotImplementedError

    def backward(self, loss) -> None:
        """Compute the gradients of ``loss``."""
        raise NotImplementedError

    def step(self) -> None:
        """Update the parameters and reset the gradients."""
        raise NotImplementedError

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for preprocessed inputs (N x 784), without gradients."""
        raise NotImplementedError

    def logged_losses(self, losses: torch.Tensor) -> torch.Tensor:
        """The per-step losses to record, from the ones the epoch returned.

        Called after the epoch's clock has stopped. The default keeps them; a
        multi-rank implementation combines its ranks' contributions here, so
        logging work a single-process loop does not do stays out of the epoch.
        """
        return losses

    def epoch_facts(self) -> dict:
        """Numbers about the epoch just run, read after its clock stopped (optional).

        For example ``{"graphs_compiled": 0}``: what happened during the epoch
        that its timings alone do not show. Written per epoch (the ``facts``
        column of ``epochs.csv``) and summed per implementation in the summary.
        """
        return {}

    def info(self) -> dict:
        """Extra facts for the run's metadata (versions, deprecations, compile seconds)."""
        return {}


def supported(cls) -> tuple:
    """The workloads an implementation class trains: its ``workloads`` attribute, by default the MLP only."""
    found = getattr(cls, "workloads", None)
    if isinstance(found, str):
        return (found,)
    return tuple(found) if found else (DEFAULT_WORKLOAD,)


def support_problem(cls, workload_name: str) -> str | None:
    """Why ``cls`` cannot train the workload named ``workload_name`` (``None`` when it can)."""
    trains = supported(cls)
    if cls is None or workload_name in trains:
        return None
    return f"does not train workload {workload_name} (it trains {', '.join(trains)})"


def is_fused(cls) -> bool:
    """Whether ``cls`` runs its own epoch (defines ``train_epoch``)."""
    return callable(getattr(cls, "train_epoch", None))


def interface_problems(cls) -> list:
    """What ``cls`` lacks to be an implementation (empty when it is one)."""
    if not isinstance(cls, type):
        return [f"{cls!r} is not a class"]
    needed = ["setup", "predict"] + ([] if is_fused(cls) else list(STAGED_METHODS))
    missing = [name for name in needed if not _implemented(cls, name)]
    return [f"missing method{'s' if len(missing) > 1 else ''} {', '.join(missing)}"] if missing else []


def _implemented(cls, name: str) -> bool:
    method = getattr(cls, name, None)
    return callable(method) and method is not getattr(Implementation, name, None)
