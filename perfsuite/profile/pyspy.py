"""Driving ``py-spy record`` against a running worker, with one-line errors.

:class:`Recorder` starts ``py-spy record --pid PID --format FMT -o FILE``,
waits until py-spy says it is sampling (so no measured epoch starts before
the sampler is attached), and stops it with SIGINT, which makes py-spy write
its output and exit. Samples are taken with ``--idle`` so that every moment
of wall time is sampled, like the timers' wall clock, whether the thread is
computing, waiting on a lock or descheduled by a busy machine.

Where the user may (root), py-spy runs at a raised priority (``nice -n
-10``): the worker's compute phases keep every core busy with its own
threads, and a sampler that waits for a core takes its samples late, past
the end of the phase they were due in, which skews the shares toward the
phases that leave a core free (single-threaded batching).

Failures become :class:`SamplerError` (one line): py-spy missing from PATH,
ptrace not permitted (with how to allow it), the target gone, or py-spy
ending without its output.
"""

import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path

from perfsuite.core.errors import RunFailure

FORMATS = ("raw", "flamegraph", "speedscope")
"""py-spy output formats: collapsed stacks, an SVG flame graph, a speedscope JSON profile."""
ATTACHED = "Sampling process"
PTRACE_WORDS = ("permission denied", "operation not permitted", "ptrace")
PTRACE_HELP = (
    "run perfsuite as root, start the container with --cap-add SYS_PTRACE, "
    "or allow it with: echo 0 > /proc/sys/kernel/yama/ptrace_scope"
)
INSTALL_HELP = "py-spy is not installed or not on PATH: pip install py-spy"


class SamplerError(RunFailure):
    """py-spy could not record; the message is one line."""


class SamplerUnavailable(SamplerError):
    """py-spy cannot record on this machine at all (missing, or ptrace not permitted)."""


def find_pyspy() -> str:
    """The path of the ``py-spy`` executable on PATH, or :class:`SamplerUnavailable`."""
    path = shutil.which("py-spy")
    if path is None:
        raise SamplerUnavailable(INSTALL_HELP)
    return path


def explain(output: str, pid: int, returncode) -> SamplerError:
    """The one-line error for py-spy's ``output`` when it ended with ``returncode``."""
    text = output.lower()
    if any(word in text for word in PTRACE_WORDS):
        return SamplerUnavailable(f"py-spy may not attach to process {pid} (ptrace not permitted): {PTRACE_HELP}")
    lines = [ln.strip() for ln in output.splitlines() if ln.strip() and not ln.lstrip().startswith(("0:", "1:", "2:"))]
    detail = next((ln for ln in lines if ln.lower().startswith("error")), lines[-1] if lines else "no output")
    return SamplerError(f"py-spy stopped with status {returncode} while recording process {pid}: {detail}")


SAMPLER_NICE = -10
"""Niceness py-spy runs at when it may be raised (root)."""


def sampler_nice() -> int:
    """The niceness py-spy will run at: :data:`SAMPLER_NICE` for root where ``nice`` exists, else 0."""
    return SAMPLER_NICE if os.geteuid() == 0 and shutil.which("nice") else 0


def command(binary: str, pid: int, fmt: str, out: Path, rate: int, native: bool, nice: int = 0) -> list:
    """The ``py-spy record`` command line for one recording (run under ``nice -n NICE`` when ``nice``)."""
    cmd = [binary, "record", "--pid", str(pid), "--rate", str(rate), "--format", fmt, "--output", str(out), "--idle"]
    cmd += ["--native"] if native else []
    return ([shutil.which("nice"), "-n", str(nice)] + cmd) if nice else cmd


class Recorder:
    """One ``py-spy record`` attached to ``pid``, writing ``out`` in ``fmt``."""

    def __init__(self, binary: str, pid: int, fmt: str, out: Path, rate: int, native: bool = False, nice: int = 0):
        if fmt not in FORMATS:
            raise ValueError(f"unknown py-spy format {fmt!r}")
        self.pid = pid
        self.out = Path(out)
        self.cmd = command(binary, pid, fmt, self.out, rate, native, nice)
        self.lines = []
        self.attached = threading.Event()
        self.process = None
        self._reader = None

    def start(self, timeout: float = 60.0) -> None:
        """Start py-spy and return once it samples; :class:`SamplerError` if it ends first."""
        self.process = subprocess.Popen(
            self.cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        self._reader = threading.Thread(target=self._read, name="py-spy-output", daemon=True)
        self._reader.start()
        if not self.attached.wait(timeout):
            self.kill()
            raise SamplerError(f"py-spy did not start sampling process {self.pid} within {timeout:g} s")
        if ATTACHED not in self.output:
            self._reader.join(timeout=10)
            raise explain(self.output, self.pid, self.process.wait())

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)
            if ATTACHED in line:
                self.attached.set()
        self.process.wait()
        self.attached.set()

    @property
    def output(self) -> str:
        """Everything py-spy printed so far."""
        return "".join(self.lines)

    def stop(self, timeout: float = 120.0) -> Path:
        """Stop sampling (SIGINT), wait for py-spy to write its file; returns the file's path."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise SamplerError(f"py-spy did not finish writing {self.out.name} within {timeout:g} s") from None
        self._reader.join(timeout=10)
        if code != 0 or not self.out.is_file():
            raise explain(self.output, self.pid, code)
        return self.out

    def kill(self) -> None:
        """End py-spy at once (its output is lost)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.process is not None:
            self.process.wait()
            if self._reader is not None:
                self._reader.join(timeout=10)


def ptrace_scope() -> str:
    """The Yama ptrace scope of this kernel, or ``""`` where there is none (for the run's metadata)."""
    path = "/proc/sys/kernel/yama/ptrace_scope"
    return Path(path).read_text().strip() if os.path.exists(path) else ""
