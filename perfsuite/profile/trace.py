"""``perfsuite trace``: torch.profiler Chrome traces with one range per phase, and top operators per phase.

Per implementation, a dedicated worker (:mod:`perfsuite.profile.worker`)
sets up the implementation and profiles ``--warmup`` + ``--epochs`` epochs
with torch.profiler (:mod:`perfsuite.profile.torchtrace`); only the epochs after the
warm-up are recorded. Written into the run folder (the convention of
:mod:`perfsuite.results.artifacts`):

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

from perfsuite.profile.session import ProfileRun
from perfsuite.profile.worker import WorkerFailure

DEFAULT_TOP = 10
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


def record_traces(run: ProfileRun, top: int) -> tuple:
    """Trace every available implementation of ``run`` into ``trace/``; ``(found, failures)``."""
    trace_dir = run.folder / "trace"
    trace_dir.mkdir()
    found, failures = {}, []
    with run.recording(len(run.impls)):
        for _, spec in run.available():
            try:
                result = trace_impl(run, spec, trace_dir, top)
            except WorkerFailure as exc:
                run.set_status(spec.name, spec.spec, "failed", str(exc))
                failures.append(f"{spec.name}: {exc}")
                continue
            run.record(spec.name, result["records"])
            write_top_ops(trace_dir / f"{spec.name}.top_ops.csv", result["top_ops"])
            run.set_status(
                spec.name, spec.spec, "ok", trace={"ranged": result["ranged"], "range_seconds": result["range_seconds"]}
            )
            found[spec.name] = result
            run.progress.advance()
    return found, failures
