"""Optional evidence files in a run folder, found by name, for the report's extra sections.

Any tool (the sampling profiler, torch.profiler, pytest-benchmark, or your
own script) plugs into the report by writing files in these places inside the
run folder; ``perfsuite report RUN_DIR`` then shows a section for each kind
that exists (and none for a kind that does not):

``flame/<impl>.phases.svg`` and ``flame/<impl>.<phase>.svg``
    Phase flame graphs (``perfsuite flame``): the first towers above ``epoch``
    are the phases, with no process-bootstrap frames below the epoch; one
    file per phase holds only that phase's samples. The report embeds each
    ``<impl>.phases.svg`` (an interactive page: hover, click to zoom, search)
    and links the per-phase graphs under it.

``flame/diff-<A>-<B>.svg``
    Differential flame graphs: B's phase-rooted samples, each frame coloured
    by the change of its share from A (red: larger in B, blue: smaller).
    Embedded in the report.

``flame/*.svg`` (any other)
    Flame graphs (e.g. ``py-spy record --format flamegraph -o flame/store.svg``).
    Linked from the report (they are interactive pages of their own). Name
    them after the implementation: ``<impl>.svg`` or ``<impl>-<anything>.svg``.

``flame/*.speedscope.json``, ``flame/*.collapsed.txt`` and ``flame/*.folded.txt``
    Other forms of the same samples (py-spy ``--format speedscope`` and
    ``--format raw``, their phase-rooted ``<impl>.phases.*`` versions, and a
    differential graph's ``diff-<A>-<B>.folded.txt``: ``stack count_A count_B``),
    linked beside the flame graphs.

``flame/*.json`` (other than ``*.speedscope.json``)
    Sampled phase shares: ``{"impl": "store", "samples": 5123, "shares":
    {"batching": 0.08, "forward": 0.21, ...}}`` — fractions (or sample counts)
    per phase; ``impl`` defaults to the file's stem, and a bare
    ``{phase: share}`` mapping is accepted too. An optional ``"overhead"``
    object (``perfsuite flame`` writes one: ``overhead_pct``,
    ``unsampled_epoch_median_s``, ``sampled_epoch_median_s``) is shown too,
    and so are the notes of a ``"graphs"`` object (the phase flame graphs
    that were not drawn, and why).

``trace/*.json``
    Chrome trace-event files (``torch.profiler`` ``export_chrome_trace``,
    with ``record_function`` ranges named after the phases, or ``<prefix>.<phase>``
    / ``<prefix>:<phase>``). Linked; files up to 64 MB are also read and the
    durations of complete events (``"ph": "X"``) named after a phase are summed
    (names holding ``#``, such as torch's ``Optimizer.step#SGD.step``, are not phases).

``trace/*.top_ops.csv``
    Top operators by self CPU time per phase (``perfsuite trace``): columns
    ``phase, rank, operator, self_cpu_ms, calls, share_of_phase``; shown as a table.

``benchmark*.json`` and ``benchmark/*.json``
    pytest-benchmark results (``pytest --benchmark-json=FILE``): one row per
    benchmark with its median, IQR, mean, standard deviation and rounds.

Shares from every source are normalised over the five timed phases (any
``other`` share is left out), so the report can set the timers, the sampler
and the trace side by side and show where they disagree. A file that cannot
be read is listed with the reason instead of being shown.
"""

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from perfsuite.core.interface import OTHER, PHASES

TRACE_READ_LIMIT = 64 * 1024 * 1024


@dataclass
class Artifact:
    """One discovered file: its path relative to the run folder, and what was read from it."""

    path: str
    size: int
    impl: str | None = None
    shares: dict | None = None
    rows: list = field(default_factory=list)
    error: str = ""
    overhead: dict | None = None
    label: str = ""
    notes: list = field(default_factory=list)


def _impl_of(stem: str, impls) -> str | None:
    for name in sorted(impls, key=len, reverse=True):
        if stem == name or re.match(rf"{re.escape(name)}[-_.]", stem):
            return name
    return None


