"""``perfsuite compare BASE_DIR NEW_DIR``: did anything get slower between two runs?

Raw seconds measured in two runs a minute apart differ by as much as the
machine drifted in between; ratios of implementations measured side by side
inside one interleaved run do not. So by default the comparison is
**calibrated**: each run is reduced to within-run ratios first, and the
ratios are compared between the runs.

* ``epoch`` and ``other``: per (round, epoch) pair, the implementation's
  seconds divided by the reference implementation's (default ``store``)
  epoch wall time of the same round and epoch (the two ran back to back, so
  the machine's speed at the time cancels);
* each phase: divided by the reference's *same phase* of that round and
  epoch, so a contention that slows one kind of work (the update's memory
  traffic, say) cancels too. A phase is not taken as a share of its own
  epoch: then a phase that got faster would raise every other phase's share
  and fail the gate.
* the reference itself is not gated (its ratio to itself is 1); its row
  reports its raw drift between the runs.

``raw=True`` (``--raw``) compares raw per-epoch seconds instead, which are
exposed to machine drift. Either way epochs are the samples: the steps of one
epoch share whatever the machine was doing at the time.

Each row has both medians, the ratio ``new / base`` of the medians with a
seeded two-sample bootstrap 95% interval, the two-sided Mann–Whitney U p-value
and the p-value adjusted for every gated row of the comparison
(Benjamini–Hochberg, :func:`perfsuite.analysis.stats.adjust_p_values`). The
threshold is an equivalence margin ``[1/(1+t), 1+t]`` on the ratio, and the
verdict is one of :data:`VERDICTS` (rules in :func:`verdict`):

* ``slower``: the whole interval is above ``1+t`` and the adjusted p < alpha;
* ``faster``: the whole interval is below ``1/(1+t)`` and the adjusted p < alpha;
* ``no change``: the whole interval lies inside the margin;
* ``inconclusive``: the interval straddles an edge of the margin, or lies
  beyond it without the adjusted p reaching alpha: more epochs are needed.

A phase under 5% of the epoch in both runs (:data:`NEGLIGIBLE_SHARE`) never
fails the gate: changed by the 5% margin it would move the epoch by under
0.25%, below what epochs of these machines resolve, and its run-to-run
swings (a different process, a different memory layout) are the largest.

Exit status: 1 when any row is ``slower`` (CI gating), 0 otherwise
(``inconclusive`` rows are listed, they do not fail), 2 when an input is
unusable (not a run folder, a truncated file, a newer schema, no
implementation in common, the reference missing from a run). Differences of
machine, software, workload or dataset, and a machine that drifted between
the runs (:func:`drift_note`), are printed as warnings on stderr.
"""

import math
import re
from dataclasses import dataclass, replace

import numpy as np

from perfsuite.analysis import settle, stats
from perfsuite.analysis.noise import round_cost
from perfsuite.core.errors import UsageError
from perfsuite.core.interface import OTHER, PHASES
from perfsuite.core.workload import DEFAULT_WORKLOAD
from perfsuite.results.reader import PAIR_KEYS, Run

DEFAULT_THRESHOLD = 0.05
DEFAULT_ALPHA = 0.05
DEFAULT_REFERENCE = "store"
RESAMPLES = 1999
NEGLIGIBLE_SHARE = 0.05
"""A phase under this share of its epoch in both runs is shown but not gated."""
PEAK_DRIFT = 0.05
"""Relative difference of the two runs' matmul peaks above which the drift line names them."""
QUANTITIES = ("epoch",) + PHASES + (OTHER,)
CALIBRATED, RAW = "calibrated", "raw"
BY_ROUND = " by round"
"""Suffix of a row's mode when its samples are rounds of fresh worker processes (:func:`by_round`)."""
VERDICTS = ("slower", "faster", "no change", "inconclusive")
REFERENCE_VERDICT = "reference"
"""The verdict word of the reference's raw-drift row in calibrated mode (never gated)."""
MACHINE_KEYS = ("cpu_model", "logical_cpus", "usable_cpus", "machine", "platform")
SOFTWARE_KEYS = ("python", "torch", "torchvision", "numpy", "mkl", "mkldnn", "openmp", "cpu_capability", "perfsuite")


