"""The runner: one worker process per implementation, epochs interleaved round by round.

Within each round every implementation is set up afresh from the same initial
parameters; then epoch 0 of A, B, C, epoch 1 of A, B, C, … so that drift of
the machine hits all of them alike. Only one worker computes at a time. Each
finished epoch is handed to a ``sink`` (the results writer appends it to
disk) before the next one starts. A worker that fails, dies or hangs is
recorded as failed with its reason and the others go on. How many epochs
each round has, and which implementations each pass measures, is the
plan's decision (:mod:`perfsuite.measure.sampling`: fixed, or adaptive
with ``--precision``), taken between passes. A ``monitor``
(:class:`~perfsuite.measure.machine.Monitor`) is called before each pass
and around each epoch, while the workers are idle: it records the
machine's state and a calibration probe (:mod:`perfsuite.measure.machine`).
With ``fresh_workers``, every round after the first starts in new worker
processes, so rounds replicate what differs between two processes of the
same code (memory layout, thread placement) and not only epochs. With a
``shuffle`` generator (``perfsuite ab``), each pass runs its
implementations in an order drawn from it (random interleaving); without
one, in the order given. ``sides`` maps a display name to the folder its
worker imports the implementation from (:mod:`perfsuite.measure.sides`).
"""

import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from perfsuite.core.options import DEFAULT_TIMEOUT
from perfsuite.core.registry import ImplSpec
from perfsuite.measure.ddp_launch import TorchrunHandle
from perfsuite.measure.handle import WorkerHandle
from perfsuite.measure.machine import Monitor
from perfsuite.measure.processes import STARTUP_TIMEOUT, WorkerLost
from perfsuite.measure.sampling import FixedPlan


def handle_for(spec: ImplSpec, workload, timeout: float = DEFAULT_TIMEOUT, side: str | None = None) -> WorkerHandle:
    """A single-process worker handle (importing from ``side`` if given), or a torchrun-launched one (multi-rank)."""
    if getattr(spec.cls, "distributed", False):
        return TorchrunHandle(spec, nproc=workload.nproc, timeout=timeout)
    return WorkerHandle(spec, side=side)


class Runner:
    """Runs a workload over several implementations and streams epochs to ``sink``."""

    def __init__(
        self,
        workload,
        dataset,
        impls,
        sink: Callable[[str, dict], None],
        progress=None,
        timeout: float = DEFAULT_TIMEOUT,
        on_change: Callable[[], None] = None,
        plan: FixedPlan = None,
        monitor: Monitor = None,
        shuffle: random.Random | None = None,
        sides: dict | None = None,
        fresh_workers: bool = False,
    ):
        self.workload = workload
        self.dataset = dataset
        self.handles = [handle_for(spec, workload, timeout, (sides or {}).get(spec.name)) for spec in impls]
        self.shuffle = shuffle
        self.sink = sink
        self.progress = progress
        self.timeout = timeout
        self.on_change = on_change or (lambda: None)
        self.plan = plan or FixedPlan(workload)
        self.monitor = monitor or Monitor()
        self.fresh_workers = fresh_workers
        self._measuring = []

    def run(self) -> list:
        """Run every round; returns the worker handles with their final status."""
        for h in self.handles:
            reason = h.spec.unavailable_reason
            if reason:
                self._set(h, "unavailable", reason)
        live = [h for h in self.handles if h.alive]
        wl = self.workload
        if self.progress:
            self.progress.start(self.plan.total(len(live)))
        interrupted = True
        try:
            self._start(live)
            for round_ in range(wl.repeats):
                if self.plan.done:
                    break
                if round_ and self.fresh_workers:
                    self._restart()
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

    def _start(self, handles: list) -> None:
        """Start the workers of ``handles`` (all at once) and wait until each is ready."""
        for h in handles:
            h.start(self.workload, self.dataset)
        for h in handles:
            ready = self._await(h, "ready", max(self.timeout, STARTUP_TIMEOUT))
            if ready:
                h.start_seconds = ready["start_seconds"] if h.start_seconds is None else h.start_seconds
                h.processes += 1
                h.status = "running"

    def _restart(self) -> None:
        """``fresh_workers``: end every live worker and start a new process for it, so a round replicates processes."""
        live = self._live()
        with ThreadPoolExecutor(max(len(live), 1)) as pool:  # the workers exit together, not one after another
            list(pool.map(lambda h: h.stop(graceful=True), live))
        self._status("starting fresh workers for the next round")
        self._start(live)

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
        epoch = 0
        while due := self._due(round_, epoch):
            self.monitor.before_pass(round_, epoch)
            for h in due:
                self._status(
                    f"{h.name} · {self.plan.label(round_, epoch)}" + (" (warm-up)" if epoch < wl.warmup else "")
                )
                self.monitor.epoch_started(h.name, round_, epoch)
                h.send(("epoch", round_, epoch))
                answer = self._await(h, "epoch", self.timeout)
                if answer:
                    self.monitor.epoch_finished(h.name, round_, epoch)
                    records = h.records(answer)
                    for record in records:
                        self.sink(h.name, record)
                    self.plan.record(h.name, records)
                    h.epochs_done += 1
                    if self.progress:
                        self.progress.advance()
            epoch += 1

    def _due(self, round_: int, epoch: int) -> list:
        """The live handles the plan measures in the pass ``(round_, epoch)``; a change of them updates meta.json."""
        names = self.plan.due(round_, epoch, [h.name for h in self._live()])
        if names != self._measuring:
            self._measuring = names
            self.on_change()
        due = [h for h in self._live() if h.name in names]
        if self.shuffle:
            self.shuffle.shuffle(due)
        return due

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
