"""The machine's state around each epoch, and a calibration probe between passes, both taken in the parent.

The runner (:mod:`perfsuite.measure.runner`) calls a :class:`Monitor` while
every worker is idle: :meth:`Monitor.before_pass` before each pass,
:meth:`Monitor.epoch_started` just before it sends a worker an epoch and
:meth:`Monitor.epoch_finished` once the epoch's answer is in. None of this
runs inside a timed region: the epochs are timed in the workers.

:class:`RunMonitor` hands what it reads to the results writer:

* ``machine.csv`` (:class:`MachineSampler`): steal and iowait shares of all
  CPU time over the epoch (``/proc/stat`` deltas), the 1-minute load average
  (``/proc/loadavg``), processes in state R outside this run's own process
  tree (``/proc/<pid>/stat``; the main thread's state of each process), and
  the mean CPU frequency (``/sys/devices/system/cpu/cpu*/cpufreq/scaling_cur_freq``,
  else ``cpu MHz`` in ``/proc/cpuinfo``);
* ``calibration.csv`` (:class:`CalibrationProbe`): a fixed small sgemm
  repeated for a fixed time and a memory copy of a fixed tensor, at the
  workload's thread count (the parent's own count is restored after).

The ``/proc`` and ``/sys`` roots and the clocks are injectable for tests. A
reading that fails gives NaN, and its reason is written in the row's ``note``
the first time it happens; it never stops a run.
"""

import math
import os
import time
from pathlib import Path

import torch

from perfsuite.core.clock import Clock

PROC = Path("/proc")
SYS = Path("/sys")
READ_ERRORS = (OSError, ValueError, IndexError)
"""What reading and parsing a /proc or /sys file may raise (missing file, unexpected format)."""


class Monitor:
    """What the runner calls between epochs and passes; this base does nothing."""

    def before_pass(self, round_: int, epoch: int) -> None:
        """Called before the pass ``(round_, epoch)`` starts, while every worker is idle."""

    def epoch_started(self, name: str, round_: int, epoch: int) -> None:
        """Called just before the epoch ``(round_, epoch)`` is sent to ``name``'s worker."""

    def epoch_finished(self, name: str, round_: int, epoch: int) -> None:
        """Called once ``name``'s worker has answered the epoch."""


def read_cpu_times(proc: Path = PROC) -> tuple:
    """``(steal, iowait, total)`` jiffies of all CPUs from the ``cpu`` line of ``/proc/stat``.

    The total is user + nice + system + idle + iowait + irq + softirq + steal
    (guest time is already counted in user and nice).
    """
    for line in (Path(proc) / "stat").read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            values = [int(v) for v in fields[1:9]]
            values += [0] * (8 - len(values))
            return values[7], values[4], sum(values)
    raise ValueError("no cpu line in /proc/stat")


def cpu_shares(before: tuple, after: tuple) -> tuple:
    """``(steal share, iowait share)`` of the CPU time between two :func:`read_cpu_times` readings."""
    total = after[2] - before[2]
    if total <= 0:
        return math.nan, math.nan
    return (after[0] - before[0]) / total, (after[1] - before[1]) / total


def read_loadavg(proc: Path = PROC) -> float:
    """The 1-minute load average."""
    return float((Path(proc) / "loadavg").read_text().split()[0])


def read_cpu_mhz(sys_root: Path = SYS, proc: Path = PROC) -> float:
    """Mean current frequency of the CPUs in MHz: cpufreq's ``scaling_cur_freq`` (kHz), else ``/proc/cpuinfo``."""
    files = sorted((Path(sys_root) / "devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_cur_freq"))
    if files:
        return sum(int(f.read_text()) for f in files) / len(files) / 1000.0
    found = [
        float(line.split(":", 1)[1])
        for line in (Path(proc) / "cpuinfo").read_text().splitlines()
        if line.lower().startswith("cpu mhz")
    ]
    if not found:
        raise ValueError("no cpu MHz in /proc/cpuinfo and no cpufreq")
    return sum(found) / len(found)


def _process_states(proc: Path) -> dict:
    """``pid: (state, parent pid)`` of every process listed in ``proc`` (ones that vanish meanwhile are left out)."""
    states = {}
    for entry in Path(proc).iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        fields = text[text.rindex(")") + 2 :].split()
        states[int(entry.name)] = (fields[0], int(fields[1]))
    return states


def other_running(proc: Path = PROC, own: int | None = None) -> int:
    """Processes in state R that are neither ``own`` (default: this process) nor among its descendants."""
    own = os.getpid() if own is None else own
    states = _process_states(proc)
    children = {}
    for pid, (_, parent) in states.items():
        children.setdefault(parent, []).append(pid)
    mine, todo = set(), [own]
    while todo:
        pid = todo.pop()
        mine.add(pid)
        todo.extend(children.get(pid, []))
    return sum(1 for pid, (state, _) in states.items() if state == "R" and pid not in mine)


class _Readings:
    """Calls readers, turning a failure into NaN and a reason that is given once per kind of reading."""

    def __init__(self, errors: tuple = READ_ERRORS):
        self.errors = errors
        self.reported = set()
        self.notes = []

    def take(self, what: str, read):
        """``read()``, or NaN when it raises one of the expected errors (its reason kept once)."""
        try:
            return read()
        except self.errors as exc:
            if what not in self.reported:
                self.reported.add(what)
                self.notes.append(f"{what}: {type(exc).__name__}: {exc}")
            return math.nan

    def note(self) -> str:
        """The reasons gathered since the last call (empty when none)."""
        text, self.notes = "; ".join(self.notes), []
        return text


