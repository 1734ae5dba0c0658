"""``perfsuite memory``: what each phase allocates, the peaks, and memray's cross-check.

Method, per implementation, in one dedicated worker process
(:mod:`perfsuite.profile.worker`), kept apart from timing runs so that time
figures stay clean:

1. set up, run the warm-up epochs (timed, recorded as warm-up);
2. ``--epochs`` pairs of epochs, alternately *plain* and *profiled*, so
   machine drift hits both alike. A plain epoch runs without profiler: its
   timer record is one of the run folder's measured epochs and it gives the
   process's resident-set high-water mark (:mod:`perfsuite.profile.rss`).
   A profiled epoch runs under torch.profiler with ``profile_memory=True``
   and a ``record_function`` range per phase call; every tensor allocation
   and free is charged to the phase whose range holds it
   (:mod:`perfsuite.profile.allocations`);
4. one epoch under memray (:mod:`perfsuite.profile.memraycheck`), unless
   ``--no-memray``: its peak and its ``posix_memalign`` allocations per
   phase are the independent cross-check.

The overhead of memory mode is the median over the pairs of the profiled
epoch over the plain one before it, minus one. What is written (``RUN_DIR/memory/``):
``phases.csv``, ``epochs.csv`` and ``memray.csv`` (columns in
:mod:`perfsuite.results.schema`) and memray's capture ``<impl>.memray.bin``.
"""

import dataclasses
from dataclasses import dataclass

from perfsuite.core.errors import UsageError
from perfsuite.core.interface import OTHER, PHASES
from perfsuite.profile.session import ProfileRun
from perfsuite.profile.worker import WorkerFailure
from perfsuite.results.schema import MEMORY_EPOCHS, MEMORY_PHASES, MEMRAY_PHASES

DEFAULT_EPOCHS = 2
DEFAULT_SUBSET = 0.1
METHOD = "torch.profiler(profile_memory=True), [memory] events charged to record_function phase ranges by time"
FUSED_NOTE = "fused implementation: no per-phase ranges, so only the epoch totals (other) are measured"


@dataclass
class MemoryOptions:
    """What the command line asked for."""

    epochs: int
    warmup: int
    memray: bool


def options(args) -> MemoryOptions:
    """Check the memory-specific options."""
    if args.epochs < 1:
        raise UsageError(f"--epochs {args.epochs}: measure at least one epoch")
    if args.warmup < 0:
        raise UsageError(f"--warmup {args.warmup}: cannot be negative")
    return MemoryOptions(args.epochs, args.warmup, not args.no_memray)


def profile_facts(opts: MemoryOptions) -> dict:
    """What ``meta.json`` records of a memory run."""
    return {"method": METHOD, "profiled_epochs": opts.epochs, "memray": opts.memray}


def _epoch_row(name: str, found: dict, mode: str) -> dict:
    record = found["record"]
    rss = found.get("rss") or {}
    return {
        "impl": name,
        "epoch": record.epoch,
        "mode": mode,
        "steps": len(record.phases),
        "wall_seconds": record.wall,
        "rss_peak_bytes": rss.get("bytes"),
        "rss_reset": int(bool(rss.get("reset"))) if rss else None,
        "live_peak_bytes": found.get("epoch_peak_bytes", found.get("peak_bytes")),
        "net_bytes": found.get("net_bytes"),
        "tensor_peak_bytes": found.get("tensor_peak_bytes"),
        "allocations": found.get("total_allocations"),
    }


def _phase_rows(name: str, found: dict) -> list:
    record = found["record"]
    return [
        {"impl": name, "epoch": record.epoch, "phase": phase, "steps": len(record.phases), **found["phases"][phase]}
        for phase in PHASES + (OTHER,)
    ]


def _memray_rows(name: str, found: dict) -> list:
    counts = found["by_phase"]
    return [
        {"impl": name, "epoch": found["record"].epoch, "phase": phase, **{k: v[phase] for k, v in counts.items()}}
        for phase in PHASES + (OTHER,)
    ]


