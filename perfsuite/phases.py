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

from perfsuite.clock import Clock, monotonic
from perfsuite.interface import PHASES, EpochTiming, is_fused


@dataclass
class EpochMeasurement:
    """One timed epoch: wall seconds, per-step phase seconds (steps x 5), per-step losses."""

    wall: float
    phases: np.ndarray
    losses: np.ndarray
    extra: dict

    @property
    def phase_totals(self) -> dict:
        """Seconds per phase summed over the epoch."""
        return {name: float(total) for name, total in zip(PHASES, self.phases.sum(axis=0))}

    @property
    def other(self) -> float:
        """Wall seconds outside the five phases."""
        return self.wall - float(self.phases.sum())

    @property
    def coverage(self) -> float:
        """Share of the wall time inside the five phases."""
        return float(self.phases.sum()) / self.wall if self.wall > 0 else float("nan")


def time_staged_epoch(impl, epoch: int, clock: Clock = monotonic) -> EpochTiming:
    """Drive one epoch of a staged implementation and time each phase of each step.

    ``batching`` of a step is the time from asking for the next batch to
    holding it. Creating the epoch's batch iterator is charged to the first
    step's batching and the final, empty request (with the release of the
    iterator and whatever it holds, e.g. a shuffled copy of the data set) to
    the last step's, so all time spent in the data pipeline is batching.
    """
    rows = []
    losses = []
    x = y = None
    t0 = clock()
    iterator = iter(impl.batches(epoch))
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
        logits = impl.forward(x)
        t2 = clock()
        loss = impl.loss(logits, y)
        t3 = clock()
        impl.backward(loss)
        t4 = clock()
        impl.step()
        t5 = clock()
        rows.append((pending + t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4))
        pending = 0.0
        losses.append(loss.detach())
    if rows:
        last = rows[-1]
        rows[-1] = (last[0] + pending + t1 - t0,) + last[1:]
    return EpochTiming(rows, torch.stack(losses) if losses else torch.empty(0))


def time_epoch(impl, epoch: int, clock: Clock = monotonic) -> EpochMeasurement:
    """Run and time one epoch of any implementation, staged or fused."""
    start = clock()
    if is_fused(type(impl)):
        timing = impl.train_epoch(epoch, clock)
    else:
        timing = time_staged_epoch(impl, epoch, clock)
    wall = clock() - start
    phases = np.asarray(timing.phases, dtype=np.float64).reshape(-1, len(PHASES))
    losses = torch.as_tensor(timing.losses).detach().double().reshape(-1).numpy()
    return EpochMeasurement(wall, phases, losses, dict(timing.extra))
