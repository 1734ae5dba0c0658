"""The sweep driver: the same interleaved, repeated measurement at several workload settings.

``--vary NAME=V1,V2,…`` (``batch_size``, ``threads``, ``hidden`` or
``subset``; one or two names, two give every combination) turns one run
into a series of points. Each point is a complete run folder, measured like
``perfsuite run`` (its own roofline, workers, interleaved epochs, summary),
inside one sweep folder::

    reports/<sweep-id>/
      sweep.json         what was varied, every point (values, folder, status), base workload, dataset
      batch_size-32/     one run folder per point (meta.json, CSVs, summary.json)
      batch_size-64/
      sweep.csv          seconds per sample per point, implementation and phase, with 95% intervals
      index.html         the sweep page (:mod:`perfsuite.render.sweep_page`)

Points run one after the other, first axis outermost. ``sweep.json`` is
rewritten after every point, so an interrupted sweep keeps every finished
point, and ``perfsuite report SWEEP_DIR`` redraws the page from the files.
"""

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

from perfsuite.analysis.summary import write_summary
from perfsuite.core import data, metadata, registry, workloads
from perfsuite.core.errors import UsageError
from perfsuite.core.options import timeout_from, workload_from
from perfsuite.measure.measurement import measure
from perfsuite.results import writer
from perfsuite.results.schema import SWEEP_FILE, SWEEP_SCHEMA_VERSION

VARIABLES = {"batch_size": int, "threads": int, "hidden": int, "subset": float}
"""Workload fields a sweep may vary, with the type of their values."""
MAX_AXES = 2


@dataclass(frozen=True)
class Axis:
    """One varied workload field and its values, in the order given."""

    name: str
    values: tuple

    def to_dict(self) -> dict:
        return {"name": self.name, "values": list(self.values)}


def _number(kind, text: str, option: str):
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise UsageError(f"--vary {option}: {text!r} is not a whole number") from None
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"--vary {option}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise UsageError(f"--vary {option}: {text!r} is not a finite number")
    return value


def parse_axis(text: str) -> Axis:
    """One ``NAME=V1,V2,…`` (hyphens allowed in NAME) as an :class:`Axis`; one-line errors."""
    name, sep, values = text.partition("=")
    key = name.strip().replace("-", "_")
    if not sep or not key or not values.strip():
        raise UsageError(f"--vary {text}: expected NAME=V1,V2,… (e.g. batch_size=32,64,128)")
    if key not in VARIABLES:
        raise UsageError(f"--vary {text}: unknown name {name.strip()!r} (one of {', '.join(VARIABLES)})")
    parsed = tuple(_number(VARIABLES[key], v.strip(), text) for v in values.split(","))
    repeated = sorted({v for v in parsed if parsed.count(v) > 1})
    if repeated:
        raise UsageError(f"--vary {text}: {', '.join(map(str, repeated))} listed twice")
    return Axis(key, parsed)


def parse_vary(texts) -> list:
    """All ``--vary`` options as axes: at least one, at most two, each name once."""
    if not texts:
        raise UsageError(f"sweep needs --vary NAME=V1,V2,… (NAME one of {', '.join(VARIABLES)})")
    axes = [parse_axis(t) for t in texts]
    names = [a.name for a in axes]
    if len(set(names)) < len(names):
        raise UsageError(f"--vary {max(names, key=names.count)}: given twice; list all its values in one --vary")
    if len(axes) > MAX_AXES:
        raise UsageError(f"--vary: at most {MAX_AXES} names at a time (got {', '.join(names)})")
    return axes


def point_values(axes) -> list:
    """Every combination of the axes' values, as ``{name: value}``, first axis outermost."""
    return [
        dict(zip((a.name for a in axes), combo, strict=True)) for combo in itertools.product(*(a.values for a in axes))
    ]


def label(values: dict) -> str:
    """A point's folder name, e.g. ``batch_size-32`` or ``batch_size-32+threads-2``."""
    return "+".join(
        f"{name}-{value:g}" if isinstance(value, float) else f"{name}-{value}" for name, value in values.items()
    )


