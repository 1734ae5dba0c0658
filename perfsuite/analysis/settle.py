"""How many rounds and epochs would settle an ``inconclusive`` comparison of two runs.

An inconclusive row of ``perfsuite compare`` has an interval that straddles
an edge of the margin ``[1/(1+t), 1+t]``. If its ratio holds, the row
settles once the interval clears that edge. On a log scale the distance
``d`` from the row's ratio to the edge is ``|log ratio| − log(1+t)`` for a
ratio beyond the margin (it would be ``slower`` or ``faster``) and
``log(1+t) − |log ratio|`` for one inside it (``no change``); the
interval's half-width must come down to ``h* = d · z_0.975 / (z_0.975 +
z_POWER)``, so that its edge lands beyond the margin's in :data:`POWER` of
repeats (the usual sample-size rule).

The row's own interval, the one the gate judged, says how precise the
present design is: its log half-width ``h₀`` (the bootstrap of the medians,
so it carries the medians' efficiency on these very samples). How it would
narrow under another design comes from the variance split of the row's
samples, after Kalibera & Jones (and :mod:`perfsuite.analysis.noise` for
epoch walls): on the log of each epoch's value (its within-run ratio to the
reference when calibrated, its seconds when raw), pooled over the two runs,
``T_e²`` within rounds and ``S_r² = max(T_r² − T_e² / r̄, 0)`` between the
rounds' means. With ``n`` rounds of ``r`` epochs a run's estimate varies as
``V(n, r) = (S_r² + T_e² / r) / n``, so the design must have
``V(n, r) ≤ V(n₀, r₀) · (h* / h₀)²`` with ``(n₀, r₀)`` the present one.

The design suggested is the cheapest ``(n, r)`` that qualifies, priced
``n (c_r + r c_e)`` with the run's own costs of a round (workers' start,
set-up, warm-up) and of an epoch (every implementation's median wall), with
at least the rounds measured now (a between-round variance estimated as
zero from a few rounds is no reason to measure fewer) and as many as the
correction over the gated rows needs for one row to reach its alpha
(:func:`perfsuite.analysis.compare.epochs_needed`).
The search is exhaustive over ``n`` (for each, the least ``r`` follows from
the inequality), so the optimum is exact on this model rather than Kalibera &
Jones's continuous ``r*``. When rounds are not the unit (one worker process
per implementation for the whole run) the epochs are, and ``m`` epochs a run
narrow the interval as ``1/sqrt(m)``: ``m = m₀ (h₀ / h*)²``.

It is an estimate from the samples at hand: a few epochs give a rough
interval and a rough split. A ratio that sits on the margin's edge cannot be
settled by any count of epochs (it is the size of the threshold); a design
over :data:`MAX_SECONDS` a run counts as none.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats as _stats

MAX_ROUNDS = 1000
"""The most rounds a suggestion may ask for."""
MAX_EPOCHS = 5000
"""The most epochs per round a suggestion may ask for."""
MAX_SECONDS = 3600.0
"""The longest run a suggestion may ask for: beyond an hour a run, the row counts as not settled by measuring."""
CONFIDENCE = 0.95
POWER = 0.9
"""The chance that measuring the suggested design settles the row, if its ratio holds."""


@dataclass(frozen=True)
class Split:
    """Variance of one row's log values in one run: between rounds (``round_var``, NaN with one round) and within."""

    within: float
    round_var: float
    rounds: int
    epochs_per_round: float


@dataclass(frozen=True)
class Design:
    """A suggested measurement: ``rounds`` of ``epochs`` in each run (``rounds`` 1 in epoch mode), its seconds a run."""

    rounds: int
    epochs: int
    seconds: float
    goal: float
    """The log half-width the design aims at (``h*``)."""
    within_share: float = 1.0
    """The share of one round's variance that comes from its epochs (``T_e² / r̄`` over ``V`` per round)."""
    fresh: bool = True
    """Rounds of fresh worker processes (``False``: epochs of one process per implementation)."""


def split(rounds, values) -> Split | None:
    """The :class:`Split` of positive ``values`` on a log scale, grouped by ``rounds`` (``None`` under 2 values)."""
    rounds, values = np.asarray(rounds), np.asarray(values, dtype=float)
    keep = np.isfinite(values) & (values > 0)
    rounds, logs = rounds[keep], np.log(values[keep])
    if len(logs) < 2:
        return None
    groups = [logs[rounds == r] for r in np.unique(rounds)]
    dof = sum(len(g) - 1 for g in groups)
    within = sum(float(np.sum((g - g.mean()) ** 2)) for g in groups) / dof if dof > 0 else math.nan
    per_round = float(np.mean([len(g) for g in groups]))
    round_var = math.nan
    if len(groups) >= 2 and math.isfinite(within):
        round_var = max(float(np.var([g.mean() for g in groups], ddof=1)) - within / per_round, 0.0)
    return Split(within, round_var, len(groups), per_round)


