"""``perfsuite compare BASE_DIR NEW_DIR``: did anything get slower between two runs?

For every implementation measured in both runs, and for the epoch and each
phase, it compares the raw samples of the two runs:

* the epoch, each phase and ``other`` as per-epoch seconds (``epochs.csv``,
  measured epochs). Epochs are the independent samples: the steps of one
  epoch share whatever the machine was doing at the time (a burst of load
  slows many consecutive steps), so treating steps as independent samples
  makes a transient slow stretch look like a significant regression.

Each row has both medians, the ratio ``new / base`` with a seeded two-sample
bootstrap 95% interval, the two-sided Mann–Whitney U p-value and a verdict:
``slower`` (or ``faster``) when the change is significant (p < alpha and the
interval excludes 1) *and* larger than the threshold; otherwise ``no change``,
with a note saying why (within threshold, too few samples to ever reach
alpha, or a phase too small to matter: under 1% of the epoch in both runs).

Exit status: 1 when any row is ``slower`` (CI gating), 0 otherwise, 2 when an
input is unusable (not a run folder, a truncated file, a newer schema, no
implementation in common). Differences of machine, software, workload or
dataset between the runs are printed as warnings on stderr.
"""

import math
import re
from dataclasses import dataclass

from perfsuite.analysis import stats
from perfsuite.core.errors import UsageError
from perfsuite.core.interface import OTHER, PHASES
from perfsuite.results.reader import Run

DEFAULT_THRESHOLD = 0.05
DEFAULT_ALPHA = 0.05
RESAMPLES = 1999
NEGLIGIBLE_SHARE = 0.01
QUANTITIES = ("epoch",) + PHASES + (OTHER,)
MACHINE_KEYS = ("cpu_model", "logical_cpus", "usable_cpus", "machine", "platform")
SOFTWARE_KEYS = ("python", "torch", "torchvision", "numpy", "mkl", "mkldnn", "openmp", "cpu_capability", "perfsuite")


@dataclass
class Row:
    """The comparison of one quantity of one implementation between two runs."""

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


def _samples(run: Run, impl: str, quantity: str):
    """``(unit, samples)`` of one quantity: its seconds in each measured epoch."""
    column = "wall_seconds" if quantity == "epoch" else f"{quantity}_seconds"
    return "epoch", run.measured(impl)[column].to_numpy()


def _share(run: Run, impl: str, quantity: str) -> float:
    rows = run.measured(impl)
    if quantity == "epoch":
        return 1.0
    epoch = stats.median(rows["wall_seconds"])
    return stats.median(rows[f"{quantity}_seconds"]) / epoch if epoch > 0 else math.nan


def verdict(ratio: float, low: float, high: float, p: float, threshold: float, alpha: float) -> tuple:
    """``(verdict, note)`` of one comparison from its ratio, interval and p-value."""
    if not math.isfinite(ratio):
        return "no change", "no ratio (empty or zero sample)"
    significant = math.isfinite(p) and p < alpha and math.isfinite(low) and (low > 1 or high < 1)
    if not significant:
        return "no change", ""
    if ratio > 1 + threshold:
        return "slower", ""
    if ratio < 1 - threshold:
        return "faster", ""
    return "no change", f"significant but within ±{threshold:.0%}"


def compare_quantity(
    base: Run, new: Run, impl: str, quantity: str, threshold: float, alpha: float, seed: int = stats.SEED
) -> Row:
    """Compare one quantity of one implementation between two runs."""
    unit, a = _samples(base, impl, quantity)
    _, b = _samples(new, impl, quantity)
    ratio, low, high = stats.ratio_of_medians(a, b, seed, n_resamples=RESAMPLES)
    p = stats.mann_whitney(a, b)
    word, note = verdict(ratio, low, high, p, threshold, alpha)
    best = stats.min_p_value(len(a), len(b))
    if word == "no change" and not note and best >= alpha:
        note = f"too few samples for significance ({len(a)} vs {len(b)}: best p {best:.2g})"
    if word != "no change" and max(_share(base, impl, quantity), _share(new, impl, quantity)) < NEGLIGIBLE_SHARE:
        word, note = "no change", f"{word} but negligible (<{NEGLIGIBLE_SHARE:.0%} of the epoch)"
    return Row(impl, quantity, unit, len(a), len(b), stats.median(a), stats.median(b), ratio, low, high, p, word, note)


def metadata_warnings(base: Run, new: Run) -> list:
    """Human-readable differences of machine, software, workload and dataset between two runs."""
    found = []
    sections = (("machine", MACHINE_KEYS), ("software", SOFTWARE_KEYS), ("workload", None), ("dataset", ("label",)))
    for section, keys in sections:
        a, b = base.meta.get(section) or {}, new.meta.get(section) or {}
        for key in keys or sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                found.append(f"{section} differs: {key} {a.get(key)!r} → {b.get(key)!r}")
    a, b = base.meta.get("software", {}).get("commit"), new.meta.get("software", {}).get("commit")
    if a != b:
        found.append(f"note: perfsuite commit {str(a)[:10]} → {str(b)[:10]}")
    return found


def compare_runs(
    base: Run, new: Run, threshold: float = DEFAULT_THRESHOLD, alpha: float = DEFAULT_ALPHA, seed: int = stats.SEED
) -> tuple:
    """``(rows, notes)``: every quantity of every implementation measured in both runs."""
    common = [n for n in base.measured_impls if n in new.measured_impls]
    if not common:
        raise UsageError(f"no implementation has measured epochs in both {base.folder} and {new.folder}")
    notes = [
        f"{n}: measured only in {r.folder}"
        for r, other in ((base, new), (new, base))
        for n in r.measured_impls
        if n not in other.measured_impls
    ]
    rows = [compare_quantity(base, new, impl, q, threshold, alpha, seed) for impl in common for q in QUANTITIES]
    return rows, notes
