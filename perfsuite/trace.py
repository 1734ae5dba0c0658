"""``perfsuite trace``: torch.profiler Chrome traces with one range per phase, and top operators per phase.

Per implementation, a dedicated worker (:mod:`perfsuite.profile_worker`)
sets up the implementation and profiles ``--warmup`` + ``--epochs`` epochs
with torch.profiler (:mod:`perfsuite.torchtrace`); only the epochs after the
warm-up are recorded. Written into the run folder (the convention of
:mod:`perfsuite.artifacts`):

* ``trace/<impl>.trace.json`` — the Chrome trace (open it in Perfetto or
  ``chrome://tracing``), with ``record_function`` ranges ``batching``,
  ``forward``, ``loss``, ``backward`` and ``step``;
* ``trace/<impl>.top_ops.csv`` — per phase, the top operators by self CPU time;
* ``epochs.csv`` etc. — the timer records of the same epochs (taken while the
  profiler ran, so slower than an unprofiled run), which the report sets
  beside the trace ranges.

A trace holds every operator call: a full MNIST epoch of ``store`` is a few
megabytes, one of ``idiomatic`` (per-sample transforms) far more; use
``--subset`` to keep it small.
"""

import csv
from pathlib import Path

from rich.table import Table

from perfsuite.errors import RunFailure, UsageError
from perfsuite.interface import OTHER, PHASES
from perfsuite.profile_run import ProfileRun
from perfsuite.profile_worker import WorkerFailure
from perfsuite.progress import console as make_console

DEFAULT_TOP = 10
SHOWN_PER_PHASE = 3
TOP_COLUMNS = ["phase", "rank", "operator", "self_cpu_ms", "calls", "share_of_phase"]


def trace_impl(run: ProfileRun, spec, trace_dir: Path, top: int) -> dict:
    """Profile one implementation in its own worker; returns what the worker found."""
    client, _ = run.start_worker(spec)
    wl = run.workload
    try:
        run.say(f"{spec.name} · tracing {wl.warmup} warm-up + {wl.epochs} epoch(s)")
        return client.call("trace", 0, wl.warmup, wl.epochs, str(trace_dir / f"{spec.name}.trace.json"), top)
    finally:
        client.close()


def write_top_ops(path: Path, rows: list) -> None:
    """The per-phase top-operator table as CSV."""
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=TOP_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def print_top_ops(name: str, found: dict) -> None:
    """The first operators of each phase on the terminal."""
    t = Table(title=f"{name}: top operators by self CPU time per phase (trace/{name}.top_ops.csv has more)")
    for col in ("phase", "range s", "operator", "self ms", "calls", "of phase"):
        t.add_column(col, justify="left" if col in ("phase", "operator") else "right")
    seconds = found.get("range_seconds", {})
    for phase in PHASES + (OTHER,):
        rows = [r for r in found["top_ops"] if r["phase"] == phase][:SHOWN_PER_PHASE]
        for i, r in enumerate(rows):
            t.add_row(phase if i == 0 else "", f"{seconds[phase]:.3f}" if i == 0 and phase in seconds else "",
                      r["operator"], f"{r['self_cpu_ms']:.1f}", str(r["calls"]), f"{100 * r['share_of_phase']:.0f}%")
        if rows:
            t.add_section()
    make_console().print(t)
    if not found.get("ranged"):
        make_console().print(f"{name}: fused implementation, its own loop has no phase ranges: its operators are under 'other'",
                             markup=False, highlight=False)


def cmd_trace(args) -> int:
    """``perfsuite trace``: a Chrome trace and a per-phase top-operator table per implementation."""
    if args.top < 1:
        raise UsageError(f"--top {args.top}: show at least one operator per phase")
    if args.epochs < 1:
        raise UsageError(f"--epochs {args.epochs}: trace at least one epoch")
    run = ProfileRun(args, "trace", {"top": args.top})
    trace_dir = run.folder / "trace"
    trace_dir.mkdir()
    found, failures = {}, []
    with run.recording(len(run.impls)):
        for _, spec in run.available():
            try:
                result = trace_impl(run, spec, trace_dir, args.top)
            except WorkerFailure as exc:
                run.set_status(spec.name, spec.spec, "failed", str(exc))
                failures.append(f"{spec.name}: {exc}")
                continue
            run.record(spec.name, result["records"])
            write_top_ops(trace_dir / f"{spec.name}.top_ops.csv", result["top_ops"])
            run.set_status(spec.name, spec.spec, "ok", trace={"ranged": result["ranged"],
                                                             "range_seconds": result["range_seconds"]})
            found[spec.name] = result
            run.progress.advance()
    report = run.finish("failed" if failures else "complete")
    for name, result in found.items():
        print_top_ops(name, result)
    print(f"results: {run.folder}")
    print(f"report: {report.resolve()}")
    if failures:
        raise RunFailure("; ".join(failures) + f" (what was recorded is kept in {run.folder})")
    return 0