def normalise(shares: dict) -> dict | None:
    """Shares of the five timed phases rescaled to sum to 1 (None when they hold nothing)."""
    picked = {p: float(shares.get(p, 0.0)) for p in PHASES}
    total = sum(v for v in picked.values() if math.isfinite(v) and v > 0)
    if total <= 0:
        return None
    return {p: (v / total if math.isfinite(v) and v > 0 else 0.0) for p, v in picked.items()}


def _entry(folder: Path, path: Path, impls) -> Artifact:
    return Artifact(str(path.relative_to(folder)), path.stat().st_size, _impl_of(path.stem, impls))


def _read_json(path: Path, art: Artifact):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        art.error = f"unreadable JSON ({exc})"
        return None


GRAPH_PHASES = PHASES + (OTHER,)
PHASES_SVG = ".phases.svg"
BY_PHASE = "-by-phase"
"""Suffix of a differential flame graph cut at the phases (``diff-A-B-by-phase.svg``)."""


def _phase_graph_names(folder: Path) -> set:
    """File names of the phase and differential flame graphs in ``flame/`` (shown apart from the others)."""
    names = {p.name for p in (folder / "flame").glob("diff-*.svg")}
    for path in (folder / "flame").glob(f"*{PHASES_SVG}"):
        stem = path.name[: -len(PHASES_SVG)]
        names |= {path.name, *(f"{stem}.{phase}.svg" for phase in GRAPH_PHASES)}
    return names


def flame_graphs(folder: Path, impls) -> list:
    """``flame/*.svg`` files other than the phase and differential flame graphs."""
    shown_apart = _phase_graph_names(folder)
    paths = sorted(p for p in (folder / "flame").glob("*.svg") if p.name not in shown_apart)
    return [_entry(folder, p, impls) for p in paths]


def phase_flames(folder: Path, impls) -> list:
    """``flame/<impl>.phases.svg`` files; ``rows`` holds the ``{phase, path}`` of its per-phase graphs."""
    found = []
    for path in sorted((folder / "flame").glob(f"*{PHASES_SVG}")):
        art = _entry(folder, path, impls)
        stem = path.name[: -len(PHASES_SVG)]
        art.impl = art.impl or stem
        for phase in GRAPH_PHASES:
            one = path.with_name(f"{stem}.{phase}.svg")
            if one.is_file():
                art.rows.append({"phase": phase, "path": str(one.relative_to(folder))})
        found.append(art)
    return found


def _diff_label(stem: str, impls) -> str:
    """``"B vs A"`` of ``diff-A-B`` when A and B are implementation names, else what follows ``diff-``."""
    pair = stem[len("diff-") :]
    cut = pair.endswith(BY_PHASE)
    pair = pair[: -len(BY_PHASE)] if cut else pair
    for before in sorted(impls, key=len, reverse=True):
        after = pair[len(before) + 1 :]
        if pair.startswith(f"{before}-") and after in impls:
            return f"{after} vs {before}" + (", by phase" if cut else "")
    return pair + (" by phase" if cut else "")


def diff_flames(folder: Path, impls) -> list:
    """``flame/diff-<A>-<B>.svg`` files, labelled ``B vs A``."""
    found = []
    for path in sorted((folder / "flame").glob("diff-*.svg")):
        art = _entry(folder, path, impls)
        art.impl, art.label = None, _diff_label(path.stem, list(impls))
        found.append(art)
    return found


SAMPLE_FORMS = ("*.speedscope.json", "*.collapsed.txt", "*.folded.txt")


def sample_files(folder: Path, impls) -> list:
    """``flame/*.speedscope.json``, ``flame/*.collapsed.txt`` and ``flame/*.folded.txt`` files."""
    paths = sorted(p for pattern in SAMPLE_FORMS for p in (folder / "flame").glob(pattern))
    return [_entry(folder, p, impls) for p in paths]


