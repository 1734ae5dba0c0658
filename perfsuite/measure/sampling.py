"""How many epochs a run measures: the fixed plan, or adaptive sampling that stops when it knows enough.

The runner (:mod:`perfsuite.measure.runner`) works in *passes*: one epoch of
each implementation still measured, in the runner's order, all with the same
``(round, epoch)``. Before every pass it asks its plan which implementations
the pass measures (:meth:`FixedPlan.due`; none ends the round), and it hands
the plan every epoch's records as they arrive. Decisions are taken there,
between passes, never inside a timed region.

:class:`FixedPlan` is the run without ``--precision``: every implementation,
``warmup + epochs`` epochs in each of ``repeats`` rounds.

:class:`AdaptivePlan` runs that fixed plan as the minimum and then lets the
last round go on, pass after pass, until every implementation's interval is
precise enough (:func:`perfsuite.analysis.precision.interval_widths`), its
``max_epochs`` are measured or the budget would be exceeded. An
implementation that is precise enough stops being measured; the baseline is
measured exactly as long as anything else is, so every epoch of every
implementation has its baseline pair with the same ``(round, epoch)``, and
stops with the last of them (``paired``): epochs of the baseline alone would
pair with nothing, and its own median epoch is not a speedup interval. Only a
run of one implementation watches that implementation's median epoch.
"""

import math

from perfsuite.analysis.precision import DECISION_RESAMPLES, choose_baseline, interval_widths, job_walls
from perfsuite.core.clock import Clock, monotonic
from perfsuite.core.sampling import SamplingTarget

PRECISION, MAX_EPOCHS, BUDGET = "precision", "max_epochs", "budget"
PAIRED = "paired"
"""The baseline's stop when the last implementation it pairs with stopped: its own interval is not a target."""
BUDGET_TOO_SMALL = "budget_too_small"
"""The run's stop when the first measured pass alone took longer than the budget."""


class FixedPlan:
    """Every live implementation, ``warmup + epochs`` epochs per round, ``repeats`` rounds (the default run)."""

    adaptive = False
    done = False
    refusal = ""

    def __init__(self, workload):
        self.workload = workload

    def total(self, implementations: int):
        """Epochs the run will measure, for the progress display."""
        return implementations * self.workload.repeats * self.workload.epochs_per_round

    def due(self, round_: int, epoch: int, live: list) -> list:
        """Names of the implementations the pass ``(round_, epoch)`` measures; empty ends the round."""
        return list(live) if epoch < self.workload.epochs_per_round else []

    def record(self, name: str, records: list) -> None:
        """One epoch of ``name`` finished (one record per rank)."""

    def label(self, round_: int, epoch: int) -> str:
        """Where the run is, for the progress display."""
        wl = self.workload
        return f"round {round_ + 1}/{wl.repeats} · epoch {epoch + 1}/{wl.epochs_per_round}"

    def to_dict(self, statuses: dict):
        """What ``meta.json`` records under ``sampling`` (nothing for a fixed run)."""
        return None