class MachineSampler:
    """Reads the machine state at the start and end of an epoch (roots and clock injectable)."""

    def __init__(self, proc: Path = PROC, sys_root: Path = SYS, own: int | None = None, clock: Clock = time.monotonic):
        self.proc, self.sys_root, self.own, self.clock = Path(proc), Path(sys_root), own, clock
        self.readings = _Readings()

    def start(self) -> tuple:
        """The state at the start of an epoch: ``(clock, cpu times)``."""
        return self.clock(), self.readings.take("/proc/stat", lambda: read_cpu_times(self.proc))

    def finish(self, started: tuple) -> dict:
        """The row of ``machine.csv`` (without impl, round, epoch) for the epoch begun at ``started``."""
        began, before = started
        after = self.readings.take("/proc/stat", lambda: read_cpu_times(self.proc))
        steal, iowait = (math.nan, math.nan)
        if isinstance(before, tuple) and isinstance(after, tuple):
            steal, iowait = cpu_shares(before, after)
        return {
            "seconds": self.clock() - began,
            "steal_share": steal,
            "iowait_share": iowait,
            "loadavg_1m": self.readings.take("/proc/loadavg", lambda: read_loadavg(self.proc)),
            "other_running": self.readings.take("/proc/<pid>/stat", lambda: other_running(self.proc, self.own)),
            "cpu_mhz": self.readings.take("cpu frequency", lambda: read_cpu_mhz(self.sys_root, self.proc)),
            "note": self.readings.note(),
        }


SGEMM_SIZE = 256
"""The calibration sgemm multiplies two SGEMM_SIZE × SGEMM_SIZE float32 matrices."""
SGEMM_SECONDS = 0.02
"""How long the sgemm is repeated."""
COPY_BYTES = 32 * 1024 * 1024
"""Size of the tensor the memory probe copies."""
COPIES = 4
"""Timed copies (after one untimed copy that touches the pages)."""
PROBE_ERRORS = (RuntimeError, MemoryError)
"""What a torch operation of the probe may raise (allocation failure, a broken build): recorded as NaN."""


class CalibrationProbe:
    """A short sgemm and memory-copy measurement at a fixed thread count, for ``calibration.csv``."""

    def __init__(self, threads: int, clock: Clock = time.perf_counter, seconds: float = SGEMM_SECONDS):
        self.threads, self.clock, self.seconds = threads, clock, seconds
        self.readings = _Readings(PROBE_ERRORS)
        self._buffers = None

    def measure(self) -> dict:
        """``threads``, ``sgemm_gflops``, ``copy_gbps``, ``probe_seconds`` and ``note`` of one probe."""
        start = self.clock()
        saved = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            gflops = self.readings.take("sgemm", self._sgemm)
            gbps = self.readings.take("memory copy", self._copy)
        finally:
            torch.set_num_threads(saved)
        return {
            "threads": self.threads,
            "sgemm_gflops": gflops,
            "copy_gbps": gbps,
            "probe_seconds": self.clock() - start,
            "note": self.readings.note(),
        }

    def _sgemm(self) -> float:
        g = torch.Generator().manual_seed(0)
        a = torch.randn(SGEMM_SIZE, SGEMM_SIZE, generator=g)
        b = torch.randn(SGEMM_SIZE, SGEMM_SIZE, generator=g)
        out = torch.empty(SGEMM_SIZE, SGEMM_SIZE)
        torch.mm(a, b, out=out)
        calls, start = 0, self.clock()
        while calls == 0 or self.clock() - start < self.seconds:
            torch.mm(a, b, out=out)
            calls += 1
        elapsed = self.clock() - start
        return 2.0 * SGEMM_SIZE**3 * calls / elapsed / 1e9 if elapsed > 0 else math.nan

    def _copy(self) -> float:
        if self._buffers is None:
            source = torch.ones(COPY_BYTES // 4)
            self._buffers = source, torch.empty_like(source)
        source, target = self._buffers
        target.copy_(source)
        start = self.clock()
        for _ in range(COPIES):
            target.copy_(source)
        elapsed = self.clock() - start
        return COPY_BYTES * COPIES / elapsed / 1e9 if elapsed > 0 else math.nan


class RunMonitor(Monitor):
    """Writes the machine state of every epoch and the calibration probe of every pass through ``out``.

    ``out`` is the run's :class:`~perfsuite.results.writer.ResultsWriter`;
    ``probe`` may be ``None`` (no calibration).
    """

    def __init__(self, out, sampler: MachineSampler, probe: CalibrationProbe | None):
        self.out, self.sampler, self.probe = out, sampler, probe
        self._started = {}

    def before_pass(self, round_: int, epoch: int) -> None:
        """Run the calibration probe and append its row."""
        if self.probe is not None:
            self.out.append_calibration({"round": round_, "epoch": epoch, **self.probe.measure()})

    def epoch_started(self, name: str, round_: int, epoch: int) -> None:
        """Read the state at the start of the epoch."""
        self._started[name] = self.sampler.start()

    def epoch_finished(self, name: str, round_: int, epoch: int) -> None:
        """Read the state at its end and append the epoch's row."""
        row = self.sampler.finish(self._started.pop(name))
        self.out.append_machine({"impl": name, "round": round_, "epoch": epoch, **row})