def sampled_shares(folder: Path, impls) -> list:
    """``flame/*.json`` files (not speedscope profiles) with their normalised phase shares."""
    found = []
    for path in sorted((folder / "flame").glob("*.json")):
        if path.name.endswith(".speedscope.json"):
            continue
        art = _entry(folder, path, impls)
        payload = _read_json(path, art)
        if isinstance(payload, dict):
            art.impl = payload.get("impl", art.impl) or path.stem
            art.overhead = payload["overhead"] if isinstance(payload.get("overhead"), dict) else None
            graphs = payload.get("graphs")
            art.notes = [str(n) for n in graphs.get("notes", [])] if isinstance(graphs, dict) else []
            raw = payload.get("shares", payload)
            art.shares = normalise(raw) if isinstance(raw, dict) else None
            if art.shares is None:
                art.error = "no phase shares in it"
        elif not art.error:
            art.error = "expected a JSON object"
        found.append(art)
    return found


def _phase_of(name: str) -> str | None:
    if "#" in name:
        return None
    for phase in PHASES:
        if name == phase or name.endswith(f".{phase}") or name.endswith(f":{phase}"):
            return phase
    return None


def traces(folder: Path, impls) -> list:
    """``trace/*.json`` Chrome traces, with phase shares summed from their complete events."""
    found = []
    for path in sorted((folder / "trace").glob("*.json")):
        art = _entry(folder, path, impls)
        found.append(art)
        if art.size > TRACE_READ_LIMIT:
            art.error = f"larger than {TRACE_READ_LIMIT >> 20} MB: linked, not read"
            continue
        payload = _read_json(path, art)
        events = payload.get("traceEvents", []) if isinstance(payload, dict) else payload
        if not isinstance(events, list):
            art.error = art.error or "no traceEvents list"
            continue
        totals = dict.fromkeys(PHASES, 0.0)
        for ev in events:
            phase = _phase_of(str(ev.get("name", ""))) if isinstance(ev, dict) and ev.get("ph") == "X" else None
            if phase:
                totals[phase] += float(ev.get("dur", 0.0))
        art.shares = normalise(totals)
    return found


def top_operators(folder: Path, impls) -> list:
    """``trace/*.top_ops.csv`` tables of the top operators per phase."""
    found = []
    for path in sorted((folder / "trace").glob("*.top_ops.csv")):
        art = _entry(folder, path, impls)
        found.append(art)
        try:
            with open(path, newline="") as fh:
                art.rows = list(csv.DictReader(fh))
        except (OSError, csv.Error) as exc:
            art.error = f"unreadable CSV ({exc})"
    return found


def benchmarks(folder: Path, impls) -> list:
    """pytest-benchmark JSON files with one row per benchmark (seconds)."""
    paths = sorted(set(folder.glob("benchmark*.json")) | set((folder / "benchmark").glob("*.json")))
    found = []
    for path in paths:
        art = _entry(folder, path, impls)
        payload = _read_json(path, art)
        found.append(art)
        if not isinstance(payload, dict) or not isinstance(payload.get("benchmarks"), list):
            art.error = art.error or "not pytest-benchmark output (no 'benchmarks' list)"
            continue
        for bench in payload["benchmarks"]:
            s = bench.get("stats", {})
            art.rows.append(
                {
                    "benchmark": bench.get("fullname") or bench.get("name"),
                    **{k: s.get(k) for k in ("median", "iqr", "mean", "stddev", "min", "max", "rounds")},
                }
            )
    return found


def discover(folder, impls) -> dict:
    """Every optional evidence file of a run folder, by kind (kinds with no file are left out)."""
    folder = Path(folder)
    kinds = {
        "phase_flames": phase_flames(folder, impls),
        "diff_flames": diff_flames(folder, impls),
        "flame": flame_graphs(folder, impls),
        "samples": sample_files(folder, impls),
        "shares": sampled_shares(folder, impls),
        "trace": traces(folder, impls),
        "top_ops": top_operators(folder, impls),
        "benchmark": benchmarks(folder, impls),
    }
    return {kind: items for kind, items in kinds.items() if items}
