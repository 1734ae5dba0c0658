"""The worker process: one implementation, its own threads, caches and allocator.

The parent sends commands over a pipe (``setup`` a round, run an ``epoch``,
``stop``); the worker answers each with a message. Any exception in the
implementation is sent back as ``("error", one_line, traceback)`` and ends
the worker, so the parent can record it and carry on with the others.
"""

import torch

from perfsuite.core import data, registry, workloads
from perfsuite.core.clock import monotonic
from perfsuite.core.errors import UsageError
from perfsuite.core.interface import SetupContext, support_problem
from perfsuite.core.phases import time_epoch
from perfsuite.core.workload import epoch_permutation
from perfsuite.measure import processes, sides
from perfsuite.results.record import EpochRecord

EVAL_CHUNK = 8192


def accuracy(impl, x: torch.Tensor, y: torch.Tensor) -> float:
    """Share of ``x`` that ``impl.predict`` classifies as ``y``, in chunks."""
    correct = 0
    with torch.no_grad():
        for start in range(0, len(x), EVAL_CHUNK):
            logits = impl.predict(x[start : start + EVAL_CHUNK])
            correct += int((logits.argmax(1) == y[start : start + EVAL_CHUNK]).sum())
    return correct / len(x)


class WorkerState:
    """What a worker holds between commands."""

    def __init__(self, spec: str, workload, dataset, side: str | None = None):
        torch.set_num_threads(workload.threads)
        self.workload = workload
        self.dataset = dataset
        if side:
            sides.activate(side)
        self.cls = registry.load_class(spec)
        if side:
            sides.check_runnable(self.cls)
        self.definition = workloads.of(workload)
        problem = support_problem(self.cls, self.definition.name)
        if problem:
            raise UsageError(f"{spec}: {problem}")
        self.train, self.test = data.load(dataset)
        self.n_train = workload.train_size(len(self.train.labels))
        self.n_test = self.definition.test_samples(workload, len(self.test.labels))
        self.eval_train = data.preprocess(self.train.images[: self.n_train])
        self.eval_test = data.preprocess(self.test.images[: self.n_test])
        self.impl = None
        self.rank = 0

    def setup(self, round_: int) -> dict:
        """Build a fresh implementation from the shared initial parameters."""
        self.impl = None
        wl = self.workload
        ctx = SetupContext(
            workload=wl,
            dataset=self.dataset,
            train=self.train,
            test=self.test,
            n_train=self.n_train,
            params=self.definition.initial_parameters(wl),
            permutation=lambda epoch: epoch_permutation(wl, self.n_train, epoch),
            clock=monotonic,
        )
        impl = self.cls()
        start = monotonic()
        metrics = impl.setup(ctx) or {}
        seconds = monotonic() - start
        self.impl = impl
        info = impl.info() if callable(getattr(impl, "info", None)) else {}
        return {"round": round_, "setup_seconds": seconds, "metrics": dict(metrics), "info": dict(info)}

    def epoch(self, round_: int, epoch: int) -> EpochRecord:
        """Run, time and evaluate one epoch."""
        m = time_epoch(self.impl, epoch, monotonic)
        return epoch_record(
            self.impl,
            m,
            round_,
            epoch,
            epoch < self.workload.warmup,
            rank=self.rank,
            train_accuracy=accuracy(self.impl, self.eval_train, self.train.labels[: self.n_train]),
            test_accuracy=accuracy(self.impl, self.eval_test, self.test.labels[: self.n_test]),
        )


def epoch_record(impl, m, round_: int, epoch: int, warmup: bool, **fields) -> EpochRecord:
    """The record of one timed epoch of ``impl``, with the facts it reports about that epoch.

    Called right after the epoch's clock stops, by the run worker, every rank
    and the profiling worker alike; ``fields`` sets ``rank`` and accuracies.
    """
    facts = impl.epoch_facts() if callable(getattr(impl, "epoch_facts", None)) else {}
    return EpochRecord.from_measurement(m, round_, epoch, warmup, facts=facts, **fields)


def answer(state: WorkerState, command: str, args):
    """The answer to ``("setup", round)`` or ``("epoch", round, epoch)``."""
    handler = state.setup if command == "setup" else state.epoch
    return handler(*args)


def main(conn, spec: str, workload, dataset, side: str | None = None) -> None:
    """Entry point of a worker process (started by :class:`perfsuite.measure.handle.WorkerHandle`).

    With a ``side`` folder (``perfsuite ab``), the implementation is imported from it (:func:`sides.activate`).
    """

    def start():
        state = WorkerState(spec, workload, dataset, side)
        return state, {"threads": torch.get_num_threads()}

    processes.child_main(conn, start, answer)
