"""The worker process of ``perfsuite flame`` and ``perfsuite trace``, and the parent's handle on it.

One implementation per worker process, as in ``perfsuite run``: the worker
loads the data, builds the implementation and answers commands over a pipe:

* ``("setup",)`` — build the implementation from the shared initial parameters;
* ``("epochs", first, count, warmup)`` — run and time ``count`` epochs in one
  call of :func:`measured_epochs` (so a sampler attached for them sees one
  uninterrupted stretch of training, and the function is a landmark in the
  flame graph), answering their timer records;
* ``("trace", first, warmup, active, path, top)`` — profile epochs with
  torch.profiler (:mod:`perfsuite.torchtrace`);
* ``("stop",)``.

Accuracy is not evaluated (it would run between sampled epochs). An
exception in the worker comes back as one line and ends the worker; the
parent raises it as :class:`WorkerFailure` and goes on with the next
implementation.
"""

import multiprocessing
import signal
import time
import traceback

import torch

from perfsuite.clock import monotonic
from perfsuite.errors import RunFailure, error_message
from perfsuite.phases import time_epoch
from perfsuite.runner import stop_process
from perfsuite.stacks import Attribution

STARTUP_TIMEOUT = 600.0


class WorkerFailure(RunFailure):
    """The worker failed, died or hung; the message is one line."""


def epoch_record(epoch: int, m, warmup: bool) -> dict:
    """The timer record of one epoch, in the form :class:`~perfsuite.results.ResultsWriter` appends."""
    return {"round": 0, "epoch": epoch, "warmup": warmup, "wall": m.wall, "phases": m.phases.tolist(),
            "losses": m.losses.tolist(), "extra": m.extra,
            "train_accuracy": float("nan"), "test_accuracy": float("nan")}


def measured_epochs(impl, first: int, count: int, warmup: bool = False, phase_range=None) -> list:
    """Run and time epochs ``first`` .. ``first + count - 1``; their timer records."""
    measurements = []
    for epoch in range(first, first + count):
        measurements.append((epoch, time_epoch(impl, epoch, monotonic, phase_range)))
    return [epoch_record(epoch, m, warmup) for epoch, m in measurements]


def _serve(conn, state) -> None:
    while True:
        command, *args = conn.recv()
        if command == "stop":
            return
        if command == "setup":
            answer = state.setup(0)
        elif command == "epochs":
            answer = measured_epochs(state.impl, *args)
        elif command == "trace":
            from perfsuite import torchtrace

            answer = torchtrace.profile_epochs(state.impl, *args)
        else:
            raise ValueError(f"unknown command {command!r}")
        conn.send((command, answer))


def main(conn, spec: str, workload, dataset) -> None:
    """Entry point of the worker process."""
    from perfsuite.worker import WorkerState

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        start = time.perf_counter()
        state = WorkerState(spec, workload, dataset)
        conn.send(("ready", {"start_seconds": time.perf_counter() - start, "threads": torch.get_num_threads(),
                             "attribution": Attribution().to_dict()}))
        _serve(conn, state)
    except (EOFError, BrokenPipeError):
        return
    except BaseException as exc:
        conn.send(("error", error_message(exc), traceback.format_exc()))
    finally:
        conn.close()


def exit_reason(process) -> str:
    """Why a worker process that stopped answering is gone."""
    process.join(timeout=5)
    code = process.exitcode
    if code is None:
        return "the worker stopped answering"
    if code < 0:
        try:
            return f"the worker was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"the worker was killed by signal {-code}"
    return f"the worker exited early with status {code}"


class WorkerClient:
    """The parent's handle on one profiling worker."""

    def __init__(self, spec: str, workload, dataset, timeout: float):
        self.spec = spec
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
        mp = multiprocessing.get_context("spawn")
        parent, child = mp.Pipe()
        self.process = mp.Process(target=main, args=(child, self.spec, self.workload, self.dataset),
                                  name=f"perfsuite-profile-{self.spec}", daemon=True)
        self.process.start()
        child.close()
        self.conn = parent
        self.ready = self._answer("ready", max(self.timeout, STARTUP_TIMEOUT))
        return self.ready

    def call(self, command: str, *args):
        """Send one command and return the worker's answer (or raise :class:`WorkerFailure`)."""
        try:
            self.conn.send((command, *args))
        except (OSError, ValueError) as exc:
            raise WorkerFailure(exit_reason(self.process)) from exc
        return self._answer(command, self.timeout)

    def _answer(self, expected: str, timeout: float):
        try:
            if not self.conn.poll(timeout):
                self.process.kill()
                raise WorkerFailure(f"no answer within {timeout:g} s; the worker was stopped (raise --timeout if it is just slow)")
            message = self.conn.recv()
        except (EOFError, ConnectionError, OSError) as exc:
            raise WorkerFailure(exit_reason(self.process)) from exc
        if message[0] == "error":
            raise WorkerFailure(message[1])
        if message[0] != expected:
            raise WorkerFailure(f"protocol error: expected {expected!r}, got {message[0]!r}")
        return message[1]

    def close(self) -> None:
        """Ask the worker to stop; kill it if it does not."""
        if self.process is None:
            return
        stop_process(self.process, self.conn)
