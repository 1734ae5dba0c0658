"""The parent's handle on one run worker: its process, its pipe and what ``meta.json`` records of it."""

from dataclasses import dataclass, field

from perfsuite.core.registry import ImplSpec
from perfsuite.measure import worker
from perfsuite.measure.processes import receive, spawn, stop_process


@dataclass
class WorkerHandle:
    """The parent's view of one worker: a spawned process and the pipe to it."""

    spec: ImplSpec
    status: str = "starting"
    reason: str = ""
    traceback: str = ""
    start_seconds: float | None = None
    setups: list = field(default_factory=list)
    info: dict = field(default_factory=dict)
    epochs_done: int = 0
    processes: int = 0
    """Processes started for this worker (more than one with fresh workers per round)."""
    side: str | None = None
    """The folder whose implementations the worker imports (``perfsuite ab``), or ``None`` for the installed ones."""
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
            "spec": self.spec.spec,
            "status": self.status,
            "reason": self.reason,
            "start_seconds": self.start_seconds,
            "setups": self.setups,
            "info": self.info,
            "epochs_done": self.epochs_done,
            "processes": self.processes,
        }

    def start(self, workload, dataset) -> None:
        """Spawn the worker (SIGINT ignored from its first instruction: Ctrl-C is the parent's)."""
        self.process, self.conn = spawn(
            worker.main, (self.spec.spec, workload, dataset, self.side), f"perfsuite-{self.name}"
        )

    def send(self, message: tuple) -> None:
        """Send one command to the worker."""
        self.conn.send(message)

    def receive(self, expected: str, timeout: float):
        """The payload of the worker's next answer; raises :class:`WorkerLost` instead of a bad one."""
        return receive(self.process, self.conn, expected, timeout)

    def records(self, payload) -> list:
        """The epoch records of one ``epoch`` answer (one per rank; here one)."""
        return [payload]

    def kill(self) -> None:
        """Stop the worker at once."""
        self.process.kill()

    def stop(self, graceful: bool) -> None:
        """Ask the worker to stop (or, after an interrupt, kill it) and reap it."""
        stop_process(self.process, self.conn, graceful)
