"""``perfsuite ab BASE NEW``: did the change make it faster? Paired ratios of one interleaved run.

Both sides' implementations ran in one run, their epochs interleaved pass by
pass (``store@base`` and ``store@new`` one after the other, in a random order
per pass), so the machine's drift hits both sides of a pass alike. For every
implementation and quantity (``epoch``, each phase, ``other``) the epochs of
the two sides are paired by (round, epoch) and each pair gives the ratio
new/base. A row has the median of those ratios with a seeded bootstrap 95%
interval, the two-sided Wilcoxon signed-rank p-value of the log ratios
(:func:`perfsuite.analysis.stats.wilcoxon_log`), the Benjamini–Hochberg
adjusted p-value over every gated row, and the verdict of
:func:`perfsuite.analysis.compare.verdict` (same margin, same words). A
quantity under 1% of the epoch on both sides is not gated.
"""

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from perfsuite.analysis import stats
from perfsuite.analysis.compare import NEGLIGIBLE_SHARE, QUANTITIES, Row, margin, verdict
from perfsuite.core.errors import UsageError
from perfsuite.results.reader import PAIR_KEYS, Run
from perfsuite.results.writer import write_json

MODE = "paired"
FILE = "ab.json"


@dataclass(frozen=True)
class Pair:
    """One implementation as measured on both sides: its name and the two display names in the run."""

    impl: str
    base: str
    new: str


@dataclass
class AbResult:
    """Every row of an A/B, the warnings, and the rules' parameters."""

    rows: list
    notes: list = field(default_factory=list)
    threshold: float = 0.05
    alpha: float = 0.05
    seed: int = stats.SEED

    @property
    def slower(self) -> list:
        """The rows that fail the gate."""
        return [r for r in self.rows if r.verdict == "slower"]

    def to_dict(self) -> dict:
        """Every field and row (NaN numbers become ``null`` when written)."""
        rows = [asdict(r) for r in self.rows]
        return {"threshold": self.threshold, "alpha": self.alpha, "seed": self.seed, "notes": self.notes, "rows": rows}


def _paired(run: Run, pair: Pair, quantity: str) -> tuple:
    """``(base, new)`` seconds of one quantity in the (round, epoch)s both sides measured, positive on both."""
    column = "wall_seconds" if quantity == "epoch" else f"{quantity}_seconds"
    base = run.measured(pair.base)[[*PAIR_KEYS, column]]
    new = run.measured(pair.new)[[*PAIR_KEYS, column]]
    both = base.merge(new, on=PAIR_KEYS, suffixes=("_base", "_new"))
    a, b = both[f"{column}_base"].to_numpy(dtype=float), both[f"{column}_new"].to_numpy(dtype=float)
    keep = (a > 0) & (b > 0)
    return a[keep], b[keep]


def _share(run: Run, pair: Pair, quantity: str) -> float:
    """The larger of the quantity's median shares of its own epoch on the two sides (1 for the epoch)."""
    if quantity == "epoch":
        return 1.0
    shares = []
    for name in (pair.base, pair.new):
        rows = run.measured(name)
        column = f"{quantity}_seconds"
        epoch = stats.median(rows["wall_seconds"])
        shares.append(stats.median(rows[column]) / epoch if epoch > 0 else math.nan)
    return max(shares)


def _row(run: Run, pair: Pair, quantity: str, seed: int) -> Row:
    """The paired ratio new/base of one quantity: median, bootstrap interval, Wilcoxon p (verdict later)."""
    base, new = _paired(run, pair, quantity)
    ratios = stats.paired_ratios(new, base)
    estimate = stats.describe(ratios, seed)
    return Row(
        pair.impl,
        quantity,
        "s",
        len(base),
        len(new),
        stats.median(base),
        stats.median(new),
        estimate.median,
        estimate.ci_low,
        estimate.ci_high,
        stats.wilcoxon_log(ratios),
        verdict="",
        mode=MODE,
    )


def _decide(row: Row, threshold: float, alpha: float) -> Row:
    """``row`` with the verdict of :func:`compare.verdict` and, beyond the margin, the best p its pairs allow."""
    word, note = verdict(row.ratio, row.low, row.high, row.p_adjusted, threshold, alpha)
    edge_low, edge_high = margin(threshold)
    if word == "inconclusive" and (row.low > edge_high or row.high < edge_low):
        note += f" ({row.n_base} pairs reach p {stats.min_wilcoxon_p(row.n_base):.2g} at best)"
    return replace(row, verdict=word, note=note)


def epochs_needed(tests: int, alpha: float, limit: int = 100) -> int:
    """The fewest pairs with which one row alone among ``tests`` gated rows can reach adjusted p < alpha."""
    return next((n for n in range(1, limit) if stats.min_wilcoxon_p(n) * tests < alpha), limit)


def power_note(rows: list, alpha: float) -> str:
    """A warning when too few pairs were measured for a lone slowdown to pass the correction, else ``""``."""
    gated = [r for r in rows if math.isfinite(r.p_adjusted)]
    if not gated:
        return ""
    n = min(r.n_base for r in gated)
    if stats.min_wilcoxon_p(n) * len(gated) < alpha:
        return ""
    return (
        f"with {n} pairs and {len(gated)} gated rows, a slowdown of one row alone cannot reach adjusted p < "
        f"{alpha:g} (the paired Wilcoxon test reaches {stats.min_wilcoxon_p(n):.2g} at best; it shows as "
        f"inconclusive); measure {epochs_needed(len(gated), alpha)} or more epochs"
    )


def ab_rows(run: Run, pairs: list, threshold: float, alpha: float, seed: int = stats.SEED) -> AbResult:
    """Every quantity of every pair, with Benjamini–Hochberg over the gated rows, then the verdicts.

    A pair whose two sides have no measured (round, epoch) in common is a
    :class:`UsageError` naming it.
    """
    rows, gated = [], []
    for pair in pairs:
        if not len(_paired(run, pair, "epoch")[0]):
            raise UsageError(f"{run.folder}: {pair.base} and {pair.new} have no measured epoch in common")
        for quantity in QUANTITIES:
            rows.append(_row(run, pair, quantity, seed))
            gated.append(_share(run, pair, quantity) >= NEGLIGIBLE_SHARE)
    adjusted = iter(stats.adjust_p_values([r.p_value for r, g in zip(rows, gated, strict=True) if g]))
    rows = [
        _decide(replace(r, p_adjusted=next(adjusted)), threshold, alpha)
        if g
        else replace(r, verdict="no change", note=f"under {NEGLIGIBLE_SHARE:.0%} of the epoch on both sides; not gated")
        for r, g in zip(rows, gated, strict=True)
    ]
    notes = [n for n in (power_note(rows, alpha),) if n]
    return AbResult(rows, notes, threshold, alpha, seed)


def write_ab(folder: Path, result: AbResult) -> Path:
    """Write ``ab.json`` (every row, the notes and the rules' parameters) into the run folder, atomically."""
    path = Path(folder) / FILE
    write_json(path, result.to_dict())
    return path
