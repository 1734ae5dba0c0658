"""Clocks the phase timer reads.

The timer takes any zero-argument callable returning seconds, so tests can
hand it a :class:`FakeClock` whose time only moves when told to.
"""

import time
from collections.abc import Callable

Clock = Callable[[], float]

monotonic: Clock = time.perf_counter
"""The default clock: the highest-resolution monotonic clock Python offers."""


class FakeClock:
    """A deterministic clock for tests.

    Time stands still until :meth:`advance` is called; each read can also
    move time by a fixed ``tick`` to model the cost of reading the clock.
    """

    def __init__(self, start: float = 0.0, tick: float = 0.0):
        self.now = start
        self.tick = tick
        self.reads = 0

    def __call__(self) -> float:
        value = self.now
        self.now += self.tick
        self.reads += 1
        return value

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        self.now += seconds


def clock_cost(clock: Clock = monotonic, reads: int = 20000) -> float:
    """Measure the mean seconds one read of ``clock`` costs."""
    start = clock()
    for _ in range(reads):
        clock()
    return (clock() - start) / (reads + 1)
