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
quantity under 5% of the epoch on both sides (``NEGLIGIBLE_SHARE``) is not gated.

When every round ran in fresh worker processes (``perfsuite ab --fresh-workers
--repeats N``), the round is the unit instead: a round's ratio is the median
of its epochs' ratios, and the interval and the test run over rounds. Two
processes of identical code can differ by as much as the effect looked for
(a phase ±10–17% here), and epochs of one process all share that difference,
so only fresh processes let the interval include it. The rounds' log ratios
are tested with Student's t (:func:`perfsuite.analysis.stats.ttest_log`), as
Kalibera and Jones test the means of independent executions: the signed-rank
test's best p over n rounds is 2/2ⁿ, and one round that went the other way
by more than the rest moved its p by its rank alone (e.g. 13 of 14 rounds
12% slower, one 14% faster: Wilcoxon p 0.013, t 0.0002).
"""

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from perfsuite.analysis import settle, stats
from perfsuite.analysis.compare import (
    NEGLIGIBLE_SHARE,
    QUANTITIES,
    Row,
    by_round,
    column,
    decide,
    epoch_share,
    epochs_needed,
    per_round,
    run_costs,
)
from perfsuite.core.errors import UsageError
from perfsuite.results.reader import PAIR_KEYS, Run
from perfsuite.results.writer import write_json

MODE = "paired"
MODE_BY_ROUND = "paired by round"
"""The mode of a row whose samples are rounds of fresh worker processes (:func:`by_round`)."""
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
    settle: str = ""
    """What would settle the inconclusive rows (:func:`settle_note`; also among ``notes``)."""

    @property
    def slower(self) -> list:
        """The rows that fail the gate."""
        return [r for r in self.rows if r.verdict == "slower"]

    def to_dict(self) -> dict:
        """Every field and row (NaN numbers become ``null`` when written)."""
        rows = [asdict(r) for r in self.rows]
        return {"threshold": self.threshold, "alpha": self.alpha, "seed": self.seed, "notes": self.notes, "rows": rows}


def _paired(run: Run, pair: Pair, quantity: str) -> tuple:
    """``(base, new, round)`` of one quantity in the (round, epoch)s both sides measured, positive on both."""
    name = column(quantity)
    base = run.measured(pair.base)[[*PAIR_KEYS, name]]
    new = run.measured(pair.new)[[*PAIR_KEYS, name]]
    both = base.merge(new, on=PAIR_KEYS, suffixes=("_base", "_new"))
    a, b = both[f"{name}_base"].to_numpy(dtype=float), both[f"{name}_new"].to_numpy(dtype=float)
    keep = (a > 0) & (b > 0)
    return a[keep], b[keep], both["round"].to_numpy()[keep]


def unit_ratios(run: Run, pair: Pair, quantity: str, rounds: bool) -> tuple:
    """``(base, new, ratios)``: the paired seconds and the ratios new/base, one per epoch or per round.

    Each round's ratio is the median of its epochs' ratios (``rounds``: :func:`~perfsuite.analysis.compare.by_round`).
    """
    base, new, round_of = _paired(run, pair, quantity)
    ratios = stats.paired_ratios(new, base)
    return base, new, (per_round(round_of, ratios) if rounds and len(ratios) else ratios)


def _share(run: Run, pair: Pair, quantity: str) -> float:
    """The larger of the quantity's median shares of its own epoch on the two sides (1 for the epoch)."""
    return max(epoch_share(run, pair.base, quantity), epoch_share(run, pair.new, quantity))


def paired_row(run: Run, pair: Pair, quantity: str, seed: int = stats.SEED, rounds: bool = False) -> Row:
    """The paired ratio new/base of one quantity: median, bootstrap interval, Wilcoxon p (verdict later).

    With ``rounds`` the samples are the rounds' ratios (:func:`by_round`), and ``n_base``/``n_new`` count rounds.
    """
    base, new, ratios = unit_ratios(run, pair, quantity, rounds)
    estimate = stats.describe(ratios, seed)
    return Row(
        pair.impl,
        quantity,
        "s",
        len(ratios),
        len(ratios),
        stats.median(base),
        stats.median(new),
        estimate.median,
        estimate.ci_low,
        estimate.ci_high,
        stats.ttest_log(ratios) if rounds else stats.wilcoxon_log(ratios),
        verdict="",
        mode=MODE_BY_ROUND if rounds else MODE,
    )