@dataclass
class Row:
    """The comparison of one quantity of one implementation between two runs.

    ``unit`` says what the medians are: ``s`` (raw seconds per epoch) or
    ``×REF`` (a phase's seconds over the reference's same phase, the epoch's
    and ``other``'s over the reference's epoch wall time, of the same round and
    epoch). ``p_adjusted`` is the Benjamini–Hochberg
    adjusted p-value (NaN for a row that is not gated); ``mode`` is
    ``calibrated`` or ``raw``.
    """

    impl: str
    quantity: str
    unit: str
    n_base: int
    n_new: int
    base_median: float
    new_median: float
    ratio: float
    low: float
    high: float
    p_value: float
    verdict: str
    note: str = ""
    p_adjusted: float = math.nan
    mode: str = RAW


@dataclass(frozen=True)
class _Samples:
    """One quantity of one implementation in both runs, as compared."""

    impl: str
    quantity: str
    unit: str
    mode: str
    base: np.ndarray
    new: np.ndarray
    share: float
    """The larger of the quantity's median shares of its own epoch in the two runs (1 for the epoch)."""
    rounds: bool = False
    """Whether the samples are rounds of fresh worker processes (:func:`by_round`), not epochs."""


def parse_threshold(text: str) -> float:
    """``"5%"`` or ``"0.05"`` as the fraction 0.05; anything else is a usage error."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(%?)\s*", str(text))
    if not match:
        raise UsageError(f"--threshold {text}: write a percentage such as 5% (or the fraction 0.05)")
    value = float(match.group(1)) / (100.0 if match.group(2) else 1.0)
    if not match.group(2) and value >= 1:
        raise UsageError(f"--threshold {text}: ambiguous; write {text}% for a percentage")
    if not 0 <= value < 1:
        raise UsageError(f"--threshold {text}: must be between 0% and 100%")
    return value


def margin(threshold: float) -> tuple:
    """The equivalence margin ``(1/(1+t), 1+t)`` of ratios new/base: symmetric on a log scale."""
    return 1.0 / (1.0 + threshold), 1.0 + threshold


def rules(threshold: float, alpha: float) -> list:
    """The verdict words and the exit status, one sentence each (terminal table, HTML page)."""
    low, high = margin(threshold)
    return [
        f"slower: the whole 95% interval of new/base is above {high:.3f} and the adjusted p < {alpha:g} "
        "(fails the gate: exit 1)",
        f"faster: the whole interval is below {low:.3f} and the adjusted p < {alpha:g}",
        f"no change: the whole interval lies inside [{low:.3f}, {high:.3f}]",
        "inconclusive: the interval straddles an edge of that margin, or the adjusted p is not below "
        f"{alpha:g}: needs more epochs; listed, does not fail the gate",
        "exit status 1 only when a row is slower, 0 otherwise, 2 for unusable input",
    ]


def column(quantity: str) -> str:
    """The ``epochs.csv`` column of ``epoch``, a phase or ``other``."""
    return "wall_seconds" if quantity == "epoch" else f"{quantity}_seconds"


def by_round(run: Run) -> bool:
    """Whether the round is the unit: every round ran in fresh worker processes and there are two or more.

    Epochs in one process share what that process got (memory layout,
    thread placement), so with fresh workers per round (``--fresh-workers``)
    a round's median is the independent sample.
    """
    return bool(run.meta.get("fresh_workers")) and run.epochs["round"].nunique() >= 2


def per_round(rounds, values) -> np.ndarray:
    """The median of ``values`` in each round (``rounds`` gives each value's round), in round order."""
    rounds, values = np.asarray(rounds), np.asarray(values, dtype=float)
    return np.asarray([np.median(values[rounds == r]) for r in np.unique(rounds)], dtype=float)


def epoch_values(run: Run, impl: str, quantity: str, reference: str | None = None) -> tuple:
    """``(rounds, values)`` of one quantity of ``impl``, one per measured epoch, with each epoch's round.

    Raw seconds; with ``reference``, the within-run ratios to the reference's
    :func:`calibrator` of the same (round, epoch) (epochs where it is positive).
    """
    name = column(quantity)
    if reference is None:
        frame = run.measured(impl)
        return frame["round"].to_numpy(), frame[name].to_numpy(dtype=float)
    by = column(calibrator(quantity))
    ref = run.measured(reference)[[*PAIR_KEYS, by]].rename(columns={by: "reference"})
    paired = run.measured(impl)[[*PAIR_KEYS, name]].merge(ref, on=PAIR_KEYS)
    paired = paired[paired["reference"] > 0]
    return paired["round"].to_numpy(), (paired[name] / paired["reference"]).to_numpy(dtype=float)


def _raw(run: Run, impl: str, quantity: str, rounds: bool = False) -> np.ndarray:
    """Seconds of one quantity in each measured epoch (with ``rounds``, each round's median)."""
    round_of, values = epoch_values(run, impl, quantity)
    return per_round(round_of, values) if rounds else values


def calibrator(quantity: str) -> str:
    """The reference's quantity a calibrated row divides by: the same phase for a phase, else the epoch."""
    return quantity if quantity in PHASES else "epoch"


def _calibrated(run: Run, impl: str, quantity: str, reference: str, rounds: bool = False) -> np.ndarray:
    """Within-run ratios to ``reference``, one per measured epoch (with ``rounds``, each round's median)."""
    round_of, ratios = epoch_values(run, impl, quantity, reference)
    return per_round(round_of, ratios) if rounds else ratios


def epoch_share(run: Run, impl: str, quantity: str) -> float:
    """The median seconds of ``quantity`` over the median epoch of ``impl`` in ``run`` (1 for the epoch)."""
    if quantity == "epoch":
        return 1.0
    epoch = stats.median(_raw(run, impl, "epoch"))
    return stats.median(_raw(run, impl, quantity)) / epoch if epoch > 0 else math.nan


def _samples(base: Run, new: Run, impl: str, quantity: str, reference: str, raw: bool) -> _Samples:
    """The samples of one row: raw seconds, or within-run ratios to ``reference``'s epoch (calibrated)."""
    share = max(epoch_share(base, impl, quantity), epoch_share(new, impl, quantity))
    rounds = by_round(base) and by_round(new)
    if raw or impl == reference:
        a, b = _raw(base, impl, quantity, rounds), _raw(new, impl, quantity, rounds)
        return _Samples(impl, quantity, "s", RAW, a, b, share, rounds)
    a, b = _calibrated(base, impl, quantity, reference, rounds), _calibrated(new, impl, quantity, reference, rounds)
    return _Samples(impl, quantity, f"×{reference}", CALIBRATED, a, b, share, rounds)


def verdict(ratio: float, low: float, high: float, p: float, threshold: float, alpha: float) -> tuple:
    """``(verdict, note)`` of one comparison from its ratio, interval and adjusted p-value.

    ``slower`` / ``faster`` need the whole interval beyond the margin
    (:func:`margin`) *and* ``p < alpha``; ``no change`` needs the whole
    interval inside it; anything else is ``inconclusive``.
    """
    if not (math.isfinite(ratio) and math.isfinite(low) and math.isfinite(high)):
        return "inconclusive", "no interval (under 2 epochs in a run, or a zero median): more epochs needed"
    edge_low, edge_high = margin(threshold)
    if edge_low <= low and high <= edge_high:
        significant = math.isfinite(p) and p < alpha
        return "no change", ("significant, but inside the margin" if significant else "")
    beyond = "slower" if low > edge_high else "faster" if high < edge_low else ""
    if not beyond:
        return "inconclusive", "the interval straddles an edge of the margin: more epochs needed"
    if math.isfinite(p) and p < alpha:
        return beyond, ""
    return "inconclusive", f"{beyond} beyond the margin, but adjusted p {p:.2g} ≥ {alpha:g}: more epochs needed"


def _measure(s: _Samples, seed: int) -> Row:
    """Medians, ratio with its interval and the raw p-value of one quantity (verdict decided later)."""
    ratio, low, high = stats.ratio_of_medians(s.base, s.new, seed, n_resamples=RESAMPLES)
    return Row(
        s.impl,
        s.quantity,
        s.unit,
        len(s.base),
        len(s.new),
        stats.median(s.base),
        stats.median(s.new),
        ratio,
        low,
        high,
        stats.mann_whitney(s.base, s.new),
        verdict="",
        mode=s.mode + (BY_ROUND if s.rounds else ""),
    )


def decide(row: Row, threshold: float, alpha: float, best: float, samples: str) -> Row:
    """``row`` with its verdict and note, from its adjusted p-value.

    Beyond the margin but inconclusive, the note says the best p its
    ``samples`` (e.g. ``"5 vs 5 epochs"``) can reach with their test (``best``).
    """
    word, note = verdict(row.ratio, row.low, row.high, row.p_adjusted, threshold, alpha)
    edge_low, edge_high = margin(threshold)
    if word == "inconclusive" and (row.low > edge_high or row.high < edge_low) and math.isfinite(best):
        note += f" ({samples} reach p {best:.2g} at best)"
    return replace(row, verdict=word, note=note)


def _decide(row: Row, threshold: float, alpha: float) -> Row:
    """:func:`decide` for two runs' epochs or rounds (Mann–Whitney)."""
    best = stats.min_p_value(row.n_base, row.n_new)
    unit = "rounds" if row.mode.endswith(BY_ROUND) else "epochs"
    return decide(row, threshold, alpha, best, f"{row.n_base} vs {row.n_new} {unit}")


def _ungated(row: Row, reference: bool) -> Row:
    """A row that cannot fail the gate: the reference's raw drift (calibrated mode) or a negligible phase."""
    if reference:
        return replace(row, verdict=REFERENCE_VERDICT, note="raw drift of the reference; not gated")
    return replace(row, verdict="no change", note=f"under {NEGLIGIBLE_SHARE:.0%} of the epoch in both runs; not gated")


def compare_quantity(
    base: Run,
    new: Run,
    impl: str,
    quantity: str,
    threshold: float,
    alpha: float,
    seed: int = stats.SEED,
    *,
    reference: str = DEFAULT_REFERENCE,
    raw: bool = False,
) -> Row:
    """Compare one quantity of one implementation between two runs, on its own (its p is not adjusted)."""
    s = _samples(base, new, impl, quantity, reference, raw)
    row = _measure(s, seed)
    if s.share < NEGLIGIBLE_SHARE:
        return _ungated(row, reference=False)
    return _decide(replace(row, p_adjusted=row.p_value), threshold, alpha)


def metadata_warnings(base: Run, new: Run) -> list:
    """Human-readable differences of machine, software, workload and dataset between two runs."""
    found = []
    sections = (("machine", MACHINE_KEYS), ("software", SOFTWARE_KEYS), ("workload", None), ("dataset", ("label",)))
    for section, keys in sections:
        a, b = base.meta.get(section) or {}, new.meta.get(section) or {}
        if section == "workload":  # runs made before workloads had names trained the MLP
            a, b = ({"name": DEFAULT_WORKLOAD, **a}, {"name": DEFAULT_WORKLOAD, **b})
        for key in keys or sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                found.append(f"{section} differs: {key} {a.get(key)!r} → {b.get(key)!r}")
    a, b = base.meta.get("software", {}).get("commit"), new.meta.get("software", {}).get("commit")
    if a != b:
        found.append(f"note: perfsuite commit {str(a)[:10]} → {str(b)[:10]}")
    return found


def _require_reference(base: Run, new: Run, reference: str) -> None:
    """A one-line usage error when ``reference`` has no measured epochs in a run."""
    missing = [str(r.folder) for r in (base, new) if reference not in r.measured_impls]
    if missing:
        raise UsageError(
            f"{' and '.join(missing)}: no measured epochs of the reference implementation {reference!r}; "
            "choose one measured in both runs with --reference NAME, or compare raw seconds with --raw"
        )


def _peak(run: Run):
    """The run's measured matmul peak in GFLOP/s, or None when it has none."""
    value = (run.meta.get("roofline") or {}).get("peak_gflops")
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) and value > 0 else None


