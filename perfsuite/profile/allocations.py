"""Tensor allocations per phase from torch.profiler's memory events (runs inside the worker process).

With ``profile_memory=True`` torch's CPU allocator reports every allocation
and every free of a block it saw allocated (``[memory]`` events carrying the
signed byte count). Each phase call of the harness runs inside a
``record_function`` range named after the phase (the ``phase_range`` hook of
:func:`perfsuite.core.phases.time_staged_epoch`); a memory event belongs to
the phase whose range holds its timestamp, the same time-interval rule
torch.profiler applies when it charges memory to its operators. Events
outside every phase range are ``other``.

Per phase and epoch, :func:`attribute` gives

* ``allocated_bytes`` and ``allocations``: what the phase allocated;
* ``freed_bytes`` and ``frees``: what it released;
* ``peak_bytes``: the highest the live bytes rose above their level at the
  start of a range of that phase, over its ranges (a step's transient
  high-water; the largest of the epoch) and ``peak_bytes_median`` (the
  median over its ranges);
* ``ranges``: how many ranges of the phase the epoch had.

Per epoch: the live bytes' high-water above the epoch's start
(``epoch_peak_bytes``) and the net change (``net_bytes``). Only memory that
goes through torch's CPU allocator is seen (tensors), not Python objects.

A fused implementation runs its own loop: no phase ranges, so everything is
``other`` and only the epoch totals mean anything.
"""

import bisect
import statistics

from torch.profiler import ProfilerActivity, profile, record_function

from perfsuite.core.clock import monotonic
from perfsuite.core.interface import OTHER, PHASES, is_fused
from perfsuite.core.phases import time_epoch
from perfsuite.measure.worker import epoch_record
from perfsuite.profile import rss

MEMORY_EVENT = "[memory]"
COUNTERS = ("allocated_bytes", "allocations", "freed_bytes", "frees", "peak_bytes", "peak_bytes_median", "ranges")


def split_events(events) -> tuple:
    """``(ranges, memory)`` from kineto events: phase ranges ``(start, end, phase)`` and ``(time, bytes)``, by time."""
    ranges, memory = [], []
    for event in events:
        name = event.name()
        if name == MEMORY_EVENT:
            memory.append((event.start_ns(), int(event.nbytes())))
        elif name in PHASES:
            ranges.append((event.start_ns(), event.end_ns(), name))
    return sorted(ranges), sorted(memory)


def _range_of(ranges, starts, time) -> int | None:
    index = bisect.bisect_right(starts, time) - 1
    return index if index >= 0 and time <= ranges[index][1] else None


def attribute(ranges, memory) -> dict:
    """Per-phase counters (see the module docstring) and the epoch's peak and net live bytes."""
    starts = [r[0] for r in ranges]
    totals = {
        p: dict.fromkeys(("allocated_bytes", "allocations", "freed_bytes", "frees"), 0) for p in PHASES + (OTHER,)
    }
    range_peaks = {}
    live = peak = 0
    entry = {}
    for time, nbytes in memory:
        index = _range_of(ranges, starts, time)
        phase = ranges[index][2] if index is not None else OTHER
        if index is not None and index not in entry:
            entry[index] = live
        counter = totals[phase]
        if nbytes >= 0:
            counter["allocated_bytes"] += nbytes
            counter["allocations"] += 1
        else:
            counter["freed_bytes"] -= nbytes
            counter["frees"] += 1
        live += nbytes
        peak = max(peak, live)
        if index is not None:
            range_peaks[index] = max(range_peaks.get(index, 0), live - entry[index])
    for phase, counter in totals.items():
        peaks = [range_peaks.get(i, 0) for i, r in enumerate(ranges) if r[2] == phase]
        counter["ranges"] = len(peaks)
        counter["peak_bytes"] = max(peaks, default=0)
        counter["peak_bytes_median"] = statistics.median(peaks) if peaks else 0
    return {"phases": totals, "epoch_peak_bytes": peak, "net_bytes": live}


def profiled_epoch(impl, epoch: int) -> dict:
    """One epoch under torch.profiler with memory events; its timer record, allocations and peak RSS."""
    ranges = None if is_fused(type(impl)) else record_function
    rss.reset_peak()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        m = time_epoch(impl, epoch, monotonic, ranges)
    peak_rss = rss.peak()
    found = attribute(*split_events(prof.profiler.kineto_results.events()))
    del prof
    rss.release()
    return {"record": epoch_record(impl, m, 0, epoch, False), "ranged": ranges is not None, "rss": peak_rss, **found}


def plain_epoch(impl, epoch: int) -> dict:
    """One epoch without the profiler; its timer record and peak RSS (the overhead's reference)."""
    rss.reset_peak()
    m = time_epoch(impl, epoch, monotonic)
    return {"record": epoch_record(impl, m, 0, epoch, False), "rss": rss.peak()}


def memory_epochs(impl, first: int, count: int, profiled: bool) -> list:
    """Epochs ``first`` .. ``first + count - 1``, profiled for memory or plain."""
    run = profiled_epoch if profiled else plain_epoch
    return [run(impl, epoch) for epoch in range(first, first + count)]
