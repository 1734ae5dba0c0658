"""pytest-benchmark results beside the harness's figures for the same implementation.

``pytest --benchmark-json=FILE`` (``tox -e bench``) writes one record per
benchmark with its statistics (seconds) and ``extra_info``. perfsuite's own
benchmarks (``tests/benchmarks``) put there the implementation (``impl``),
the kind (``epoch`` or ``phase``), the phase, the workload and the data set.

:func:`load` reads and validates such a file (a malformed one raises
:class:`~perfsuite.core.errors.UsageError` with one line naming it);
:func:`comparison` turns it into a DataFrame with pytest-benchmark's median,
IQR, mean, standard deviation, min and rounds of every benchmark next to
the run's own median for the same implementation:

* an ``epoch`` benchmark next to the run's median epoch wall time;
* a ``phase`` micro-benchmark next to the run's median *per-step* seconds of
  that phase (``first_batch``: of step 0's batching, which holds the epoch's
  iterator creation and shuffle; ``batching``: of the steps between the first
  and the last, as the micro-benchmark times them).

:func:`sections` does this for every pytest-benchmark file of a run folder
(found by :func:`perfsuite.results.artifacts.benchmarks`: ``benchmark*.json`` and
``benchmark/*.json``); :func:`attach` copies a file given on the command line
(``perfsuite report RUN_DIR --pytest-benchmark FILE``) to ``benchmark/`` in
the run folder, so the report links it and later reports keep showing it.
"""

import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from perfsuite.analysis import stats
from perfsuite.core.errors import UsageError
from perfsuite.core.interface import PHASES
from perfsuite.results.reader import read_meta

FOLDER = "benchmark"
"""Where :func:`attach` puts files inside a run folder (a place :mod:`perfsuite.results.artifacts` looks)."""

STATS = ("median", "iqr", "mean", "stddev", "min", "max", "rounds")
"""The pytest-benchmark statistics every benchmark record must carry (seconds, rounds a count)."""

COMPARED_WORKLOAD = ("batch_size", "hidden", "lr", "momentum", "loss", "subset", "threads")
"""Workload fields that must agree for a benchmark and a run to measure the same thing."""


@dataclass(frozen=True)
class Benchmark:
    """One benchmark record: its names, pytest-benchmark statistics and perfsuite's ``extra_info``."""

    name: str
    fullname: str
    group: str
    stats: dict
    extra: dict
    params: dict = field(default_factory=dict)

    @property
    def impl(self) -> str | None:
        """The implementation benchmarked (``extra_info["impl"]``), if perfsuite's benchmarks wrote it."""
        impl = self.extra.get("impl")
        return str(impl) if impl else None

    @property
    def kind(self) -> str:
        """``epoch``, ``phase``, or ``other`` for benchmarks perfsuite did not write."""
        return str(self.extra.get("kind") or "other")

    @property
    def phase(self) -> str | None:
        """The micro-benchmarked phase of a ``phase`` benchmark."""
        phase = self.extra.get("phase")
        return str(phase) if phase else None


@dataclass(frozen=True)
class BenchmarkFile:
    """A validated pytest-benchmark JSON file."""

    path: Path
    benchmarks: list
    datetime: str
    version: str
    machine: dict


def _fail(path, problem: str):
    raise UsageError(f"{path}: not a pytest-benchmark JSON file ({problem})")


def _read_payload(path: Path):
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        _fail(path, f"not UTF-8 text: {exc.reason}")
    except ValueError as exc:
        _fail(path, f"unreadable JSON: {exc}")
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror})") from exc


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _benchmark(path: Path, index: int, record) -> Benchmark:
    where = f"benchmark {index}"
    if not isinstance(record, dict):
        _fail(path, f"{where} is not an object")
    name = record.get("fullname") or record.get("name")
    if not isinstance(name, str) or not name:
        _fail(path, f"{where} has no name")
    stats = record.get("stats")
    if not isinstance(stats, dict):
        _fail(path, f"{name} has no stats")
    bad = [key for key in STATS if not _number(stats.get(key))]
    if bad:
        _fail(path, f"{name}: stats lack numbers for {', '.join(bad)}")
    extra = record.get("extra_info") or {}
    params = record.get("params") or {}
    if not isinstance(extra, dict) or not isinstance(params, dict):
        _fail(path, f"{name}: extra_info and params must be objects")
    return Benchmark(
        str(record.get("name") or name),
        name,
        str(record.get("group") or ""),
        {key: float(stats[key]) for key in STATS},
        extra,
        params,
    )