def _outside(value: float, estimate: stats.Estimate) -> bool:
    return estimate.has_interval and not estimate.ci_low <= value <= estimate.ci_high


def drift_note(base: Run, new: Run, reference: str, raw: bool = False, seed: int = stats.SEED) -> str:
    """One sentence when the machine drifted between the runs, else ``""``.

    Drift is the reference's median epoch (raw seconds) lying outside the
    other run's 95% interval of it, or the runs' matmul peaks
    (``meta["roofline"]["peak_gflops"]``) differing by more than :data:`PEAK_DRIFT`.
    """
    parts = []
    if reference in base.measured_impls and reference in new.measured_impls:
        a = stats.describe(_raw(base, reference, "epoch"), seed, n_resamples=RESAMPLES)
        b = stats.describe(_raw(new, reference, "epoch"), seed, n_resamples=RESAMPLES)
        if a.median > 0 and (_outside(a.median, b) or _outside(b.median, a)):
            parts.append(f"{reference}'s median epoch moved ×{b.median / a.median:.2f} (outside its 95% interval)")
    peaks = _peak(base), _peak(new)
    if None not in peaks and max(peaks) / min(peaks) > 1 + PEAK_DRIFT:
        parts.append(f"the matmul peak {peaks[0]:.0f} → {peaks[1]:.0f} GFLOP/s")
    if not parts:
        return ""
    used = "raw seconds are compared, so the rows include it" if raw else "calibrated ratios are used"
    return f"the machine drifted between the runs: {' and '.join(parts)}; {used}"


