"""Run-level statistics: per-implementation estimates, speedups, gap decomposition, headline.

Only measured (non-warm-up) epochs count. For every implementation:

* ``epoch`` and each phase (five timed phases and ``other``, per-epoch sums)
  get an :class:`~perfsuite.analysis.stats.Estimate` (median, IQR, bootstrap CI);
* its **speedup** over the baseline is the median of the per-pair ratios
  ``baseline wall / impl wall``, pairs being epochs with the same
  ``(round, epoch)`` — run back to back, so machine drift cancels;
* its **gap decomposition** says how many seconds of the per-epoch
  difference to the baseline each phase accounts for. Per pair,
  ``base wall - impl wall`` is exactly the sum of the six per-phase
  differences (``other`` closes the sum), so the *means* of the paired
  differences add up to the mean gap and each phase's share is well
  defined; every mean carries a bootstrap interval.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from perfsuite.analysis import stats
from perfsuite.core.errors import UsageError
from perfsuite.results.reader import ALL_PHASES, PAIR_KEYS, Run

DEFAULT_BASELINE = "idiomatic"


@dataclass(frozen=True)
class Contribution:
    """Seconds of the per-epoch gap one phase accounts for (mean of paired differences)."""

    seconds: float
    low: float
    high: float
    share: float

    def to_dict(self) -> dict:
        return {k: _num(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Gap:
    """How the per-epoch difference ``baseline - impl`` splits into phases."""

    pairs: int
    seconds: float
    low: float
    high: float
    phases: dict

    @property
    def significant(self) -> bool:
        """True when the interval of the total gap excludes zero."""
        return not math.isnan(self.low) and (self.low > 0 or self.high < 0)

    def top(self) -> tuple:
        """``(phase, Contribution)`` contributing most in the direction of the gap."""
        sign = 1.0 if self.seconds >= 0 else -1.0
        return max(self.phases.items(), key=lambda item: sign * item[1].seconds)

    def to_dict(self) -> dict:
        return {
            "pairs": self.pairs,
            "seconds": _num(self.seconds),
            "low": _num(self.low),
            "high": _num(self.high),
            "significant": self.significant,
            "phases": {p: c.to_dict() for p, c in self.phases.items()},
        }


@dataclass
class ImplStats:
    """Statistics of one implementation's measured epochs."""

    name: str
    epoch: stats.Estimate
    phases: dict
    speedup: stats.Estimate | None = None
    gap: Gap | None = None

    def to_dict(self) -> dict:
        return {
            "epoch": self.epoch.to_dict(),
            "phases": {p: e.to_dict() for p, e in self.phases.items()},
            "speedup": self.speedup.to_dict() if self.speedup else None,
            "gap": self.gap.to_dict() if self.gap else None,
        }


@dataclass
class Analysis:
    """Statistics of a whole run against one baseline implementation."""

    baseline: str | None
    impls: dict
    seed: int
    notes: list = field(default_factory=list)

    @property
    def fastest(self) -> str | None:
        """The implementation with the smallest median epoch time."""
        if not self.impls:
            return None
        return min(self.impls.values(), key=lambda s: s.epoch.median).name

    @property
    def noisy(self) -> list:
        """``(impl, quantity, relative IQR)`` of every estimate whose IQR/median exceeds 10%."""
        found = []
        for s in self.impls.values():
            for what, est in [("epoch", s.epoch)] + list(s.phases.items()):
                if est.noisy and not (what != "epoch" and est.median < 0.01 * s.epoch.median):
                    found.append((s.name, what, est.relative_iqr))
        return found

    def to_dict(self) -> dict:
        return {
            "baseline": self.baseline,
            "seed": self.seed,
            "confidence": stats.CONFIDENCE,
            "noise_threshold": stats.NOISE_THRESHOLD,
            "notes": list(self.notes),
            "fastest": self.fastest,
            "implementations": {n: s.to_dict() for n, s in self.impls.items()},
        }


def _num(value):
    return float(value) if value is not None and math.isfinite(value) else None


def default_baseline(medians: dict) -> str | None:
    """:data:`DEFAULT_BASELINE` if it was measured, else the slowest (``medians``: name -> median epoch or NaN)."""
    measured = [name for name, m in medians.items() if not math.isnan(m)]
    if DEFAULT_BASELINE in measured:
        return DEFAULT_BASELINE
    return max(measured, key=medians.get) if measured else None


def choose_baseline(run: Run, requested: str | None) -> tuple:
    """``(baseline, note)``. An explicit name must exist; the default falls back with a note."""
    measured = run.measured_impls
    if requested is not None:
        if requested not in measured:
            raise UsageError(
                f"--baseline {requested}: no measured epochs of it in {run.folder}"
                f" (measured: {', '.join(measured) or 'none'})"
            )
        return requested, ""
    base = default_baseline({n: stats.median(run.measured(n)["wall_seconds"]) for n in measured})
    if base in (DEFAULT_BASELINE, None):
        return base, ""
    return base, f"{DEFAULT_BASELINE} has no measured epochs in this run; the baseline is the slowest, {base}"


def paired(run: Run, base: str, impl: str):
    """Measured epoch rows of ``base`` and ``impl`` joined on (round, epoch)."""
    return run.measured(base).merge(run.measured(impl), on=PAIR_KEYS, suffixes=("_base", "_impl"))