def parse(payload, path) -> BenchmarkFile:
    """Validate the decoded JSON of a pytest-benchmark file (``path`` names it in errors)."""
    if not isinstance(payload, dict):
        _fail(path, "expected a JSON object")
    records = payload.get("benchmarks")
    if not isinstance(records, list):
        _fail(path, "no 'benchmarks' list")
    benchmarks = [_benchmark(path, i, record) for i, record in enumerate(records)]
    machine = payload.get("machine_info") if isinstance(payload.get("machine_info"), dict) else {}
    return BenchmarkFile(
        Path(path), benchmarks, str(payload.get("datetime", "")), str(payload.get("version", "")), machine
    )


def load(path) -> BenchmarkFile:
    """Read and validate a pytest-benchmark JSON file; :class:`UsageError` (one line) when it is not one."""
    path = Path(path)
    return parse(_read_payload(path), path)


def _median(values) -> float | None:
    value = stats.median(values)
    return None if math.isnan(value) else value


def harness_figures(run, impl: str) -> dict:
    """The run's medians for ``impl``: ``epoch`` wall seconds and per-step seconds of each micro-benchmark."""
    epochs = run.measured(impl)
    if not len(epochs):
        return {}
    steps = run.measured_steps(impl)
    last = steps.groupby(["round", "epoch"])["step_no"].transform("max")
    inner = steps[(steps["step_no"] > 0) & (steps["step_no"] < last)]
    figures = {
        "epoch": _median(epochs["wall_seconds"]),
        "first_batch": _median(steps.loc[steps["step_no"] == 0, "batching"]),
        "batching": _median((inner if len(inner) else steps)["batching"]),
    }
    figures.update({p: _median(steps[p]) for p in PHASES if p != "batching"})
    return figures


def _harness_key(bench: Benchmark) -> str | None:
    if bench.kind == "epoch":
        return "epoch"
    if bench.kind == "phase" and bench.phase:
        return bench.phase
    return None


def _impl_of(bench: Benchmark, impls) -> str | None:
    if bench.impl:
        return bench.impl
    values = [str(v) for v in bench.params.values()]
    return next((name for name in impls if name in values), None)


def format_seconds(value) -> str:
    """Seconds in a readable unit (s, ms or µs), three significant figures; ``—`` when missing."""
    if value is None or not math.isfinite(value):
        return "—"
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value * 1e9:.3g} ns"


def _difference(bench_median: float, harness: float | None) -> str:
    if not harness:
        return "—"
    return f"{bench_median / harness - 1:+.1%}"


def _row(bench: Benchmark, impl: str | None, figures: dict) -> dict:
    s = bench.stats
    key = _harness_key(bench)
    harness = figures.get(key) if key else None
    what = "epoch" if bench.kind == "epoch" else (f"phase: {bench.phase}" if bench.phase else bench.kind)
    return {
        "benchmark": bench.fullname,
        "implementation": impl or "—",
        "measures": what,
        "rounds": int(s["rounds"]),
        "median": format_seconds(s["median"]),
        "IQR": format_seconds(s["iqr"]),
        "mean": format_seconds(s["mean"]),
        "stddev": format_seconds(s["stddev"]),
        "min": format_seconds(s["min"]),
        "run median": format_seconds(harness),
        "run figure": ("median epoch" if key == "epoch" else "median per step") if harness is not None else "—",
        "benchmark vs run": _difference(s["median"], harness),
    }