def _decide(row: Row, threshold: float, alpha: float) -> Row:
    """:func:`compare.decide` for paired epochs (Wilcoxon, floored) or rounds (t, no floor)."""
    if row.mode == MODE_BY_ROUND:
        return decide(row, threshold, alpha, math.nan, f"{row.n_base} rounds")
    return decide(row, threshold, alpha, stats.min_wilcoxon_p(row.n_base), f"{row.n_base} pairs")


def power_note(rows: list, alpha: float) -> str:
    """A warning when too few paired epochs were measured for a lone slowdown to pass the correction, else ``""``.

    Only for epochs (the signed-rank test's floor); rounds are tested with t, which has none.
    """
    gated = [r for r in rows if math.isfinite(r.p_adjusted)]
    if not gated:
        return ""
    n = min(r.n_base for r in gated)
    if stats.min_wilcoxon_p(n) * len(gated) < alpha:
        return ""
    return (
        f"with {n} pairs and {len(gated)} gated rows, a slowdown of one row alone cannot reach adjusted p < "
        f"{alpha:g} (the paired Wilcoxon test reaches {stats.min_wilcoxon_p(n):.2g} at best; it shows as "
        f"inconclusive); measure {epochs_needed(len(gated), alpha, stats.min_wilcoxon_p)} or more epochs"
    )


def settle_note(run: Run, pairs: list, rows: list, threshold: float, alpha: float) -> str:
    """What would settle the ``inconclusive`` rows (:func:`perfsuite.analysis.settle.note`), else ``""``.

    By round, each round's paired ratio is the sample and the split is of the
    epochs' paired ratios; by epoch, the pairs are (the signed-rank floor sets
    the fewest).
    """
    if not any(r.verdict == "inconclusive" for r in rows):
        return ""
    by_impl = {p.impl: p for p in pairs}
    gated = sum(math.isfinite(r.p_adjusted) for r in rows)
    per_round, per_epoch = run_costs(run)

    def design(row: Row):
        now, aim = settle.log_half_width(row.low, row.high), settle.goal(row.ratio, threshold)
        if row.mode != MODE_BY_ROUND:
            return settle.by_epochs(now, row.n_base, aim, epochs_needed(gated, alpha, stats.min_wilcoxon_p), per_epoch)
        base, new, round_of = _paired(run, by_impl[row.impl], row.quantity)
        split = settle.split(round_of, stats.paired_ratios(new, base))
        if split is None:
            return None
        return settle.by_rounds(split, split, now, aim, max(2, row.n_base), per_round, per_epoch)

    return settle.note(rows, threshold, design)


def ab_rows(run: Run, pairs: list, threshold: float, alpha: float, seed: int = stats.SEED) -> AbResult:
    """Every quantity of every pair, with Benjamini–Hochberg over the gated rows, then the verdicts.

    A pair whose two sides have no measured (round, epoch) in common is a
    :class:`UsageError` naming it.
    """
    rows, gated = [], []
    rounds = by_round(run)
    for pair in pairs:
        if not len(_paired(run, pair, "epoch")[0]):
            raise UsageError(f"{run.folder}: {pair.base} and {pair.new} have no measured epoch in common")
        for quantity in QUANTITIES:
            rows.append(paired_row(run, pair, quantity, seed, rounds))
            gated.append(_share(run, pair, quantity) >= NEGLIGIBLE_SHARE)
    adjusted = iter(stats.adjust_p_values([r.p_value for r, g in zip(rows, gated, strict=True) if g]))
    rows = [
        _decide(replace(r, p_adjusted=next(adjusted)), threshold, alpha)
        if g
        else replace(r, verdict="no change", note=f"under {NEGLIGIBLE_SHARE:.0%} of the epoch on both sides; not gated")
        for r, g in zip(rows, gated, strict=True)
    ]
    unit = "the rounds, each in fresh worker processes" if rounds else "the epochs of one process per side"
    advice = settle_note(run, pairs, rows, threshold, alpha)
    notes = [w for w in ("" if rounds else power_note(rows, alpha), advice) if w] + [f"the samples are {unit}"]
    return AbResult(rows, notes, threshold, alpha, seed, advice)


def write_ab(folder: Path, result: AbResult) -> Path:
    """Write ``ab.json`` (every row, the notes and the rules' parameters) into the run folder, atomically."""
    path = Path(folder) / FILE
    write_json(path, result.to_dict())
    return path
