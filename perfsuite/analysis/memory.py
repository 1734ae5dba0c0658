"""Memory by phase: the figures of ``perfsuite memory``, computed from its ``memory/`` tables.

Per implementation (from :data:`~perfsuite.results.schema.MEMORY_PHASES`, the
profiled epochs, and :data:`~perfsuite.results.schema.MEMORY_EPOCHS`):

* per phase: tensor allocations and bytes allocated per step (median over
  the profiled epochs of the epoch's total over its steps), bytes freed per
  step, and the peak live bytes within the phase (the largest over the
  epochs, and the median over the phase's ranges);
* per epoch: the live tensor bytes' high-water above the epoch's start, the
  resident-set high-water of the plain epochs, and the overhead of memory
  mode (the median over pairs of a profiled epoch over the plain epoch run
  just before it, minus one, with its bootstrap interval; same worker);
* memray's cross-check: the high-water of its live ``posix_memalign`` blocks
  (tensor storage) against torch's live tensor peak (the difference in
  percent, within :data:`AGREEMENT` or the reason), its whole-heap peak
  beside them, and its ``posix_memalign`` allocations per step and phase
  beside torch's allocations.
"""

from dataclasses import asdict, dataclass, field

import pandas as pd

from perfsuite.analysis.stats import describe, median
from perfsuite.core.interface import OTHER, PHASES
from perfsuite.results.reader import Run
from perfsuite.results.schema import MEMORY_EPOCHS, MEMORY_PHASES, MEMRAY_PHASES

ALL = PHASES + (OTHER,)
AGREEMENT = 0.05
"""Relative difference of memray's and torch's peaks accepted as agreement."""


@dataclass
class ImplMemory:
    """One implementation's memory figures (see the module docstring); byte counts are bytes."""

    ranged: bool
    note: str
    profiled_epochs: int
    steps: int
    phases: dict
    live_peak_bytes: float
    rss_peak_bytes: float | None
    rss_reset: bool
    plain_epoch_median_s: float | None
    profiled_epoch_median_s: float
    overhead_pct: dict | None
    memray: dict = field(default_factory=dict)

    @property
    def allocations_per_step(self) -> float:
        """Tensor allocations per step over every phase and ``other``."""
        return sum(p["allocations_per_step"] for p in self.phases.values())


@dataclass
class MemoryResult:
    """Every implementation's figures and the run's notes."""

    impls: dict
    notes: list

    def to_dict(self) -> dict:
        """The ``"memory"`` object of ``summary.json``."""
        return {"impls": {name: asdict(m) for name, m in self.impls.items()}, "notes": self.notes}


def _per_step(rows: pd.DataFrame, column: str) -> float:
    return median((rows[column] / rows["steps"].clip(lower=1)).tolist())


def phase_figures(rows: pd.DataFrame) -> dict:
    """Per-phase figures of one implementation's ``memory/phases.csv`` rows."""
    found = {}
    for phase in ALL:
        part = rows[rows["phase"] == phase]
        if part.empty:
            continue
        found[phase] = {
            "allocations_per_step": _per_step(part, "allocations"),
            "allocated_bytes_per_step": _per_step(part, "allocated_bytes"),
            "freed_bytes_per_step": _per_step(part, "freed_bytes"),
            "peak_bytes": float(part["peak_bytes"].max()),
            "peak_bytes_median": median(part["peak_bytes_median"].tolist()),
        }
    return found


def memray_check(epochs: pd.DataFrame, memray_rows: pd.DataFrame, torch_peak: float, phases: dict) -> dict:
    """memray's peak against torch's, with the reason when they differ by more than :data:`AGREEMENT`."""
    row = epochs[epochs["mode"] == "memray"]
    if row.empty:
        return {}
    row = row.iloc[0]
    steps = max(int(row["steps"]), 1)
    heap, tensors = float(row["live_peak_bytes"]), float(row["tensor_peak_bytes"])
    difference = tensors / torch_peak - 1.0 if torch_peak > 0 else None
    agree = difference is not None and abs(difference) <= AGREEMENT
    reason = ""
    if not agree:
        reason = (
            "its posix_memalign blocks include allocations torch's allocator does not make (MKL or oneDNN "
            "work space, the C library's own) or miss tensors torch makes from other memory"
            if difference is not None
            else "torch saw no live tensor bytes to compare with"
        )
    per_phase = {}
    for phase in ALL:
        part = memray_rows[memray_rows["phase"] == phase]
        if not part.empty:
            per_phase[phase] = {
                "allocations_per_step": float(part["allocations"].iloc[0]) / steps,
                "tensor_allocations_per_step": float(part["tensor_allocations"].iloc[0]) / steps,
                "torch_allocations_per_step": phases.get(phase, {}).get("allocations_per_step"),
            }
    return {
        "heap_peak_bytes": heap,
        "tensor_peak_bytes": tensors,
        "torch_live_peak_bytes": torch_peak,
        "difference_pct": None if difference is None else 100.0 * difference,
        "agrees": agree,
        "reason": reason,
        "allocations": float(row["allocations"]),
        "phases": per_phase,
    }


def _median_wall(rows: pd.DataFrame) -> float | None:
    return median(rows["wall_seconds"].tolist()) if not rows.empty else None