def goal(ratio: float, threshold: float) -> float:
    """``h*``: the log half-width that settles a row at ``ratio`` with probability :data:`POWER` (NaN without one)."""
    if not (math.isfinite(ratio) and ratio > 0):
        return math.nan
    d = abs(abs(math.log(ratio)) - math.log1p(threshold))
    z = _stats.norm.ppf((1 + CONFIDENCE) / 2)
    return d * z / (z + _stats.norm.ppf(POWER))


def log_half_width(low: float, high: float) -> float:
    """Half the width of the interval ``[low, high]`` of a ratio on a log scale (NaN without one)."""
    if not (math.isfinite(low) and math.isfinite(high) and low > 0 and high >= low):
        return math.nan
    return math.log(high / low) / 2


def by_rounds(
    base: Split, new: Split, now: float, aim: float, min_rounds: int, round_cost: float, epoch_cost: float
) -> Design | None:
    """The cheapest ``(n, r)`` that narrows the half-width ``now`` to ``aim`` (module docstring), else ``None``."""
    within = (base.within + new.within) / 2
    measured = [v for v in (base.round_var, new.round_var) if math.isfinite(v)]
    between = float(np.mean(measured)) if measured else 0.0
    if not (aim > 0 and now > 0 and math.isfinite(within) and math.isfinite(between)):
        return None
    n0, r0 = (base.rounds + new.rounds) / 2, (base.epochs_per_round + new.epochs_per_round) / 2
    per_round = between + within / r0
    if per_round <= 0:
        return None
    allowed = per_round / n0 * (aim / now) ** 2
    n = np.arange(max(2, min_rounds), MAX_ROUNDS + 1)
    room = n * allowed - between
    n, room = n[room > 0], room[room > 0]
    if not len(n):
        return None
    r = np.maximum(1, np.ceil(within / room))
    cost = n * (round_cost + r * epoch_cost)
    cost[(r > MAX_EPOCHS) | (cost > MAX_SECONDS)] = np.inf
    best = int(np.argmin(cost))
    if not math.isfinite(cost[best]):
        return None
    return Design(int(n[best]), int(r[best]), float(cost[best]), aim, within / r0 / per_round)


def by_epochs(now: float, epochs: int, aim: float, min_epochs: int, epoch_cost: float) -> Design | None:
    """Epochs a run that narrow the half-width ``now`` of ``epochs`` a run to ``aim`` (epoch mode), else ``None``."""
    if not (aim > 0 and now > 0 and epochs > 0):
        return None
    m = max(2, min_epochs, math.ceil(epochs * (now / aim) ** 2))
    seconds = m * epoch_cost
    return Design(1, m, seconds, aim, fresh=False) if seconds <= MAX_SECONDS else None


def _words(design: Design, each: str) -> str:
    """The design as a measurement to make, with its options and its cost."""
    cost = (
        f"about {design.seconds / 60:.1f} min a run" if design.seconds >= 60 else f"about {design.seconds:.0f} s a run"
    )
    if not design.fresh:
        return f"about {design.epochs} epochs{each} ({cost})"
    return (
        f"about {design.rounds} rounds of {design.epochs} epochs{each} (--fresh-workers --repeats {design.rounds} "
        f"--epochs {design.epochs}, {cost}; its epochs, not its processes, carry {design.within_share:.0%} of a "
        "round's variance)"
    )


def _beyond(row, threshold: float) -> bool:
    return math.isfinite(row.ratio) and row.ratio > 0 and abs(math.log(row.ratio)) > math.log1p(threshold)


def note(rows: list, threshold: float, design_of: Callable, each: str = "") -> str:
    """One sentence of what would settle the ``inconclusive`` rows, else ``""``.

    ``design_of(row)`` gives a row's :class:`Design` or ``None``. The rows
    whose ratio lies beyond the margin come first (they are the ones that
    could fail the gate): the sentence gives the design of the most demanding
    of them that an affordable measurement settles (of every inconclusive row
    when none is beyond), and names the rows none would settle. ``each``
    follows the epoch count (``" in each run"`` for two runs).
    """
    open_rows = [r for r in rows if r.verdict == "inconclusive"]
    beyond = [r for r in open_rows if _beyond(r, threshold)]
    pool = beyond or open_rows
    designs = [(r, design_of(r)) for r in pool]
    doable = [(r, d) for r, d in designs if d is not None]
    words = []
    if doable:
        row, design = max(doable, key=lambda item: item[1].seconds)
        kind = " beyond the margin" if beyond else ""
        among = f", the most demanding of {len(pool)} inconclusive rows{kind}" if len(pool) > 1 else ""
        width = math.expm1(log_half_width(row.low, row.high))
        words.append(
            f"to settle {row.impl} {row.quantity} (×{row.ratio:.3f} ±{width:.1%}, needs ±{math.expm1(design.goal):.1%})"
            f"{among}, measure {_words(design, each)}"
        )
    stuck = [f"{r.impl} {r.quantity} ×{r.ratio:.3f}" for r, d in designs if d is None]
    if stuck:
        words.append(
            f"{', '.join(stuck)}: no measurement within an hour a run settles {'them' if len(stuck) > 1 else 'it'} "
            "(the ratio sits too near the margin's edge for its noise)"
        )
    return "; ".join(words)
