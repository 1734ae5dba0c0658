"""The machinery behind the benchmarks: epochs through the harness, phases in isolation.

:class:`EpochRunner` hands pytest-benchmark one full epoch per round through
:func:`perfsuite.core.phases.time_epoch` (the harness's own timer), keeping each
epoch's phase breakdown for ``extra_info``.

:class:`PhaseCases` builds, for a staged implementation, one
``benchmark.pedantic`` case per phase on a fixed batch (the first full batch
of epoch 0) and fixed parameters. Every ``setup`` function does its work
outside the timed region:

``first_batch``  creating the epoch's batch iterator and drawing its first batch (where
                 per-epoch shuffles happen; the harness charges this to step 0's batching);
``batching``     one ``next()`` on a live iterator, steady state: batches after the first
                 and before the last (partial) one;
``forward``      ``forward(x)`` with autograd on, as in the loop (it records the graph);
``loss``         ``loss(logits, y)`` on logits of a fresh forward;
``backward``     ``backward(loss)`` on a fresh graph; the setup first runs a whole training
                 step so the gradients are in the state the implementation's ``step`` leaves
                 them (``None`` or zeros), then restores the parameters;
``step``         ``step()`` with gradients present; the setup restores the parameters and
                 optimizer state, then runs forward, loss and backward.

Parameters never drift: :class:`StateSnapshot` finds the tensors a training
step mutates (parameters, momentum buffers, ...) and copies their values
after one step on the fixed batch back before every round that depends on them.
"""

import statistics
from collections.abc import Callable
from dataclasses import dataclass

import torch

from perfsuite import __version__
from perfsuite.core.interface import OTHER, PHASES
from perfsuite.core.phases import EpochMeasurement, time_epoch

MICRO_PHASES = ("first_batch", "batching", "forward", "loss", "backward", "step")
"""The phase micro-benchmarks, in loop order (``first_batch`` is the start-of-epoch part of batching)."""

STATEFUL_PHASES = ("backward", "step")
"""Micro-benchmarks whose rounds need the training state restored (they change gradients or parameters)."""

HARNESS_PHASE = {"first_batch": "batching"}
"""Which harness phase a micro-benchmark belongs to, where the names differ."""

WALK_DEPTH = 8


def workload_key(workload, dataset, n_train: int) -> str:
    """A short label naming the workload and the data (the benchmark group prefix)."""
    data = "SYNTHETIC" if dataset.synthetic else "MNIST"
    return (
        f"{data} n={n_train} b={workload.batch_size} h={workload.hidden} {workload.loss} "
        f"lr={workload.lr:g} m={workload.momentum:g} threads={workload.threads}"
    )


def common_info(state, impl_name: str, kind: str) -> dict:
    """``extra_info`` every benchmark carries: implementation, workload, data set, threads."""
    return {
        "perfsuite": __version__,
        "impl": impl_name,
        "kind": kind,
        "workload": state.workload.to_dict(),
        "n_train": state.n_train,
        "steps_per_epoch": state.workload.steps(state.n_train),
        "dataset": state.dataset.to_dict(),
        "threads": torch.get_num_threads(),
    }


class EpochRunner:
    """Runs successive epochs of a set-up :class:`~perfsuite.measure.worker.WorkerState` and keeps their timings."""

    def __init__(self, state):
        self.state = state
        self.next_epoch = 0
        self.measurements = []

    def run_epoch(self) -> EpochMeasurement:
        """One epoch through the harness's phase timer (what pytest-benchmark times as one round)."""
        m = time_epoch(self.state.impl, self.next_epoch)
        self.next_epoch += 1
        self.measurements.append(m)
        return m

    def breakdown(self, warmup: int) -> dict:
        """Medians across the measured epochs (the first ``warmup`` are left out) of wall and phase seconds."""
        measured = self.measurements[warmup:]
        if not measured:
            return {}
        per_phase = {p: statistics.median(m.phase_totals[p] for m in measured) for p in PHASES}
        return {
            "epochs": len(measured),
            "warmup_epochs": min(warmup, len(self.measurements)),
            "wall_median": statistics.median(m.wall for m in measured),
            "phase_medians": {**per_phase, OTHER: statistics.median(m.other for m in measured)},
            "coverage_median": statistics.median(m.coverage for m in measured),
            "walls": [m.wall for m in measured],
            "final_loss": float(measured[-1].losses[-1]) if len(measured[-1].losses) else None,
        }


def _children(obj) -> list:
    """The objects a state walk descends into from ``obj`` (tensors are leaves)."""
    if isinstance(obj, torch.nn.Module):
        return list(obj.parameters()) + list(obj.buffers())
    if isinstance(obj, torch.optim.Optimizer):
        return [obj.state, obj.param_groups]
    if isinstance(obj, dict):
        return list(obj.keys()) + list(obj.values())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return list(obj)
    if callable(obj) or isinstance(obj, type) or not hasattr(obj, "__dict__"):
        return []
    if type(obj).__module__.startswith("torch."):
        return []
    return list(vars(obj).values())


def reachable_tensors(root) -> list:
    """Every tensor reachable from ``root`` through attributes, containers, modules and optimizers."""
    seen = set()
    found = []
    stack = [(root, 0)]
    while stack:
        obj, depth = stack.pop()
        if id(obj) in seen or depth > WALK_DEPTH:
            continue
        seen.add(id(obj))
        if isinstance(obj, torch.Tensor):
            found.append(obj)
            continue
        stack.extend((child, depth + 1) for child in _children(obj))
    return found