def measure_impl(run: ProfileRun, spec, opts: MemoryOptions) -> dict:
    """Warm up, then plain, profiled and memray epochs of one implementation; returns its notes."""
    client, _ready = run.start_worker(spec)
    notes = {}
    try:
        run.say(f"{spec.name} · {opts.warmup} warm-up epoch(s)")
        run.record(spec.name, client.call("epochs", 0, opts.warmup, True))
        run.say(f"{spec.name} · {opts.epochs} plain and {opts.epochs} profiled epoch(s), alternately")
        for epoch in range(opts.warmup, opts.warmup + 2 * opts.epochs, 2):
            notes["ranged"] = paired_epochs(run, client, spec.name, epoch)
        run.progress.advance()
        if opts.memray:
            notes.update(memray_epoch(run, client, spec.name, opts.warmup + 2 * opts.epochs))
        run.progress.advance()
    finally:
        client.close()
    if not notes["ranged"]:
        notes["note"] = FUSED_NOTE
    return notes


def paired_epochs(run: ProfileRun, client, name: str, epoch: int) -> bool:
    """A plain epoch (kept as a measured epoch of the run) and then one with torch.profiler's memory events.

    Returns whether the profiled epoch had phase ranges (a staged implementation).
    """
    (plain,) = client.call("memory", epoch, 1, False)
    run.record(name, [plain["record"]])
    run.writer.append_memory(MEMORY_EPOCHS, _epoch_row(name, plain, "plain"))
    (profiled,) = client.call("memory", epoch + 1, 1, True)
    run.writer.append_memory(MEMORY_EPOCHS, _epoch_row(name, profiled, "profiled"))
    for row in _phase_rows(name, profiled):
        run.writer.append_memory(MEMORY_PHASES, row)
    return profiled["ranged"]


def memray_epoch(run: ProfileRun, client, name: str, epoch: int) -> dict:
    """One epoch under memray, its rows written; ``{"memray": version or the reason it did not run}``."""
    run.say(f"{name} · 1 epoch under memray")
    path = run.folder / "memory" / f"{name}.memray.bin"
    path.parent.mkdir(exist_ok=True)
    found = client.call("memray", epoch, str(path))
    if "unavailable" in found:
        return {"memray_note": found["unavailable"]}
    run.writer.append_memory(MEMORY_EPOCHS, _epoch_row(name, found, "memray"))
    for row in _memray_rows(name, found):
        run.writer.append_memory(MEMRAY_PHASES, row)
    return {"memray_version": found["memray_version"], "memray_file": f"memory/{found['file']}"}


def record_memory(run: ProfileRun, opts: MemoryOptions) -> list:
    """Measure every available implementation of ``run``; the failures, one line each."""
    failures = []
    with run.recording(len(run.impls) * 2):
        for _index, spec in run.available():
            try:
                notes = measure_impl(run, spec, opts)
            except WorkerFailure as exc:
                run.set_status(spec.name, spec.spec, "failed", str(exc))
                failures.append(f"{spec.name}: {exc}")
                continue
            run.set_status(spec.name, spec.spec, "ok", memory=notes)
            for key in ("note", "memray_note"):
                if notes.get(key):
                    run.progress.note(f"perfsuite: {spec.name}: {notes[key]}")
    return failures


def capped(workload):
    """``workload`` on at most :data:`DEFAULT_SUBSET` of the split (what ``ab --memory`` and ``sweep --memory`` run)."""
    return dataclasses.replace(workload, subset=min(workload.subset, DEFAULT_SUBSET))


def sweep_measurer(args, opts: MemoryOptions):
    """The point measurer of ``perfsuite sweep --memory``: each point a memory run (at most :data:`DEFAULT_SUBSET`)."""

    def measure_point(folder, workload, plan, progress, sweep_info: dict) -> tuple:
        """One point's memory run into ``folder``; ``(status, failures)``."""
        workload = capped(workload)
        facts = {**profile_facts(opts), "sweep": sweep_info}
        run = ProfileRun(args, "memory", facts, workload=workload, impls=plan.impls, folder=folder)
        failures = record_memory(run, opts)
        status = "failed" if failures else "complete"
        run.finish(status)
        return status, failures

    return measure_point
