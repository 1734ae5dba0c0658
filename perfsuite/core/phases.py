"""The phase timer: one epoch of an implementation, split into timed phases.

For staged implementations the harness itself calls ``batches``,
``forward``, ``loss``, ``backward`` and ``step`` and reads the clock between
calls; nothing else (no ``.item()``, no printing) happens inside a timed
region. Fused implementations time themselves and return the same records.
The epoch's wall time is read around both, so ``other`` = wall - phases is
always known.
"""

from dataclasses import dataclass

import numpy as np
import torch

from perfsuite.core.clock import Clock, monotonic
from perfsuite.core.interface import PHASES, SUBPHASES, EpochTiming, is_fused


@dataclass
class EpochMeasurement:
    """One timed epoch: wall seconds, per-step phase seconds (steps x 5), per-step losses.

    ``subphases`` maps a name of :data:`~perfsuite.core.interface.SUBPHASES` to its
    per-step seconds (already included in the parent phase's seconds).
    """

    wall: float
    phases: np.ndarray
    losses: np.ndarray
    extra: dict
    subphases: dict = None

    @property
    def phase_totals(self) -> dict:
        """Seconds per phase summed over the epoch."""
        return {name: float(total) for name, total in zip(PHASES, self.phases.sum(axis=0), strict=True)}

    @property
    def other(self) -> float:
        """Wall seconds outside the five phases."""
        return self.wall - float(self.phases.sum())

    @property
    def coverage(self) -> float:
        """Share of the wall time inside the five phases."""
        return float(self.phases.sum()) / self.wall if self.wall > 0 else float("nan")


def batching(impl, epoch: int):
    """Yield from ``impl.batches(epoch)``: creating the iterator and every request for a batch run in this frame.

    A sampling profiler (or memray's allocation stacks) therefore finds a
    frame named ``batching`` under the harness for each batching sample,
    whatever the implementation's iterator is (a DataLoader, a generator
    expression) and whatever ``batches`` does before its first batch (e.g.
    shuffle the data set): the phase is its own tower in a flame graph, like
    ``forward``, ``loss``, ``backward`` and ``step``.
    """
    yield from impl.batches(epoch)


def forward(impl, x):
    """``impl.forward(x)`` in a frame named ``forward``, so a sampling profiler's stack names the phase."""
    return impl.forward(x)


def loss(impl, logits, y):
    """``impl.loss(logits, y)`` in a frame named ``loss``."""
    return impl.loss(logits, y)


def backward(impl, value):
    """``impl.backward(value)`` in a frame named ``backward``."""
    impl.backward(value)


def step(impl):
    """``impl.step()`` in a frame named ``step``."""
    impl.step()


class PhaseRanges:
    """A staged implementation whose phase calls each run inside ``phase_range(<phase name>)``.

    ``phase_range`` is any factory of context managers taking a phase name,
    e.g. ``torch.profiler.record_function``. Batching ranges cover creating
    the epoch's iterator and every request for the next batch.
    """

    def __init__(self, impl, phase_range):
        self._impl = impl
        self._range = phase_range

    def batches(self, epoch):
        """The epoch's batches, each request inside a ``batching`` range."""
        with self._range("batching"):
            iterator = iter(self._impl.batches(epoch))
        while True:
            with self._range("batching"):
                batch = next(iterator, None)
            if batch is None:
                return
            yield batch

    def forward(self, x):
        """``impl.forward`` inside a ``forward`` range."""
        with self._range("forward"):
            return self._impl.forward(x)

    def loss(self, logits, y):
        """``impl.loss`` inside a ``loss`` range."""
        with self._range("loss"):
            return self._impl.loss(logits, y)

    def backward(self, loss):
        """``impl.backward`` inside a ``backward`` range."""
        with self._range("backward"):
            self._impl.backward(loss)

    def step(self):
        """``impl.step`` inside a ``step`` range."""
        with self._range("step"):
            self._impl.step()


def time_staged_epoch(impl, epoch: int, clock: Clock = monotonic, phase_range=None) -> EpochTiming:
    """Drive one epoch of a staged implementation and time each phase of each step.

    Every phase runs inside a frame named after it (:func:`batching`,
    :func:`forward`, :func:`loss`, :func:`backward`, :func:`step`), so a
    sampled stack reads ``time_staged_epoch;forward;Store.forward;…`` and a
    flame graph's towers are the phases.

    ``batching`` of a step is the time from asking for the next batch to
    holding it. Creating the epoch's batch iterator is charged to the first
    step's batching and the final, empty request (with the release of the
    iterator and whatever it holds, e.g. a shuffled copy of the data set) to
    the last step's, so all time spent in the data pipeline is batching.

    ``phase_range`` is an opt-in hook for profilers: a factory of context
    managers called with a phase name (e.g. ``torch.profiler.record_function``);
    each phase call then runs inside its range (see :class:`PhaseRanges`).
    Left at ``None``, the loop is exactly the plain one.
    """
    if phase_range is not None:
        impl = PhaseRanges(impl, phase_range)
    rows = []
    losses = []
    x = y = None
    t0 = clock()
    iterator = batching(impl, epoch)
    pending = clock() - t0
    while True:
        t0 = clock()
        batch = next(iterator, None)
        if batch is None:
            iterator = x = y = None
            t1 = clock()
            break
        t1 = clock()
        x, y = batch
        logits = forward(impl, x)
        t2 = clock()
        value = loss(impl, logits, y)
        t3 = clock()
        backward(impl, value)
        t4 = clock()
        step(impl)
        t5 = clock()
        rows.append((pending + t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4))
        pending = 0.0
        losses.append(value.detach())
    if rows:
        last = rows[-1]
        rows[-1] = (last[0] + pending + t1 - t0,) + last[1:]
    return EpochTiming(rows, torch.stack(losses) if losses else torch.empty(0))


def time_epoch(impl, epoch: int, clock: Clock = monotonic, phase_range=None) -> EpochMeasurement:
    """Run and time one epoch of any implementation, staged or fused.

    ``phase_range`` is passed to :func:`time_staged_epoch`; a fused
    implementation runs its own loop, so it gets no phase ranges.
    """
    start = clock()
    if is_fused(type(impl)):
        timing = impl.train_epoch(epoch, clock)
    else:
        timing = time_staged_epoch(impl, epoch, clock, phase_range)
    wall = clock() - start
    phases = np.asarray(timing.phases, dtype=np.float64).reshape(-1, len(PHASES))
    logged = getattr(impl, "logged_losses", None)
    raw = logged(timing.losses) if callable(logged) else timing.losses
    losses = torch.as_tensor(raw).detach().double().reshape(-1).numpy()
    subphases = {name: _subphase(name, seconds, len(phases)) for name, seconds in (timing.subphases or {}).items()}
    return EpochMeasurement(wall, phases, losses, dict(timing.extra), subphases)


def _subphase(name: str, seconds, steps: int) -> np.ndarray:
    """Per-step seconds of sub-phase ``name``, checked against the known names and the step count."""
    if name not in SUBPHASES:
        raise ValueError(f"unknown sub-phase {name!r} (known: {', '.join(SUBPHASES)})")
    values = np.asarray(seconds, dtype=np.float64).reshape(-1)
    if len(values) != steps:
        raise ValueError(f"sub-phase {name!r} has {len(values)} steps, the epoch {steps}")
    return values