def comparison(bench_file: BenchmarkFile, run=None) -> pd.DataFrame:
    """One row per benchmark: pytest-benchmark's statistics and, with a run, its median for the same figure."""
    impls = run.measured_impls if run is not None else []
    cache = {}
    rows = []
    for bench in bench_file.benchmarks:
        impl = _impl_of(bench, impls)
        if impl in impls and impl not in cache:
            cache[impl] = harness_figures(run, impl)
        rows.append(_row(bench, impl, cache.get(impl, {})))
    return pd.DataFrame(rows)


def _mismatch(name: str, bench_value, run_value) -> str | None:
    if bench_value is None or run_value is None or bench_value == run_value:
        return None
    return f"{name} {bench_value} (run: {run_value})"


def workload_notes(bench_file: BenchmarkFile, meta: dict) -> list:
    """Why the benchmarks and the run may not measure the same thing (workload or data differ)."""
    run_workload = meta.get("workload", {})
    run_dataset = meta.get("dataset", {})
    found = set()
    for bench in bench_file.benchmarks:
        workload = bench.extra.get("workload") or {}
        dataset = bench.extra.get("dataset") or {}
        found.update(filter(None, (_mismatch(k, workload.get(k), run_workload.get(k)) for k in COMPARED_WORKLOAD)))
        found.update(filter(None, [_mismatch("dataset", dataset.get("label"), run_dataset.get("label"))]))
    if not found:
        return []
    return [
        f"The benchmarks ran a different workload than this run ({'; '.join(sorted(found))}): "
        "the run's figures beside them are not like for like."
    ]


def _cpu(machine: dict) -> str:
    """The CPU pytest-benchmark recorded (``machine_info.cpu.brand_raw``), else the processor field."""
    cpu = machine.get("cpu")
    brand = cpu.get("brand_raw") if isinstance(cpu, dict) else None
    return str(brand or machine.get("processor") or "")


@dataclass
class Section:
    """What the report shows for one pytest-benchmark file."""

    path: str
    frame: pd.DataFrame | None = None
    notes: list = field(default_factory=list)
    error: str = ""
    datetime: str = ""
    machine: str = ""

    @property
    def table(self) -> str:
        """The comparison as an escaped HTML table (empty when the file could not be read)."""
        if self.frame is None or not len(self.frame):
            return ""
        return self.frame.to_html(index=False, escape=True, classes="data", border=0, na_rep="—")


def section(run, path) -> Section:
    """The report section of one file of ``run``'s folder (an unreadable file gets its error instead)."""
    path = Path(path)
    rel = str(path.relative_to(run.folder)) if path.is_relative_to(run.folder) else str(path)
    try:
        bench_file = load(path)
    except UsageError as exc:
        return Section(rel, error=str(exc))
    return Section(
        rel,
        comparison(bench_file, run),
        workload_notes(bench_file, run.meta),
        datetime=bench_file.datetime,
        machine=_cpu(bench_file.machine),
    )


def sections(run, paths) -> list:
    """The report sections of the given pytest-benchmark files of ``run``."""
    return [section(run, p) for p in paths]


def discovered(folder, path) -> bool:
    """Whether the report finds ``path`` in run folder ``folder`` by itself (see :mod:`perfsuite.results.artifacts`)."""
    path, folder = Path(path).resolve(), Path(folder).resolve()
    at_top = path.parent == folder and path.name.startswith("benchmark") and path.suffix == ".json"
    return at_top or (path.parent == folder / FOLDER and path.suffix == ".json")


def attach(run_dir, source) -> Path:
    """Validate ``source`` and copy it to ``RUN_DIR/benchmark/`` (unless it is already in the run folder).

    Returns where the run folder holds it. Raises :class:`UsageError` (one
    line) when ``run_dir`` is not a run folder or ``source`` is not a
    pytest-benchmark JSON file.
    """
    folder = Path(run_dir)
    read_meta(folder)
    source = Path(source)
    load(source)
    if discovered(folder, source):
        return source
    target = folder / FOLDER / source.name
    try:
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(source, target)
    except OSError as exc:
        raise UsageError(f"{target}: cannot copy the pytest-benchmark file there ({exc.strerror})") from exc
    return target
