"""The process's resident-set high-water mark, reset per epoch where Linux allows it.

Linux keeps the peak resident set size of a process (``VmHWM`` in
``/proc/self/status``); writing ``5`` to ``/proc/self/clear_refs`` resets it
to the current size, so the peak read after an epoch is that epoch's own.
Where the reset is not allowed the peak is the process's since it started
(``reset`` is then ``False`` in what :func:`peak` returns); where there is no
``/proc`` it is ``resource.getrusage``'s ``ru_maxrss``.

:func:`release` hands memory a profiler kept back to the system (a
collection of reference cycles, then glibc's ``malloc_trim``), so the
epochs after a profiled one start from the same resident set as before it.
"""

import ctypes
import ctypes.util
import gc
import resource
from pathlib import Path

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
_state = {"reset": False}


def reset_peak() -> bool:
    """Reset the peak RSS to the current RSS; whether the kernel allowed it."""
    try:
        CLEAR_REFS.write_text("5")
    except OSError:
        _state["reset"] = False
        return False
    _state["reset"] = True
    return True


def _status_kib(field: str) -> int | None:
    try:
        lines = STATUS.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return None


def peak() -> dict:
    """``{"bytes": peak RSS, "reset": whether it was reset before, "source": where it was read}``."""
    kib = _status_kib("VmHWM")
    if kib is None:
        return {
            "bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "reset": False,
            "source": "getrusage",
        }
    return {"bytes": kib * 1024, "reset": _state["reset"], "source": "VmHWM"}


def _libc():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def release() -> bool:
    """Collect reference cycles and return freed heap to the system; whether ``malloc_trim`` was available."""
    gc.collect()
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None)
    if trim is None:
        return False
    trim(0)
    return True
