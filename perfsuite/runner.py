"""The runner: one worker process per implementation, epochs interleaved round by round.

Within each round every implementation is set up afresh from the same initial
parameters; then epoch 0 of A, B, C, epoch 1 of A, B, C, … so that drift of
the machine hits all of them alike. Only one worker computes at a time. Each
finished epoch is handed to a ``sink`` (the results writer appends it to
disk) before the next one starts. A worker that fails, dies or hangs is
recorded as failed with its reason and the others go on.
"""

import multiprocessing
import signal
import threading
from dataclasses import dataclass, field
from typing import Callable, Optional

from perfsuite import worker
from perfsuite.registry import ImplSpec

DEFAULT_TIMEOUT = 900.0
STARTUP_TIMEOUT = 300.0


def _exit_reason(process) -> str:
    process.join(timeout=5)
    code = process.exitcode
    if code is None:
        return "worker stopped answering"
    if code < 0:
        try:
            return f"worker was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"worker was killed by signal {-code}"
    return f"worker exited unexpectedly with status {code}"


class WorkerLost(Exception):
    """A worker failed, died or stopped answering; ``reason`` is the one line to report."""

    def __init__(self, reason: str, traceback: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.traceback = traceback


@dataclass
class WorkerHandle:
    """The parent's view of one worker: a spawned process and the pipe to it."""

    spec: ImplSpec
    status: str = "starting"
    reason: str = ""
    traceback: str = ""
    start_seconds: Optional[float] = None
    setups: list = field(default_factory=list)
    info: dict = field(default_factory=dict)
    epochs_done: int = 0
    process: object = None
    conn: object = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def alive(self) -> bool:
        return self.status in ("starting", "running")

    @property
    def started(self) -> bool:
        """Whether a process was started for this worker."""
        return self.process is not None

    def summary(self) -> dict:
        """What ``meta.json`` records about this implementation."""
        return {
            "spec": self.spec.spec, "status": self.status, "reason": self.reason,
            "start_seconds": self.start_seconds, "setups": self.setups, "info": self.info,
            "epochs_done": self.epochs_done,
        }

    def start(self, mp, workload, dataset) -> None:
        """Spawn the worker with SIGINT ignored from its first instruction (Ctrl-C is the parent's)."""
        parent, child = mp.Pipe()
        self.process = mp.Process(target=worker.main, args=(child, self.spec.spec, workload, dataset),
                                  name=f"perfsuite-{self.name}", daemon=True)
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main_thread else None
        try:
            self.process.start()
        finally:
            if main_thread:
                signal.signal(signal.SIGINT, previous)
        child.close()
        self.conn = parent

    def send(self, message: tuple) -> None:
        """Send one command to the worker."""
        self.conn.send(message)

    def receive(self, expected: str, timeout: float):
        """The payload of the worker's next answer; raises :class:`WorkerLost` instead of a bad one."""
        try:
            if not self.conn.poll(timeout):
                self.kill()
                raise WorkerLost(f"no answer within {timeout:g} s; the worker was stopped (raise --timeout if it is just slow)")
            message = self.conn.recv()
        except (EOFError, ConnectionError, OSError):
            raise WorkerLost(_exit_reason(self.process)) from None
        return checked(message, expected)

    def records(self, payload) -> list:
        """The epoch records of one ``epoch`` answer (one per rank; here one)."""
        return [payload]

    def kill(self) -> None:
        """Stop the worker at once."""
        self.process.kill()

    def stop(self, graceful: bool) -> None:
        """Ask the worker to stop (or, after an interrupt, kill it) and reap it."""
        stop_process(self.process, self.conn, graceful)


def stop_process(process, conn, graceful: bool = True) -> None:
    """Send ``stop`` over ``conn`` (or kill at once when not ``graceful``), reap ``process``, close ``conn``."""
    if not graceful:
        process.kill()
    elif process.is_alive():
        try:
            conn.send(("stop",))
        except (OSError, ValueError):
            process.kill()
    process.join(timeout=10)
    if process.is_alive():
        process.kill()
        process.join(timeout=5)
    conn.close()


def checked(message: tuple, expected: str):
    """The payload of ``message`` if it is the ``expected`` answer; else raise :class:`WorkerLost`."""
    if message[0] == "error":
        raise WorkerLost(message[1], message[2])
    if message[0] != expected:
        raise WorkerLost(f"protocol error: expected {expected!r}, got {message[0]!r}")
    return message[1]


def handle_for(spec: ImplSpec, workload, timeout: float = DEFAULT_TIMEOUT) -> WorkerHandle:
    """A single-process worker handle, or a torchrun-launched one for a multi-rank implementation."""
    if getattr(spec.cls, "distributed", False):
        from perfsuite.ddp_launch import TorchrunHandle

        return TorchrunHandle(spec, nproc=workload.nproc, timeout=timeout)
    return WorkerHandle(spec)


class Runner:
    """Runs a workload over several implementations and streams epochs to ``sink``."""

    def __init__(self, workload, dataset, impls, sink: Callable[[str, dict], None], progress=None,
                 timeout: float = DEFAULT_TIMEOUT, on_change: Callable[[], None] = None):
        self.workload = workload
        self.dataset = dataset
        self.handles = [handle_for(spec, workload, timeout) for spec in impls]
        self.sink = sink
        self.progress = progress
        self.timeout = timeout
        self.on_change = on_change or (lambda: None)
        self._mp = multiprocessing.get_context("spawn")

    def run(self) -> list:
        """Run every round; returns the worker handles with their final status."""
        for h in self.handles:
            reason = h.spec.unavailable_reason
            if reason:
                self._set(h, "unavailable", reason)
        live = [h for h in self.handles if h.alive]
        wl = self.workload
        if self.progress:
            self.progress.start(len(live) * wl.repeats * wl.epochs_per_round)
        interrupted = True
        try:
            for h in live:
                h.start(self._mp, self.workload, self.dataset)
            for h in live:
                ready = self._await(h, "ready", max(self.timeout, STARTUP_TIMEOUT))
                if ready:
                    h.start_seconds = ready["start_seconds"]
                    h.status = "running"
            for round_ in range(wl.repeats):
                self._round(round_)
            for h in self.handles:
                if h.alive:
                    h.status = "ok"
            interrupted = False
        finally:
            self._stop_all(graceful=not interrupted)
            if self.progress:
                self.progress.stop()
        return self.handles

    def _round(self, round_: int) -> None:
        wl = self.workload
        for h in self._live():
            h.send(("setup", round_))
        for h in self._live():
            answer = self._await(h, "setup", self.timeout)
            if answer:
                h.setups.append(answer)
                h.info.update(answer["info"])
        self.on_change()
        for epoch in range(wl.epochs_per_round):
            for h in self._live():
                self._status(f"{h.name} · round {round_ + 1}/{wl.repeats} · epoch {epoch + 1}/{wl.epochs_per_round}"
                             + (" (warm-up)" if epoch < wl.warmup else ""))
                h.send(("epoch", round_, epoch))
                answer = self._await(h, "epoch", self.timeout)
                if answer:
                    for record in h.records(answer):
                        self.sink(h.name, record)
                    h.epochs_done += 1
                    if self.progress:
                        self.progress.advance()

    def _live(self) -> list:
        return [h for h in self.handles if h.alive]

    def _status(self, text: str) -> None:
        if self.progress:
            self.progress.status(text)

    def _await(self, h: WorkerHandle, expected: str, timeout: float):
        """The payload of the worker's next answer, or ``None`` after marking it failed."""
        try:
            return h.receive(expected, timeout)
        except WorkerLost as lost:
            h.traceback = lost.traceback
            self._fail(h, lost.reason)
            return None

    def _fail(self, h: WorkerHandle, reason: str) -> None:
        self._set(h, "failed", reason)
        self.on_change()

    def _set(self, h: WorkerHandle, status: str, reason: str) -> None:
        h.status, h.reason = status, reason
        if self.progress:
            word = "skipped" if status == "unavailable" else "failed"
            self.progress.note(f"perfsuite: {h.name} {word}: {reason}")

    def _stop_all(self, graceful: bool) -> None:
        """Ask every worker to stop (or, after an interrupt, kill it) and reap it."""
        for h in self.handles:
            if not h.started:
                continue
            h.stop(graceful)
            if h.alive:
                h.status, h.reason = "interrupted", "the run was interrupted"