def raw_note(reference: str) -> str:
    """The one line ``--raw`` prints: raw seconds across runs measure the machine as well as the code."""
    return (
        "raw seconds across runs are exposed to machine drift: a slower or faster machine moves every row alike "
        f"(without --raw, ratios to {reference} within each run are compared)"
    )


def epochs_needed(tests: int, alpha: float, best_p=None, limit: int = 100) -> int:
    """The fewest epochs per run (or pairs) for one row alone among ``tests`` gated rows to reach adjusted p < alpha.

    ``best_p(n)`` is the smallest p the test can give with ``n`` samples
    (default: Mann–Whitney with ``n`` epochs in each run).
    """
    best_p = best_p or (lambda n: stats.min_p_value(n, n))
    return next((n for n in range(2, limit) if best_p(n) * tests < alpha), limit)


def power_note(rows: list, alpha: float) -> str:
    """A warning when too few epochs were measured for a lone slowdown to pass the correction, else ``""``."""
    gated = [r for r in rows if math.isfinite(r.p_adjusted)]
    if not gated:
        return ""
    n_base, n_new = min(r.n_base for r in gated), min(r.n_new for r in gated)
    if stats.min_p_value(n_base, n_new) * len(gated) < alpha:
        return ""
    return (
        f"with {n_base} vs {n_new} epochs and {len(gated)} gated rows, a slowdown of one row alone cannot reach "
        f"adjusted p < {alpha:g} (it shows as inconclusive); measure {epochs_needed(len(gated), alpha)} or more "
        "epochs per run"
    )