def gap(run: Run, base: str, impl: str, seed: int = stats.SEED) -> Gap | None:
    """Gap decomposition of ``impl`` against ``base`` over their paired epochs (None without pairs)."""
    rows = paired(run, base, impl)
    if rows.empty:
        return None
    diffs = {p: (rows[f"{p}_seconds_base"] - rows[f"{p}_seconds_impl"]).to_numpy() for p in ALL_PHASES}
    total = np.sum(list(diffs.values()), axis=0)
    mean, low, high = stats.mean_interval(total, seed)
    phases = {}
    for p, d in diffs.items():
        m, lo, hi = stats.mean_interval(d, seed)
        phases[p] = Contribution(m, lo, hi, m / mean if mean != 0 else math.nan)
    return Gap(len(rows), mean, low, high, phases)


def impl_stats(run: Run, impl: str, baseline: str | None, seed: int = stats.SEED) -> ImplStats:
    """Estimates of one implementation, with speedup and gap against ``baseline``."""
    rows = run.measured(impl)
    result = ImplStats(
        impl,
        stats.describe(rows["wall_seconds"], seed),
        {p: stats.describe(rows[f"{p}_seconds"], seed) for p in ALL_PHASES},
    )
    if baseline is not None and impl != baseline:
        pairs = paired(run, baseline, impl)
        if not pairs.empty:
            result.speedup = stats.speedup(pairs["wall_seconds_base"], pairs["wall_seconds_impl"], seed)
            result.gap = gap(run, baseline, impl, seed)
    return result


def analyse(run: Run, baseline: str | None = None, seed: int = stats.SEED) -> Analysis:
    """Statistics of every implementation of ``run`` with measured epochs."""
    base, note = choose_baseline(run, baseline)
    impls = {name: impl_stats(run, name, base, seed) for name in run.measured_impls}
    notes = [note] if note else []
    for name in run.impls:
        if name not in impls:
            status = run.status(name)
            notes.append(
                f"{name}: no measured epochs ({status.get('status', 'unknown')}"
                + (f": {status['reason']}" if status.get("reason") else "")
                + ")"
            )
    return Analysis(base, impls, seed, notes)


def format_interval(est: stats.Estimate, unit: str = "", digits: int = 2) -> str:
    """``"1.23 (95% CI 1.10–1.40)"`` or the value with the reason it has no interval."""
    value = f"{est.median:.{digits}f}{unit}"
    if not est.has_interval:
        return f"{value} ({est.note or 'no interval'})"
    return f"{value} (95% CI {est.ci_low:.{digits}f}–{est.ci_high:.{digits}f}{unit})"


def _gap_sentence(g: Gap, saves: bool) -> str:
    if not math.isnan(g.low) and not g.significant:
        return (
            f"The per-epoch difference ({g.seconds:+.3f} s, 95% CI {g.low:+.3f} to {g.high:+.3f}) is within "
            f"noise, so no phase can be credited with it."
        )
    phase, c = g.top()
    verb = "saves" if saves else "loses"
    text = f"Of the {abs(g.seconds):.3f} s per epoch it {verb}, {phase} accounts for {abs(c.seconds):.3f} s" + (
        f" ({c.share:.0%})." if math.isfinite(c.share) else "."
    )
    others = sorted(((p, x) for p, x in g.phases.items() if p != phase), key=lambda i: -abs(i[1].seconds))
    if math.isfinite(c.share) and c.share < 0.6 and others:
        p2, c2 = others[0]
        text = text[:-1] + f", then {p2} {abs(c2.seconds):.3f} s ({c2.share:.0%})."
    return text


def headline(analysis: Analysis) -> str:
    """The plain-language answer: fastest implementation, speedup with interval, phase explaining the gap."""
    if not analysis.impls:
        return "No implementation finished a measured epoch in this run: there is nothing to compare."
    fastest = analysis.impls[analysis.fastest]
    base = analysis.baseline
    if len(analysis.impls) == 1:
        return (
            f"{fastest.name} ran alone: median epoch {format_interval(fastest.epoch, ' s', 3)}, "
            f"{fastest.epoch.n} measured epochs; nothing to compare it with."
        )
    if fastest.name == base:
        runner_up = min((s for s in analysis.impls.values() if s.name != base), key=lambda s: s.epoch.median)
        text = (
            f"The baseline {base} is the fastest implementation; the next, {runner_up.name}, "
            f"runs at {format_interval(runner_up.speedup, '×')} of its speed"
            f" over {runner_up.gap.pairs} paired epochs."
            if runner_up.speedup
            else f"The baseline {base} is the fastest implementation."
        )
        return text + (" " + _gap_sentence(runner_up.gap, saves=False) if runner_up.gap else "")
    if fastest.speedup is None:
        return (
            f"{fastest.name} is the fastest implementation (median epoch {fastest.epoch.median:.3f} s), "
            f"but it shares no measured epoch with the baseline {base}, so no paired speedup exists."
        )
    text = (
        f"{fastest.name} is the fastest implementation: {format_interval(fastest.speedup, '×')} faster than "
        f"{base} over {fastest.gap.pairs} paired epochs."
    )
    if fastest.speedup.has_interval and fastest.speedup.ci_low <= 1.0:
        text += " The interval includes 1×, so this run does not show it is faster at all."
    return text + " " + _gap_sentence(fastest.gap, saves=True)