def overhead(epochs: pd.DataFrame) -> dict | None:
    """Memory mode's cost on the epoch, in percent: over the pairs (a profiled epoch over the plain epoch just
    before it), the median, its 95% bootstrap interval and the number of pairs (None without a pair)."""
    keys = zip(epochs["mode"], epochs["epoch"], strict=True)
    walls = dict(zip(keys, epochs["wall_seconds"], strict=True))
    ratios = [
        wall / walls[("plain", epoch - 1)]
        for (mode, epoch), wall in walls.items()
        if mode == "profiled" and walls.get(("plain", epoch - 1), 0) > 0
    ]
    if not ratios:
        return None
    found = describe(ratios)
    pct = {"median": found.median, "ci_low": found.ci_low, "ci_high": found.ci_high}
    return {key: 100.0 * (value - 1.0) for key, value in pct.items()} | {"pairs": found.n}


def impl_memory(run: Run, name: str) -> ImplMemory | None:
    """The memory figures of ``name`` (None when it has no profiled epoch)."""
    phases = run.memory(MEMORY_PHASES)
    epochs = run.memory(MEMORY_EPOCHS)
    rows = phases[phases["impl"] == name]
    mine = epochs[epochs["impl"] == name]
    profiled, plain = mine[mine["mode"] == "profiled"], mine[mine["mode"] == "plain"]
    if rows.empty or profiled.empty:
        return None
    notes = run.status(name).get("memory") or {}
    figures = phase_figures(rows)
    live_peak = median(profiled["live_peak_bytes"].tolist())
    plain_s, profiled_s = _median_wall(plain), _median_wall(profiled)
    memray_rows = run.memory(MEMRAY_PHASES)
    check = memray_check(mine, memray_rows[memray_rows["impl"] == name], live_peak, figures)
    if not check and notes.get("memray_note"):
        check = {"note": notes["memray_note"]}
    return ImplMemory(
        ranged=bool(notes.get("ranged", True)),
        note=notes.get("note", ""),
        profiled_epochs=len(profiled),
        steps=int(profiled["steps"].iloc[0]),
        phases=figures,
        live_peak_bytes=live_peak,
        rss_peak_bytes=median(plain["rss_peak_bytes"].tolist()) if not plain.empty else None,
        rss_reset=bool(not plain.empty and plain["rss_reset"].min() == 1),
        plain_epoch_median_s=plain_s,
        profiled_epoch_median_s=profiled_s,
        overhead_pct=overhead(mine),
        memray=check,
    )


def memory_by_phase(run: Run) -> MemoryResult | None:
    """The memory figures of every implementation of a ``perfsuite memory`` run (None for other runs)."""
    if run.memory(MEMORY_PHASES).empty:
        return None
    found, notes = {}, []
    for name in run.impls:
        figures = impl_memory(run, name)
        if figures is None:
            continue
        found[name] = figures
        if figures.note:
            notes.append(f"{name}: {figures.note}")
        if figures.allocations_per_step == 0:
            notes.append(f"{name}: its epochs allocate no tensor memory that torch's CPU allocator sees")
        if figures.memray.get("note"):
            notes.append(f"{name}: {figures.memray['note']}")
        if not figures.rss_reset and figures.rss_peak_bytes is not None:
            notes.append(
                f"{name}: the RSS peak could not be reset per epoch; it is the process's peak since it started"
            )
    return MemoryResult(found, notes)


GATED = (
    ("live tensor peak", lambda m: m.live_peak_bytes),
    ("tensor bytes allocated per step", lambda m: sum(p["allocated_bytes_per_step"] for p in m.phases.values())),
    ("tensor allocations per step", lambda m: m.allocations_per_step),
)
"""The memory figures ``compare`` gates on: counts of the allocator's events, which machine load does not move."""


@dataclass
class MemoryRow:
    """One gated memory figure of one implementation in two runs."""

    impl: str
    quantity: str
    base: float
    new: float
    ratio: float
    verdict: str


def memory_verdict(base: float, new: float, threshold: float) -> tuple:
    """``(ratio, verdict)``: ``larger`` or ``smaller`` beyond ``threshold``, else ``no change``."""
    if base <= 0:
        return (float("inf"), "larger") if new > 0 else (1.0, "no change")
    ratio = new / base
    if ratio > 1.0 + threshold:
        return ratio, "larger"
    if ratio < 1.0 - threshold:
        return ratio, "smaller"
    return ratio, "no change"


def compare_memory(base: MemoryResult, new: MemoryResult, threshold: float) -> list:
    """:class:`MemoryRow` of every implementation both runs measured, for each of :data:`GATED`."""
    rows = []
    for name in (n for n in new.impls if n in base.impls):
        for quantity, read in GATED:
            a, b = float(read(base.impls[name])), float(read(new.impls[name]))
            rows.append(MemoryRow(name, quantity, a, b, *memory_verdict(a, b, threshold)))
    return rows


def compare_pairs(result: MemoryResult, pairs, threshold: float) -> list:
    """:class:`MemoryRow` of each ``perfsuite ab`` pair (``pair.base`` vs ``pair.new`` in one memory run), named
    after the pair."""
    rows = []
    for pair in pairs:
        if pair.base in result.impls and pair.new in result.impls:
            base = MemoryResult({pair.impl: result.impls[pair.base]}, [])
            new = MemoryResult({pair.impl: result.impls[pair.new]}, [])
            rows.extend(compare_memory(base, new, threshold))
    return rows
