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


@dataclass
class WorkerHandle:
    """The parent's view of one worker."""

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

    def summary(self) -> dict:
        """What ``meta.json`` records about this implementation."""
        return {
            "spec": self.spec.spec, "status": self.status, "reason": self.reason,
            "start_seconds": self.start_seconds, "setups": self.setups, "info": self.info,
            "epochs_done": self.epochs_done,
        }


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


class Runner:
    """Runs a workload over several implementations and streams epochs to ``sink``."""

    def __init__(self, workload, dataset, impls, sink: Callable[[str, dict], None], progress=None,
                 timeout: float = DEFAULT_TIMEOUT, on_change: Callable[[], None] = None):
        self.workload = workload
        self.dataset = dataset
        self.handles = [WorkerHandle(spec) for spec in impls]
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
                self._start(h)
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
            h.conn.send(("setup", round_))
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
                h.conn.send(("epoch", round_, epoch))
                record = self._await(h, "epoch", self.timeout)
                if record:
                    self.sink(h.name, record)
                    h.epochs_done += 1
                    if self.progress:
                        self.progress.advance()

    def _live(self) -> list:
        return [h for h in self.handles if h.alive]

    def _status(self, text: str) -> None:
        if self.progress:
            self.progress.status(text)

    def _start(self, h: WorkerHandle) -> None:
        """Spawn a worker with SIGINT ignored from its first instruction (Ctrl-C is the parent's)."""
        parent, child = self._mp.Pipe()
        h.process = self._mp.Process(
            target=worker.main, args=(child, h.spec.spec, self.workload, self.dataset),
            name=f"perfsuite-{h.name}", daemon=True,
        )
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main_thread else None
        try:
            h.process.start()
        finally:
            if main_thread:
                signal.signal(signal.SIGINT, previous)
        child.close()
        h.conn = parent

    def _await(self, h: WorkerHandle, expected: str, timeout: float):
        """The payload of the worker's next answer, or ``None`` after marking it failed."""
        try:
            if not h.conn.poll(timeout):
                h.process.kill()
                self._fail(h, f"no answer within {timeout:g} s; the worker was stopped (raise --timeout if it is just slow)")
                return None
            message = h.conn.recv()
        except (EOFError, ConnectionError, OSError):
            self._fail(h, _exit_reason(h.process))
            return None
        if message[0] == "error":
            h.traceback = message[2]
            self._fail(h, message[1])
            return None
        if message[0] != expected:
            self._fail(h, f"protocol error: expected {expected!r}, got {message[0]!r}")
            return None
        return message[1]

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
            if h.process is None:
                continue
            if not graceful:
                h.process.kill()
            elif h.process.is_alive():
                try:
                    h.conn.send(("stop",))
                except (OSError, ValueError):
                    h.process.kill()
            h.process.join(timeout=10)
            if h.process.is_alive():
                h.process.kill()
                h.process.join(timeout=5)
            if h.alive:
                h.status, h.reason = "interrupted", "the run was interrupted"
            h.conn.close()