def run_costs(run: Run) -> tuple:
    """``(round, epoch)``: what one more round and one more pass of every implementation cost ``run``, in seconds.

    A pass is every implementation's median epoch and the median calibration
    probe. A round is what the run took beyond its measured passes, per round,
    from ``meta.json``'s ``measuring_seconds`` (workers' start, set-up,
    warm-up, the parent's bookkeeping); a run without it counts each
    implementation's recorded start, set-up and warm-up instead.
    """
    names = run.measured_impls
    probes = run.calibration["probe_seconds"]
    epoch = sum(stats.median(_raw(run, n, "epoch")) for n in names) + (stats.median(probes) if len(probes) else 0.0)
    elapsed = run.meta.get("measuring_seconds")
    rounds = run.epochs["round"].nunique()
    if isinstance(elapsed, (int, float)) and elapsed > 0 and rounds:
        passes = max(len(run.measured(n)) for n in names) / rounds
        return max(elapsed / rounds - passes * epoch, 0.0), epoch
    return sum(round_cost(run, n) for n in names), epoch


def _design(base: Run, new: Run, row: Row, threshold: float, need: int, reference: str | None, costs: tuple):
    """The :class:`settle.Design` that would settle ``row``, or ``None`` when none is affordable.

    ``costs`` is ``(round, epoch)`` seconds (:func:`run_costs`).
    """
    now, aim = settle.log_half_width(row.low, row.high), settle.goal(row.ratio, threshold)
    per_round, per_epoch = costs
    if not row.mode.endswith(BY_ROUND):
        return settle.by_epochs(now, round(math.sqrt(row.n_base * row.n_new)), aim, need, per_epoch)
    splits = [settle.split(*epoch_values(run, row.impl, row.quantity, reference)) for run in (base, new)]
    if None in splits:
        return None
    fewest = max(need, min(row.n_base, row.n_new))
    return settle.by_rounds(*splits, now, aim, fewest, per_round, per_epoch)