def point_workloads(args, axes) -> list:
    """``(values, Workload)`` of every point, all validated before anything runs."""
    found = []
    for values in point_values(axes):
        try:
            found.append((values, workload_from(args, **values)))
        except UsageError as exc:
            problem = str(exc).split(": ", 1)[-1]
            shown = ",".join(f"{k}={v}" for k, v in values.items())
            raise UsageError(f"--vary {shown}: {problem}") from exc
    return found


@dataclass
class Plan:
    """A validated sweep: its axes, points, data, implementations and options."""

    axes: list
    points: list
    dataset: object
    impls: list
    timeout: float
    roofline: bool


def plan(args) -> Plan:
    """Check every option and point of ``perfsuite sweep`` before any process starts."""
    axes = parse_vary(args.vary)
    workloads.load(getattr(args, "workload", None))  # an unknown workload is its own one-line error, not a --vary one
    points = point_workloads(args, axes)
    timeout = timeout_from(args)
    dataset = data.resolve(args.dataset, args.data_dir)
    specs = registry.parse_list(args.impls) if args.impls else sorted(registry.builtin())
    impls = workloads.resolve_impls(specs, points[0][1] if points else workload_from(args), explicit=bool(args.impls))
    return Plan(axes, points, dataset, impls, timeout, not args.no_roofline)


def sweep_record(folder: Path, p: Plan, args) -> dict:
    """The initial ``sweep.json`` content: every point pending."""
    return {
        "schema_version": SWEEP_SCHEMA_VERSION,
        "kind": "sweep",
        "sweep_id": folder.name,
        **metadata.collect(),
        "vary": [a.to_dict() for a in p.axes],
        "base_workload": workload_from(args).to_dict(),
        "dataset": p.dataset.to_dict(),
        "impls": [spec.spec for spec in p.impls],
        "roofline": p.roofline,
        "status": "running",
        "points": [
            {
                "label": label(values),
                "folder": label(values),
                "values": values,
                "workload": wl.to_dict(),
                "status": "pending",
            }
            for values, wl in p.points
        ],
    }


def run_point(folder: Path, workload, p: Plan, progress, sweep_info: dict) -> tuple:
    """Measure one point into its run folder, like ``perfsuite run``; returns ``(status, failures)``, one line each."""
    folder.mkdir()
    try:
        status, handles = measure(
            folder,
            workload,
            p.dataset,
            p.impls,
            progress,
            p.timeout,
            with_roofline=p.roofline,
            extra_meta={"sweep": sweep_info},
        )
    finally:
        write_summary(folder)
    return status, [f"{h.name} failed: {h.reason}" for h in handles if h.status == "failed"]


def run_sweep(folder: Path, p: Plan, args, progress, measure_point=run_point) -> list:
    """Measure every point of plan ``p`` into ``folder``, keeping ``sweep.json`` current; the failures' lines.

    ``measure_point`` measures one point (:func:`run_point`, or ``perfsuite
    sweep --memory``'s memory run) and has its signature.

    Whatever happens, ``sweep.json`` ends with the sweep's status
    (``complete``, ``failed`` or ``interrupted``) and each point's.
    """
    record = sweep_record(folder, p, args)
    writer.write_json(folder / SWEEP_FILE, record)
    failures = []
    try:
        for i, (point, (values, workload)) in enumerate(zip(record["points"], p.points, strict=True)):
            progress.note(f"perfsuite: sweep point {i + 1}/{len(p.points)}: {point['label']}")
            point["status"] = "interrupted"
            info = {"sweep_id": folder.name, "point": point["label"], "values": values}
            point["status"], failed = measure_point(folder / point["folder"], workload, p, progress, info)
            failures += [f"{point['label']}: {text}" for text in failed]
            writer.write_json(folder / SWEEP_FILE, record)
        record["status"] = "failed" if failures else "complete"
    finally:
        if record["status"] == "running":
            record["status"] = "interrupted"
        writer.write_json(folder / SWEEP_FILE, record)
    return failures
