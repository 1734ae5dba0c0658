"""The worker process of ``perfsuite flame`` and ``perfsuite trace``, and the parent's handle on it.

One implementation per worker process, as in ``perfsuite run``: the worker
loads the data, builds the implementation and answers commands over a pipe:

* ``("setup",)`` — build the implementation from the shared initial parameters;
* ``("epochs", first, count, warmup)`` — run and time ``count`` epochs in one
  call of :func:`measured_epochs` (so a sampler attached for them sees one
  uninterrupted stretch of training, and the function is a landmark in the
  flame graph), answering their timer records;
* ``("trace", first, warmup, active, path, top)`` — profile epochs with
  torch.profiler (:mod:`perfsuite.profile.torchtrace`);
* ``("memory", first, count, profiled)`` — epochs with or without
  torch.profiler's memory events (:mod:`perfsuite.profile.allocations`);
* ``("memray", epoch, path)`` — one epoch under memray
  (:mod:`perfsuite.profile.memraycheck`); when memray cannot track here the
  answer is ``{"unavailable": reason}`` and the worker goes on;
* ``("stop",)``.

Accuracy is not evaluated (it would run between sampled epochs). An
exception in the worker comes back as one line and ends the worker; the
parent raises it as :class:`WorkerFailure` and goes on with the next
implementation.
"""

import torch

from perfsuite.core.clock import monotonic
from perfsuite.core.errors import RunFailure
from perfsuite.core.phases import time_epoch
from perfsuite.measure import processes
from perfsuite.measure.worker import WorkerState, epoch_record
from perfsuite.profile import allocations, memraycheck, torchtrace
from perfsuite.profile.stacks import Attribution

STARTUP_TIMEOUT = 600.0


class WorkerFailure(RunFailure):
    """The worker failed, died or hung; the message is one line."""


def measured_epochs(impl, first: int, count: int, warmup: bool = False, phase_range=None) -> list:
    """Run and time epochs ``first`` .. ``first + count - 1``; their :class:`~perfsuite.results.record.EpochRecord`."""
    records = []
    for epoch in range(first, first + count):
        m = time_epoch(impl, epoch, monotonic, phase_range)
        records.append(epoch_record(impl, m, 0, epoch, warmup))
    return records


def answer(state: WorkerState, command: str, args):
    """The answer to ``setup``, ``epochs``, ``trace``, ``memory`` or ``memray``."""
    if command == "setup":
        return state.setup(0)
    if command == "epochs":
        return measured_epochs(state.impl, *args)
    if command == "trace":
        return torchtrace.profile_epochs(state.impl, *args)
    if command == "memory":
        return allocations.memory_epochs(state.impl, *args)
    if command == "memray":
        try:
            return memraycheck.tracked_epoch(state.impl, *args)
        except memraycheck.MemrayUnavailable as exc:
            return {"unavailable": str(exc)}
    raise ValueError(f"unknown command {command!r}")


def main(conn, spec: str, workload, dataset, side: str | None = None) -> None:
    """Entry point of the worker process; with a ``side`` folder (``perfsuite ab``) the implementation is imported
    from it."""

    def start():
        state = WorkerState(spec, workload, dataset, side)
        return state, {"threads": torch.get_num_threads(), "attribution": Attribution().to_dict()}

    processes.child_main(conn, start, answer)


class WorkerClient:
    """The parent's handle on one profiling worker."""

    def __init__(self, spec: str, workload, dataset, timeout: float, side: str | None = None):
        self.spec = spec
        self.side = side
        self.workload = workload
        self.dataset = dataset
        self.timeout = timeout
        self.process = None
        self.conn = None
        self.ready = {}

    @property
    def pid(self) -> int:
        """The worker's process id (what py-spy attaches to)."""
        return self.process.pid

    def start(self) -> dict:
        """Start the worker and wait until it has loaded the data; returns its ``ready`` facts."""
        self.process, self.conn = processes.spawn(
            main, (self.spec, self.workload, self.dataset, self.side), f"perfsuite-profile-{self.spec}"
        )
        self.ready = self._answer("ready", max(self.timeout, STARTUP_TIMEOUT))
        return self.ready

    def call(self, command: str, *args):
        """Send one command and return the worker's answer (or raise :class:`WorkerFailure`)."""
        try:
            self.conn.send((command, *args))
        except (OSError, ValueError) as exc:
            raise WorkerFailure(processes.exit_reason(self.process)) from exc
        return self._answer(command, self.timeout)

    def _answer(self, expected: str, timeout: float):
        try:
            return processes.receive(self.process, self.conn, expected, timeout)
        except processes.WorkerLost as lost:
            raise WorkerFailure(lost.reason) from None

    def close(self) -> None:
        """Ask the worker to stop; kill it if it does not."""
        if self.process is None:
            return
        processes.stop_process(self.process, self.conn)