class StateSnapshot:
    """The tensors a training step mutates, and their values at capture time."""

    def __init__(self, pairs: list):
        self.pairs = pairs

    @classmethod
    def capture(cls, impl, probe: Callable[[], None]) -> "StateSnapshot":
        """Run ``probe`` (one training step) twice and keep the tensors of ``impl`` the second run changed.

        The first run creates whatever state an implementation allocates
        lazily (``torch.optim.SGD`` makes its momentum buffers at the first
        step). A tensor counts as state when the second run moved its version
        counter (any in-place write) or changed its values; its values from
        between the two runs are what :meth:`restore` writes back.
        """
        probe()
        tensors = reachable_tensors(impl)
        versions = [t._version for t in tensors]
        before = [t.detach().clone() if t.is_floating_point() else None for t in tensors]
        probe()
        pairs = [
            (t, old)
            for t, v, old in zip(tensors, versions, before, strict=True)
            if old is not None and (t._version != v or not torch.equal(t.detach(), old))
        ]
        return cls(pairs)

    @property
    def shapes(self) -> list:
        """Shapes of the state tensors (for ``extra_info``)."""
        return [list(t.shape) for t, _ in self.pairs]

    def restore(self) -> None:
        """Write the captured values back into the state tensors."""
        with torch.no_grad():
            for tensor, value in self.pairs:
                tensor.copy_(value)


def _detached_copy(batch):
    """A batch with its tensors copied, so no iterator (or whole reordered data set) stays alive."""
    return tuple(t.clone() if isinstance(t, torch.Tensor) else t for t in batch)


@dataclass
class Case:
    """Arguments of one ``benchmark.pedantic`` call."""

    target: Callable
    setup: Callable | None
    rounds: int
    warmup_rounds: int
    what: str


class _LiveIterator:
    """An epoch's batch iterator positioned in its steady state (after the first batch)."""

    def __init__(self, impl, steps: int):
        self.impl = impl
        self.limit = steps - 1 if steps >= 3 else steps
        self.iterator = None
        self.position = self.limit

    def ready(self) -> None:
        """Setup of a ``batching`` round: a fresh iterator past its first batch when this one is used up."""
        if self.position >= self.limit:
            self.iterator = None
            self.iterator = iter(self.impl.batches(0))
            next(self.iterator)
            self.position = 1

    def next_batch(self):
        """The timed part: one ``next()``."""
        batch = next(self.iterator)
        self.position += 1
        return batch


class PhaseCases:
    """The phase micro-benchmarks of one set-up staged implementation."""

    def __init__(self, state):
        self.state = state
        self.impl = state.impl
        self.steps = state.workload.steps(state.n_train)
        iterator = iter(self.impl.batches(0))
        self.batch = _detached_copy(next(iterator))
        del iterator
        self.snapshot = StateSnapshot.capture(self.impl, self.train_step)
        self.snapshot.restore()

    @property
    def batch_size(self) -> int:
        """Samples in the fixed batch."""
        return len(self.batch[1])

    def train_step(self) -> None:
        """One full training step on the fixed batch (setup work, never timed)."""
        x, y = self.batch
        loss = self.impl.loss(self.impl.forward(x), y)
        self.impl.backward(loss)
        self.impl.step()

    def _fresh_logits(self):
        return (self.impl.forward(self.batch[0]), self.batch[1]), {}

    def _fresh_graph(self):
        self.train_step()
        self.snapshot.restore()
        x, y = self.batch
        return (self.impl.loss(self.impl.forward(x), y),), {}

    def _grads_ready(self):
        self.snapshot.restore()
        x, y = self.batch
        self.impl.backward(self.impl.loss(self.impl.forward(x), y))

    def _first_batch(self):
        iterator = iter(self.impl.batches(0))
        return iterator, next(iterator)

    def case(self, phase: str, rounds: int, first_batch_rounds: int, warmup: int) -> Case:
        """The pedantic arguments measuring ``phase`` (one of :data:`MICRO_PHASES`)."""
        impl = self.impl
        x = self.batch[0]
        if phase == "first_batch":
            return Case(
                self._first_batch,
                None,
                first_batch_rounds,
                1,
                "iter(batches(0)) and its first next(): the start-of-epoch part of batching",
            )
        if phase == "batching":
            live = _LiveIterator(impl, self.steps)
            return Case(
                live.next_batch,
                live.ready,
                rounds,
                warmup,
                "one next() on a live iterator, between its first and last batch",
            )
        if phase == "forward":
            return Case(impl.forward, lambda: ((x,), {}), rounds, warmup, "forward(x) with autograd on")
        if phase == "loss":
            return Case(impl.loss, self._fresh_logits, rounds, warmup, "loss(logits, y) on a fresh forward's logits")
        if phase == "backward":
            return Case(
                impl.backward,
                self._fresh_graph,
                rounds,
                warmup,
                "backward(loss) on a fresh graph, gradients as step() leaves them",
            )
        if phase == "step":
            return Case(
                impl.step,
                self._grads_ready,
                rounds,
                warmup,
                "step() with fresh gradients, parameters and optimizer state restored first",
            )
        raise ValueError(f"unknown phase {phase!r} (expected one of {', '.join(MICRO_PHASES)})")
