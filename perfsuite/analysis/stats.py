"""Statistics from raw samples: medians, IQR, bootstrap intervals, ratios, significance.

Every function takes plain sequences of seconds (or ratios) and returns
plain numbers, so the same code serves the report, ``summary.json`` and
``perfsuite compare``.

* :func:`describe` — median, quartiles, IQR and a seeded 95% bootstrap
  confidence interval of the median (``scipy.stats.bootstrap``, percentile
  method: BCa's jackknife acceleration is unreliable for the median of
  tied samples, which timers produce).
* :func:`paired_ratios` / :func:`speedup` — per-pair ratios ``base / new``
  (pairs share a round and an epoch, so machine drift cancels) and the
  bootstrap interval of their median.
* :func:`ratio_of_medians` — ``median(new) / median(old)`` of two
  independent samples with a two-sample bootstrap interval (between runs).
* :func:`mann_whitney` — two-sided Mann–Whitney U p-value.
* :func:`adjust_p_values` — Benjamini–Hochberg adjusted p-values of many tests.

Tiny samples are handled, not hidden: one sample has no interval (NaN), two
samples give an interval that is just their range, and identical samples a
zero-width one; :attr:`Estimate.note` says which.
"""

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as _stats

SEED = 20240917
"""Default seed of every bootstrap: the same samples always give the same interval."""

CONFIDENCE = 0.95
RESAMPLES = 4999
NOISE_THRESHOLD = 0.10
"""IQR/median above which a sample is flagged as noisy."""

BATCH = 500
"""Resamples computed at once (bounds memory on samples of thousands of steps)."""

ROUGH_BELOW = 5
"""Sample sizes below this get an interval flagged as rough."""


@dataclass(frozen=True)
class Estimate:
    """A summary of one sample: robust centre, spread and an interval of the median."""

    n: int
    median: float
    q1: float
    q3: float
    ci_low: float
    ci_high: float
    note: str = ""

    @property
    def iqr(self) -> float:
        """Interquartile range q3 - q1."""
        return self.q3 - self.q1

    @property
    def relative_iqr(self) -> float:
        """IQR / median (NaN when the median is zero or the sample empty)."""
        if self.n == 0 or self.median == 0:
            return math.nan
        return self.iqr / abs(self.median)

    @property
    def noisy(self) -> bool:
        """True when IQR/median exceeds :data:`NOISE_THRESHOLD`."""
        return bool(self.relative_iqr > NOISE_THRESHOLD)

    @property
    def has_interval(self) -> bool:
        """True when the interval bounds are numbers."""
        return not (math.isnan(self.ci_low) or math.isnan(self.ci_high))

    def to_dict(self) -> dict:
        """JSON-ready fields, with IQR, relative IQR and the noise flag."""
        out = {k: _json_number(v) if isinstance(v, float) else v for k, v in asdict(self).items()}
        out.update(iqr=_json_number(self.iqr), relative_iqr=_json_number(self.relative_iqr), noisy=self.noisy)
        return out


def _json_number(value: float):
    """A float for JSON: NaN and infinities become ``None``."""
    return float(value) if math.isfinite(value) else None


def _clean(samples) -> np.ndarray:
    array = np.asarray(samples, dtype=np.float64).reshape(-1)
    if np.isnan(array).any():
        raise ValueError("samples contain NaN")
    return array


def median(samples) -> float:
    """The median of ``samples``, NaNs left out (NaN when nothing is left): every median perfsuite reports."""
    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    x = x[~np.isnan(x)]
    return float(np.median(x)) if len(x) else math.nan


def _median(x, axis=-1):
    return np.median(x, axis=axis)


def _tiny_note(n: int) -> str:
    if n == 1:
        return "1 sample: no interval"
    if n == 2:
        return "2 samples: the interval is just their range (degenerate)"
    if n < ROUGH_BELOW:
        return f"{n} samples: the interval is rough"
    return ""


