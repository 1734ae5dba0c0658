"""``slowstep``: ``store`` whose ``step`` can take a known fraction longer (for ``compare_rates.py``).

The fraction is read once per worker, at setup, from the environment variable
``PERFSUITE_SLOWSTEP`` (e.g. ``0.2``: every step lasts 20% longer than store's
step took in that call). The extra time is a busy wait, not a sleep: a sleep
of a few microseconds lasts far longer than asked, and slower code keeps the
CPU busy too. Unset or ``0``, the class is ``store`` plus two clock reads per
step, so the A and B sides of a pair run the same code under the same name and
differ only by the wait.
"""

import os
import time

from perfsuite.impls.store import Store

ENV = "PERFSUITE_SLOWSTEP"


class SlowStep(Store):
    """store with ``step`` lengthened by ``$PERFSUITE_SLOWSTEP`` × its own duration."""

    name = "slowstep"
    description = f"store whose step busy-waits ${ENV} × its own duration longer (benchmarks/compare_rates.py)"

    def setup(self, ctx):
        super().setup(ctx)
        self.extra = float(os.environ.get(ENV) or 0.0)

    def step(self):
        start = time.perf_counter()
        super().step()
        now = time.perf_counter()
        until = now + self.extra * (now - start)
        while time.perf_counter() < until:
            pass