def settle_note(base: Run, new: Run, rows: list, threshold: float, alpha: float, reference: str | None) -> str:
    """What would settle the ``inconclusive`` rows (:func:`perfsuite.analysis.settle.note`), else ``""``."""
    if not any(r.verdict == "inconclusive" for r in rows):
        return ""
    need = epochs_needed(sum(math.isfinite(r.p_adjusted) for r in rows), alpha)
    costs = run_costs(base)

    def design(row: Row):
        return _design(base, new, row, threshold, need, None if row.impl == reference else reference, costs)

    return settle.note(rows, threshold, design, " in each run")


def compare_runs(
    base: Run,
    new: Run,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
    seed: int = stats.SEED,
    *,
    reference: str = DEFAULT_REFERENCE,
    raw: bool = False,
) -> tuple:
    """``(rows, notes)``: every quantity of every implementation measured in both runs.

    Calibrated (default): within-run ratios to ``reference``, which must be
    measured in both runs; the reference gets one ungated row of its raw
    epoch drift. ``raw``: raw seconds. The p-values of the rows that can
    fail the gate (all but the reference's and phases under 5% of the epoch
    in both runs) are adjusted together (Benjamini–Hochberg) before the verdicts. ``notes``
    are warnings: implementations measured in one run only, the drift line
    (:func:`drift_note`), with ``raw`` :func:`raw_note`, :func:`power_note`, and what would settle the
    inconclusive rows (:func:`settle_note`).
    """
    common = [n for n in base.measured_impls if n in new.measured_impls]
    if not common:
        raise UsageError(f"no implementation has measured epochs in both {base.folder} and {new.folder}")
    if not raw:
        _require_reference(base, new, reference)
    notes = [
        f"{n}: measured only in {r.folder}"
        for r, other in ((base, new), (new, base))
        for n in r.measured_impls
        if n not in other.measured_impls
    ]
    samples = [
        _samples(base, new, impl, q, reference, raw)
        for impl in common
        for q in QUANTITIES
        if raw or impl != reference or q == "epoch"
    ]
    rows = [_measure(s, seed) for s in samples]
    refs = [not raw and s.impl == reference for s in samples]
    gated = [not (ref or s.share < NEGLIGIBLE_SHARE) for s, ref in zip(samples, refs, strict=True)]
    adjusted = iter(stats.adjust_p_values([r.p_value for r, g in zip(rows, gated, strict=True) if g]))
    rows = [
        _decide(replace(r, p_adjusted=next(adjusted)), threshold, alpha) if g else _ungated(r, ref)
        for r, g, ref in zip(rows, gated, refs, strict=True)
    ]
    settling = settle_note(base, new, rows, threshold, alpha, None if raw else reference)
    extra = (
        drift_note(base, new, reference, raw, seed),
        raw and raw_note(reference),
        power_note(rows, alpha),
        settling,
    )
    notes += [n for n in extra if n]
    return rows, notes