def bootstrap_median_ci(
    samples, seed: int = SEED, confidence: float = CONFIDENCE, n_resamples: int = RESAMPLES
) -> tuple:
    """Seeded percentile-bootstrap interval ``(low, high)`` of the median; NaNs under 2 samples."""
    x = _clean(samples)
    if len(x) < 2:
        return math.nan, math.nan
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    result = _stats.bootstrap(
        (x,),
        _median,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def describe(samples, seed: int = SEED, confidence: float = CONFIDENCE, n_resamples: int = RESAMPLES) -> Estimate:
    """Median, quartiles and bootstrap interval of the median of ``samples``.

    An empty sample gives NaNs with the note ``"no samples"``.
    """
    x = _clean(samples)
    if len(x) == 0:
        return Estimate(0, math.nan, math.nan, math.nan, math.nan, math.nan, "no samples")
    q1, median, q3 = (float(v) for v in np.percentile(x, [25, 50, 75]))
    low, high = bootstrap_median_ci(x, seed, confidence, n_resamples)
    note = _tiny_note(len(x))
    if len(x) > 1 and np.all(x == x[0]):
        note = "all samples equal: zero-width interval"
    return Estimate(len(x), median, q1, q3, low, high, note)


def paired_ratios(base, new) -> np.ndarray:
    """Element-wise ``base / new`` of two equally long, aligned samples (a speedup of ``new``)."""
    b, n = _clean(base), _clean(new)
    if b.shape != n.shape:
        raise ValueError(f"paired samples differ in length ({len(b)} vs {len(n)})")
    if (n <= 0).any():
        raise ValueError("paired ratio with a non-positive denominator")
    return b / n


def speedup(base, new, seed: int = SEED, confidence: float = CONFIDENCE, n_resamples: int = RESAMPLES) -> Estimate:
    """Speedup of ``new`` over ``base``: median of paired ratios with its bootstrap interval."""
    return describe(paired_ratios(base, new), seed, confidence, n_resamples)


def ratio_of_medians(old, new, seed: int = SEED, confidence: float = CONFIDENCE, n_resamples: int = RESAMPLES) -> tuple:
    """``median(new) / median(old)`` and its two-sample bootstrap interval ``(ratio, low, high)``.

    The two samples are resampled independently (they come from different
    runs). The interval is NaN when either sample has fewer than 2 values.
    """
    a, b = _clean(old), _clean(new)
    if len(a) == 0 or len(b) == 0:
        return math.nan, math.nan, math.nan
    base = float(np.median(a))
    ratio = float(np.median(b)) / base if base > 0 else math.nan
    if len(a) < 2 or len(b) < 2 or not math.isfinite(ratio):
        return ratio, math.nan, math.nan
    if np.all(a == a[0]) and np.all(b == b[0]):
        return ratio, ratio, ratio

    def statistic(x, y, axis=-1):
        return np.median(y, axis=axis) / np.median(x, axis=axis)

    result = _stats.bootstrap(
        (a, b),
        statistic,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        paired=False,
        batch=BATCH,
        rng=np.random.default_rng(seed),
    )
    return ratio, float(result.confidence_interval.low), float(result.confidence_interval.high)


def mann_whitney(old, new) -> float:
    """Two-sided Mann–Whitney U p-value of ``old`` vs ``new`` (NaN when either is empty).

    With few samples the exact test cannot reach small p-values: 3 against 3
    gives at best 0.1, 4 against 4 at best 0.029.
    """
    a, b = _clean(old), _clean(new)
    if len(a) == 0 or len(b) == 0:
        return math.nan
    return float(_stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def wilcoxon_log(ratios) -> float:
    """Two-sided Wilcoxon signed-rank p-value of ``log(ratios)`` against 0: a paired test of ratios against 1.

    NaN without a ratio; 1 when every ratio is exactly 1. With n pairs the
    exact test cannot go below ``2 / 2**n`` (:func:`min_wilcoxon_p`): 5 pairs
    give at best 0.0625, 6 pairs 0.031.
    """
    r = _clean(ratios)
    if len(r) == 0:
        return math.nan
    d = np.log(r)
    if np.all(d == 0):
        return 1.0
    return float(_stats.wilcoxon(d).pvalue)


def ttest_log(ratios) -> float:
    """Two-sided one-sample Student t p-value of ``log(ratios)`` against 0: ratios of independent units against 1.

    For a few independent units each summarised by a mean or median, such as
    rounds of fresh processes (Kalibera & Jones's top level). Unlike the
    signed-rank test it has no floor, and one unit that went the other way
    widens the spread instead of outweighing the rest by its rank. NaN under 2
    ratios; 1 when every ratio is exactly 1, 0 when all are equal otherwise.
    """
    r = _clean(ratios)
    if len(r) < 2:
        return math.nan
    d = np.log(r)
    if np.all(d == d[0]):
        return 1.0 if d[0] == 0 else 0.0
    return float(_stats.ttest_1samp(d, 0.0).pvalue)


def min_wilcoxon_p(n: int) -> float:
    """The smallest two-sided exact Wilcoxon signed-rank p-value reachable with ``n`` pairs."""
    return min(1.0, 2.0 ** (1 - n)) if n > 0 else math.nan


def min_p_value(n_old: int, n_new: int) -> float:
    """The smallest two-sided exact Mann–Whitney p-value reachable with these sample sizes."""
    if n_old == 0 or n_new == 0:
        return math.nan
    log_comb = math.lgamma(n_old + n_new + 1) - math.lgamma(n_old + 1) - math.lgamma(n_new + 1)
    return min(1.0, 2.0 * math.exp(-log_comb))


def mean_interval(samples, seed: int = SEED, confidence: float = CONFIDENCE, n_resamples: int = RESAMPLES) -> tuple:
    """Mean of ``samples`` and a seeded percentile-bootstrap interval ``(mean, low, high)``."""
    x = _clean(samples)
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan
    if np.all(x == x[0]):
        return mean, mean, mean
    result = _stats.bootstrap(
        (x,),
        np.mean,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    return mean, float(result.confidence_interval.low), float(result.confidence_interval.high)


def adjust_p_values(p_values) -> list:
    """Benjamini–Hochberg adjusted p-values (``scipy.stats.false_discovery_control``), in the given order.

    NaN p-values (an empty sample) stay NaN and do not count among the tests.
    Compare each adjusted value with alpha: that controls the expected share
    of false discoveries among the rejected hypotheses at alpha (for
    independent or positively dependent tests), and the chance of any false
    rejection when every null hypothesis is true.
    """
    p = np.asarray(p_values, dtype=np.float64).reshape(-1)
    out = np.full(p.shape, math.nan)
    finite = np.isfinite(p)
    if finite.any():
        out[finite] = _stats.false_discovery_control(p[finite], method="bh")
    return [float(v) for v in out]
