"""The phase timer: exact arithmetic under a fake clock, real delays attributed to their phase."""

import numpy as np
import pytest
import torch

from perfsuite.core.clock import FakeClock
from perfsuite.core.interface import PHASES, EpochTiming
from perfsuite.core.phases import time_epoch, time_staged_epoch
from tests.fixtures.test_impls import DELAY, FusedTiny, Tiny

COST = {"iter": 0.5, "next": 0.1, "end": 0.07, "forward": 0.2, "loss": 0.03, "backward": 0.4, "step": 0.05}


class Scripted:
    """A staged implementation whose every call moves a fake clock by a known amount."""

    def __init__(self, clock, steps=3):
        self.clock, self.steps = clock, steps

    def batches(self, epoch):
        self.clock.advance(COST["iter"])
        return self._gen()

    def _gen(self):
        for i in range(self.steps):
            self.clock.advance(COST["next"])
            yield torch.tensor([float(i)]), torch.tensor([0])
        self.clock.advance(COST["end"])

    def forward(self, x):
        self.clock.advance(COST["forward"])
        return x * 2

    def loss(self, logits, y):
        self.clock.advance(COST["loss"])
        return logits.sum()

    def backward(self, loss):
        self.clock.advance(COST["backward"])

    def step(self):
        self.clock.advance(COST["step"])


def test_fake_clock_phase_arithmetic():
    clock = FakeClock()
    timing = time_staged_epoch(Scripted(clock), 0, clock)
    rows = np.asarray(timing.phases)
    assert rows.shape == (3, 5)
    expected_batching = [COST["iter"] + COST["next"], COST["next"], COST["next"] + COST["end"]]
    np.testing.assert_allclose(rows[:, 0], expected_batching)
    for col, phase in enumerate(PHASES[1:], start=1):
        np.testing.assert_allclose(rows[:, col], COST[phase])
    assert timing.losses.tolist() == [0.0, 2.0, 4.0]


def test_phases_and_other_sum_to_wall_when_reading_the_clock_costs_time():
    clock = FakeClock(tick=1e-3)
    m = time_epoch(Scripted(clock, steps=4), 0, clock)
    assert m.phases.sum() + m.other == pytest.approx(m.wall)
    assert m.other > 0
    staged_total = 4 * (COST["next"] + COST["forward"] + COST["loss"] + COST["backward"] + COST["step"])
    assert m.phases.sum() >= staged_total + COST["iter"] + COST["end"]
    assert m.coverage < 1


def test_fused_implementation_records_pass_through():
    clock = FakeClock(tick=0.01)
    impl = FusedTiny()
    m = time_epoch(impl, 0, clock)
    assert m.phases.shape == (impl.steps, 5)
    np.testing.assert_allclose(m.phases[0], [0.001, 0.002, 0.003, 0.004, 0.005])
    assert m.wall == pytest.approx(0.01)
    assert m.losses.tolist() == list(range(impl.steps))


class LoggedTwice(Scripted):
    """Records twice each step's loss, and takes a second of the fake clock to do so."""

    def logged_losses(self, losses):
        self.clock.advance(1.0)
        return losses * 2


def test_logged_losses_run_after_the_wall_clock_stops():
    clock = FakeClock()
    m = time_epoch(LoggedTwice(clock), 0, clock)
    assert m.losses.tolist() == [0.0, 4.0, 8.0]
    assert m.wall == pytest.approx(m.phases.sum()) and m.other == pytest.approx(0.0)


def test_epoch_timing_accepts_tensors():
    timing = EpochTiming(torch.ones(2, 5), torch.zeros(2))
    assert np.asarray(timing.phases).shape == (2, 5)


@pytest.mark.parametrize("phase", PHASES)
def test_known_delay_is_attributed_to_its_phase(phase):
    params = {"w2": torch.randn(10, 8)}
    impl = type(f"SleepIn{phase}", (Tiny,), {"sleep_in": phase})()
    impl.setup(type("Ctx", (), {"params": params})())
    time_epoch(impl, 0)
    m = time_epoch(impl, 1)
    totals = m.phase_totals
    injected = impl.steps * DELAY
    assert injected <= totals[phase] < 1.5 * injected
    for other in PHASES:
        if other != phase:
            assert totals[other] < injected / 3, f"{other} got {totals[other]:.4f} s of the delay injected in {phase}"
    assert m.other < injected / 3
