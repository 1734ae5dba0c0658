"""torch.profiler over epochs of one implementation (runs inside the worker process).

Each phase call of the harness runs inside a ``record_function`` range named
after the phase (the opt-in ``phase_range`` hook of
:func:`perfsuite.core.phases.time_staged_epoch`); the profiler's schedule
``wait=0, warmup=W, active=N`` spends the workload's warm-up epochs as its
own warm-up (traced, then discarded) and records the N epochs after them.
One profiler step is one epoch.

From the recorded events come

* a Chrome trace (``export_chrome_trace``) with the phase ranges on the timeline;
* the top operators by self CPU time per phase: every operator event is
  charged to the phase range that encloses it (walking the profiler's
  ``cpu_parent`` links up to a range named after a phase; none: ``other``).
  Self time is exclusive, so nested operators are not counted twice. The
  self time of a phase range itself — time in the phase outside every
  operator (Python code, the DataLoader's transforms outside aten) — is its
  own row, :data:`OUTSIDE_OPS`.

A fused implementation runs its own loop: its operators are traced, but
without phase ranges they all fall under ``other``.
"""

from torch.profiler import ProfilerActivity, profile, record_function, schedule

from perfsuite.core.clock import monotonic
from perfsuite.core.interface import OTHER, PHASES, is_fused
from perfsuite.core.phases import time_epoch
from perfsuite.measure.worker import epoch_record

OUTSIDE_OPS = "(in the phase, outside any operator)"
STEP_PREFIX = "ProfilerStep"


def enclosing_phase(event) -> str:
    """The phase whose range encloses ``event`` (``other`` when none does)."""
    parent = event.cpu_parent
    while parent is not None:
        if parent.name in PHASES:
            return parent.name
        parent = parent.cpu_parent
    return OTHER


def _key(event) -> tuple:
    if event.name in PHASES:
        return event.name, OUTSIDE_OPS
    if event.name.startswith(STEP_PREFIX):
        return OTHER, OUTSIDE_OPS
    return enclosing_phase(event), event.name


def self_times(events) -> dict:
    """``(phase, operator) -> [self CPU microseconds, calls]`` over profiler events."""
    totals = {}
    for event in events:
        entry = totals.setdefault(_key(event), [0.0, 0])
        entry[0] += float(event.self_cpu_time_total)
        entry[1] += 1
    return totals


def top_ops(totals: dict, top: int) -> list:
    """The ``top`` operators of each phase by self CPU time, as rows (milliseconds, share of the phase)."""
    rows = []
    for phase in PHASES + (OTHER,):
        ops = sorted(((name, v) for (p, name), v in totals.items() if p == phase), key=lambda kv: -kv[1][0])
        phase_total = sum(v[0] for _, v in ops)
        for rank, (name, (micros, calls)) in enumerate(ops[:top], 1):
            rows.append(
                {
                    "phase": phase,
                    "rank": rank,
                    "operator": name,
                    "self_cpu_ms": micros / 1000.0,
                    "calls": calls,
                    "share_of_phase": micros / phase_total if phase_total > 0 else 0.0,
                }
            )
    return rows


def phase_range_seconds(events) -> dict:
    """Total seconds inside the ranges of each phase (the trace's own phase durations)."""
    totals = dict.fromkeys(PHASES, 0.0)
    for event in events:
        if event.name in PHASES:
            totals[event.name] += float(event.cpu_time_total) / 1e6
    return totals


def profile_epochs(impl, first: int, warmup: int, active: int, trace_path: str, top: int) -> dict:
    """Profile epochs ``first`` .. ``first + warmup + active - 1``; the last ``active`` are recorded.

    Writes the Chrome trace to ``trace_path``; returns the epochs' timer
    records, the top operators per phase and the ranges' seconds per phase.
    """
    found = {}

    def ready(prof):
        """At the end of the active epochs: write the trace, tabulate the events."""
        prof.export_chrome_trace(str(trace_path))
        events = prof.events()
        found["top_ops"] = top_ops(self_times(events), top)
        found["range_seconds"] = phase_range_seconds(events)

    ranges = None if is_fused(type(impl)) else record_function
    records = []
    plan = schedule(wait=0, warmup=warmup, active=active, repeat=1)
    with profile(activities=[ProfilerActivity.CPU], schedule=plan, on_trace_ready=ready) as prof:
        for offset in range(warmup + active):
            m = time_epoch(impl, first + offset, monotonic, ranges)
            records.append(epoch_record(impl, m, 0, first + offset, offset < warmup))
            prof.step()
    if "top_ops" not in found:
        raise RuntimeError("torch.profiler recorded nothing (its schedule never reached the active epochs)")
    return {"records": records, "ranged": ranges is not None, **found}