class AdaptivePlan(FixedPlan):
    """The fixed plan as the minimum, then more epochs in the last round until ``target`` is met.

    ``clock`` (monotonic seconds) times the budget from the start of the
    first measured pass, and each implementation's epochs (evaluation and
    writing included) to tell whether one more pass fits in the budget.
    ``widths`` computes the relative half-widths from the records so far.
    """

    adaptive = True

    def __init__(self, workload, target: SamplingTarget, clock: Clock = monotonic, widths=interval_widths):
        super().__init__(workload)
        self.target = target
        self.clock = clock
        self.widths_of = widths
        self.records = {}
        self.durations = {}
        self.stops = {}
        self.widths = {}
        self.baseline = None
        self.baseline_fixed = False
        self.passes = 0
        self.started = None
        self.ended = None
        self.refusal = ""
        self._mark = None

    @property
    def done(self) -> bool:
        """True once nothing is left to measure."""
        return self.ended is not None

    def total(self, implementations: int):
        """Unknown in advance."""
        return None

    def due(self, round_: int, epoch: int, live: list) -> list:
        """Decide who stops (with why), then name who the pass ``(round_, epoch)`` measures."""
        now = self.clock()
        active = [n for n in live if n not in self.stops and not self.done]
        if self.started is not None and active:
            self._decide(active, now)
            active = [n for n in active if n not in self.stops]
        if not active:
            self._end(now)
            return []
        if epoch >= self.workload.epochs_per_round and round_ < self.workload.repeats - 1:
            return []
        if epoch >= self.workload.warmup:
            self.passes += 1
            if self.started is None:
                self.started = now
        self._mark = self.clock()
        return active

    def record(self, name: str, records: list) -> None:
        """Keep ``name``'s measured records and how long its epoch took."""
        now = self.clock()
        measured = [r for r in records if not r.warmup]
        if measured:
            self.records.setdefault(name, []).extend(measured)
            self.durations[name] = now - self._mark
        self._mark = now

    def epochs(self, name: str) -> int:
        """Measured epochs of ``name`` so far."""
        return len(job_walls(self.records.get(name, [])))

    @property
    def elapsed(self) -> float:
        """Seconds since the first measured pass started (to the end, once done)."""
        if self.started is None:
            return 0.0
        return (self.ended if self.ended is not None else self.clock()) - self.started

    def _decide(self, active: list, now: float) -> None:
        """Stop what is precise enough or at its maximum, then everything if one more pass would break the budget."""
        budget = self.target.budget
        self._measure_widths(active)
        if budget is not None and self.passes == 1 and now - self.started > budget:
            self.refusal = (
                f"--budget {budget:g}s: one measured epoch of each implementation took "
                f"{now - self.started:.3g} s; give a budget of at least that"
            )
            self._stop(active, BUDGET)
            return
        others = [n for n in active if n != self.baseline]
        for name in others:
            self._stop_if_done(name)
        if self.baseline in active and all(n in self.stops for n in others):
            if self._pairs_others():
                self.stops[self.baseline] = PAIRED
            else:
                self._stop_if_done(self.baseline)
        left = [n for n in active if n not in self.stops]
        if budget is not None and now - self.started + sum(self.durations.get(n, 0.0) for n in left) > budget:
            self._stop(left, BUDGET)

    def _measure_widths(self, active: list) -> None:
        """Recompute the intervals of what is still measured, against a baseline chosen while the minimum runs."""
        measured = {n: self.records[n] for n in active if n in self.records}
        if not (self.baseline_fixed and self.baseline in active):
            self.baseline = choose_baseline(measured)
        self.baseline_fixed = all(self.epochs(n) >= self.target.min_epochs for n in active)
        self.widths.update(self.widths_of(measured, self.baseline, DECISION_RESAMPLES))

    def _pairs_others(self) -> bool:
        """Whether the baseline has anything to pair with (else its own median epoch is the interval watched)."""
        return any(name != self.baseline for name in self.records)

    def _stop_if_done(self, name: str) -> None:
        count = self.epochs(name)
        if count >= self.target.max_epochs:
            self.stops[name] = MAX_EPOCHS
        elif count >= self.target.min_epochs and self.widths.get(name, math.nan) <= self.target.precision:
            self.stops[name] = PRECISION

    def _stop(self, names: list, reason: str) -> None:
        for name in names:
            self.stops[name] = reason

    def _end(self, now: float) -> None:
        if self.ended is None and self.started is not None:
            self.ended = now

    def label(self, round_: int, epoch: int) -> str:
        """Round, epoch and the widest interval so far against the target."""
        text = f"round {round_ + 1}/{self.workload.repeats} · epoch {epoch + 1} · target ±{self.target.precision:.1%}"
        widest = self.widest()
        if widest:
            text += f" · widest ±{widest[1]:.1%} ({widest[0]})"
        return text

    def widest(self) -> tuple | None:
        """``(name, relative half-width)`` of the widest interval among those still measured, if any."""
        found = [(n, w) for n, w in self.widths.items() if n not in self.stops and not math.isnan(w)]
        return max(found, key=lambda item: item[1]) if found else None

    def stop_reason(self, statuses: dict) -> str | None:
        """Why the run stopped: the most binding reason among its implementations' (``None`` while it runs)."""
        if self.refusal:
            return BUDGET_TOO_SMALL
        if "interrupted" in statuses.values():
            return "interrupted"
        if not self.done:
            return None
        found = set(self.stops.values())
        for reason in (BUDGET, MAX_EPOCHS, PRECISION):
            if reason in found:
                return reason
        return "failed"

    def to_dict(self, statuses: dict) -> dict:
        """The ``sampling`` record of ``meta.json``; ``statuses`` maps implementation names to their status."""
        impls = {}
        for name, status in statuses.items():
            if status == "unavailable":
                continue
            width = self.widths.get(name, math.nan)
            targeted = name != self.baseline or not self._pairs_others()
            impls[name] = {
                "stop": self.stops.get(name) or (status if status in ("failed", "interrupted") else None),
                "epochs": self.epochs(name),
                "half_width": width,
                "interval": "epoch" if name == self.baseline else "speedup",
                "within_target": bool(width <= self.target.precision) if targeted else None,
            }
        return {
            "mode": "adaptive",
            **self.target.to_dict(),
            "decision_resamples": DECISION_RESAMPLES,
            "baseline": self.baseline,
            "stop": self.stop_reason(statuses),
            "elapsed_seconds": self.elapsed,
            "implementations": impls,
        }


def plan_for(workload, target: SamplingTarget | None, clock: Clock = monotonic) -> FixedPlan:
    """The fixed plan without a target, else the adaptive one."""
    return FixedPlan(workload) if target is None else AdaptivePlan(workload, target, clock)
