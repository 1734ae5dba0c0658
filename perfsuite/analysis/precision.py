"""How precisely the epochs measured so far pin each implementation down: the stopping rule's numbers.

Adaptive sampling (:mod:`perfsuite.measure.sampling`) asks, between passes,
for the **relative half-width** of each implementation's 95% interval:
``(ci_high - ci_low) / 2 / median`` of its paired speedup over the baseline
(pairs share ``(round, epoch)``, as in :mod:`perfsuite.analysis.speedups`),
and for the baseline itself of its median epoch. The intervals come from the
same seeded bootstrap as the report (:mod:`perfsuite.analysis.stats`), with
:data:`DECISION_RESAMPLES` resamples instead of
:data:`~perfsuite.analysis.stats.RESAMPLES` so that recomputing them after
every pass stays cheap; the report keeps the full count.
"""

import math

from perfsuite.analysis import stats
from perfsuite.analysis.speedups import default_baseline

DECISION_RESAMPLES = 999
"""Bootstrap resamples of each interval the stopping rule computes."""


def job_walls(records) -> dict:
    """``{(round, epoch): wall seconds}`` of the measured (non-warm-up) epochs among ``records``.

    A multi-rank implementation sends one record per rank; its epoch lasts as
    long as its slowest rank, so the largest wall counts (as in the summary).
    """
    walls = {}
    for r in records:
        if not r.warmup:
            key = (r.round, r.epoch)
            walls[key] = max(walls.get(key, r.wall), r.wall)
    return walls


def relative_half_width(estimate: stats.Estimate) -> float:
    """``(ci_high - ci_low) / 2 / median`` of ``estimate``; NaN without an interval or a positive median."""
    if not estimate.has_interval or not estimate.median > 0:
        return math.nan
    return (estimate.ci_high - estimate.ci_low) / 2 / estimate.median


def choose_baseline(records_by_impl: dict) -> str | None:
    """The baseline of the stopping rule: :data:`DEFAULT_BASELINE` when it has measured epochs, else the slowest.

    The same rule as the report's default (:func:`perfsuite.analysis.speedups.choose_baseline`),
    on the epochs measured so far.
    """
    return default_baseline({name: stats.median(list(job_walls(rs).values())) for name, rs in records_by_impl.items()})


def interval_widths(
    records_by_impl: dict, baseline: str | None, n_resamples: int = DECISION_RESAMPLES, seed: int = stats.SEED
) -> dict:
    """Relative half-width of every implementation's interval, from its :class:`EpochRecord` lists.

    The baseline's (or, without a baseline, each one's) is that of its median
    epoch; every other implementation's is that of its paired speedup over
    ``baseline``, over the ``(round, epoch)`` both have measured. NaN where
    there is no interval yet (fewer than two samples or pairs).
    """
    walls = {name: job_walls(rs) for name, rs in records_by_impl.items()}
    base = walls.get(baseline, {})
    widths = {}
    for name, own in walls.items():
        if name == baseline or baseline is None:
            estimate = stats.describe(list(own.values()), seed, n_resamples=n_resamples)
        else:
            keys = sorted(own.keys() & base.keys())
            if not keys:
                widths[name] = math.nan
                continue
            estimate = stats.speedup([base[k] for k in keys], [own[k] for k in keys], seed, n_resamples=n_resamples)
        widths[name] = relative_half_width(estimate)
    return widths
