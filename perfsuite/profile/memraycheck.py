"""memray's view of one epoch, the independent cross-check of the torch.profiler figures (worker side).

memray (``memray.Tracker``) intercepts the C allocator itself — ``malloc``,
``posix_memalign``, ``free`` and the rest — with the Python stack of each
call, so it sees tensor storage (torch's CPU allocator asks
``posix_memalign`` for it) *and* everything else: Python objects, PIL images,
NumPy buffers. :func:`tracked_epoch` runs one plain epoch under it, keeps
its capture file (``memray flamegraph FILE`` draws memray's own allocation
flame graph of it) and returns

* ``peak_bytes``: memray's heap high-water mark above the tracker's start
  (every allocation: tensors and the rest);
* ``tensor_peak_bytes``: the high-water of the live ``posix_memalign``
  blocks alone (tensor storage), the figure to set beside torch.profiler's
  live tensor bytes;
* per phase (the harness's phase frame on the allocation's stack, as in
  the flame graphs): every allocation and, apart, the ``posix_memalign``
  ones — the tensor allocations torch.profiler counts.
"""

import time
from collections import Counter
from pathlib import Path

from perfsuite.core.clock import monotonic
from perfsuite.core.interface import OTHER, PHASES
from perfsuite.core.phases import time_epoch
from perfsuite.measure.worker import epoch_record

HARNESS_FILE = "perfsuite/core/phases.py"
INSTALL_HELP = "memray is not installed (pip install memray): no cross-check"


class MemrayUnavailable(RuntimeError):
    """memray cannot track here; the message is one line."""


def _memray():
    try:
        import memray
    except ImportError as exc:
        raise MemrayUnavailable(INSTALL_HELP) from exc
    return memray


def phase_of(stack) -> str:
    """The phase whose harness frame is on a memray stack (innermost first), else ``other``."""
    for function, filename, _line in stack:
        if function in PHASES and filename.replace("\\", "/").endswith(HARNESS_FILE):
            return function
    return OTHER


def scan(records, tensor_allocator: int, freeing: set) -> dict:
    """One pass over memray's allocation records, in the order they happened.

    Returns the allocations and bytes per phase (all of them, and those of
    ``tensor_allocator``, posix_memalign) and ``tensor_peak_bytes``: the
    high-water of live posix_memalign blocks allocated after tracking began
    (a block is followed by its address until freed), which is what
    torch.profiler's live bytes count too.
    """
    counts = {key: Counter() for key in ("allocations", "bytes", "tensor_allocations", "tensor_bytes")}
    live, blocks, peak = 0, {}, 0
    for record in records:
        if record.allocator in freeing:
            live -= blocks.pop(record.address, 0)
            continue
        if record.size == 0:
            continue
        phase = phase_of(record.stack_trace())
        counts["allocations"][phase] += record.n_allocations
        counts["bytes"][phase] += record.size
        if record.allocator == tensor_allocator:
            counts["tensor_allocations"][phase] += record.n_allocations
            counts["tensor_bytes"][phase] += record.size
            blocks[record.address] = record.size
            live += record.size
            peak = max(peak, live)
    by_phase = {key: {p: c[p] for p in PHASES + (OTHER,)} for key, c in counts.items()}
    return {"by_phase": by_phase, "tensor_peak_bytes": peak}


def tracked_epoch(impl, epoch: int, path: str) -> dict:
    """One plain epoch under ``memray.Tracker`` writing ``path``; memray's figures (see the module docstring)."""
    memray = _memray()
    Path(path).unlink(missing_ok=True)
    started = time.perf_counter()
    try:
        with memray.Tracker(path):
            m = time_epoch(impl, epoch, monotonic)
    except RuntimeError as exc:
        raise MemrayUnavailable(f"memray could not track: {str(exc).splitlines()[0]}") from exc
    tracked_seconds = time.perf_counter() - started
    reader = memray.FileReader(path)
    kinds = memray.AllocatorType
    tensor = kinds.POSIX_MEMALIGN.value
    freeing = {kinds.FREE.value, kinds.MUNMAP.value, kinds.PYMALLOC_FREE.value}
    return {
        "record": epoch_record(impl, m, 0, epoch, False),
        "memray_version": memray.__version__,
        "tracked_seconds": tracked_seconds,
        "peak_bytes": int(reader.metadata.peak_memory),
        "total_allocations": int(reader.metadata.total_allocations),
        **scan(reader.get_allocation_records(), tensor, freeing),
        "file": Path(path).name,
    }
