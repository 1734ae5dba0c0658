"""Standalone multi-rank runs across machines: every rank trains, rank 0 writes the run folder.

Started on every machine by torchrun with the same rendezvous (see README,
"Distributed data parallel (DDP)")::

    python -m torch.distributed.run --nnodes 2 --nproc-per-node 1 --rdzv-backend c10d \\
        --rdzv-endpoint HOST:29400 --rdzv-id myjob -m perfsuite.cli.torchrun --out reports/ddp-2x1 ...

No perfsuite parent is involved (ranks on other machines could not reach
it): the ranks run the rounds and epochs in lockstep, every rank's epoch
record is gathered to rank 0 over the process group
(``gather_object``), and rank 0 appends them to the run folder, writes
``meta.json`` and ``summary.json`` as ``perfsuite run`` does. There is no
interleaving with other implementations in this mode.

The ranks leave together: the implementation is freed first (its DDP
reducer goes while the group is whole), then a barrier after rank 0 has
written the folder, then the group is destroyed, and the process ends
without the interpreter's teardown, where c10d's background threads have
been seen to abort a finished rank ("terminate called without an active
exception"). Leaving together also keeps the torchrun agents' exits close:
the agent that hosts the c10d rendezvous store takes it down when it exits,
and an agent still polling it then fails its own teardown (a known torchrun
limitation, pytorch/pytorch#194871) although every result is on disk.
"""

import gc
import os
import time

import torch.distributed as dist

from perfsuite.analysis.summary import write_summary
from perfsuite.core import data, metadata, workloads
from perfsuite.core.options import workload_from
from perfsuite.core.workload import default_threads
from perfsuite.measure.ddp_worker import join_group, rank_state, ready_payload
from perfsuite.results import writer


def gather(payload):
    """``payload`` of every rank, in rank order, on rank 0 (``None`` elsewhere)."""
    found = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(payload, found, dst=0)
    return found


class Recorder:
    """Rank 0's run folder: metadata and the epochs of every rank."""

    def __init__(self, args, workload, dataset, name: str):
        folder = writer.create_run_dir(args.out)
        self.writer = writer.ResultsWriter(folder)
        self.folder, self.name = folder, name
        self.impl = {
            "spec": args.impl,
            "status": "running",
            "reason": "",
            "setups": [],
            "info": {},
            "epochs_done": 0,
            "start_seconds": None,
        }
        self.meta = {
            "run_id": folder.name,
            **metadata.collect(),
            "workload": workload.to_dict(),
            "dataset": dataset.to_dict(),
            "status": "running",
            "launcher": "torchrun (standalone)",
            "implementations": {name: self.impl},
        }
        self.save()

    def save(self) -> None:
        """Write ``meta.json`` as it stands."""
        self.writer.write_meta(self.meta)

    def ready(self, answers: list) -> None:
        """Record the ranks' start-up facts and the all-reduce benchmark."""
        self.impl["start_seconds"] = max(a["start_seconds"] for a in answers)
        self.impl["info"].update(
            {
                "ranks": len(answers),
                "threads_per_rank": answers[0]["threads"],
                "rank_hosts": [a["host"] for a in answers],
                "allreduce_benchmark": answers[0]["allreduce_benchmark"],
            }
        )
        self.save()

    def setup(self, answers: list) -> None:
        """Record one round's set-up on every rank."""
        self.impl["setups"].append({**answers[0], "rank_setup_seconds": [a["setup_seconds"] for a in answers]})
        self.impl["info"].update(answers[0]["info"])
        self.save()

    def epoch(self, records: list) -> None:
        """Append every rank's record of one epoch."""
        for record in records:
            self.writer.append_epoch(self.name, record)
        self.impl["epochs_done"] += 1

    def finish(self, status: str, reason: str = "") -> None:
        """Close the files, write the final status and ``summary.json``."""
        self.writer.close()
        self.impl.update(status="ok" if status == "complete" else "failed", reason=reason)
        self.meta["status"] = status
        self.save()
        write_summary(self.folder)
        print(f"results: {self.folder}", flush=True)


def _train(state, workload, recorder) -> None:
    for round_ in range(workload.repeats):
        setups = gather(state.setup(round_))
        if recorder:
            recorder.setup(setups)
        for epoch in range(workload.epochs_per_round):
            records = gather(state.epoch(round_, epoch))
            if recorder:
                recorder.epoch(records)


def standalone_workload(args):
    """The workload of this job: ``nproc`` is the world size and ``--threads`` counts per rank.

    Without ``--threads``, each rank gets this machine's usable CPUs shared by
    the ranks torchrun started on it (``LOCAL_WORLD_SIZE``).
    """
    world = int(os.environ["WORLD_SIZE"])
    per_rank = args.threads or max(1, default_threads() // int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
    return workload_from(args, nproc=world, threads=per_rank * world)


def run(args) -> int:
    """Train on every rank of the torchrun job; rank 0 writes ``args.out``. Returns the exit status."""
    start = time.perf_counter()
    workload = standalone_workload(args)
    dataset = data.resolve(args.dataset, args.data_dir)
    name = workloads.resolve_impls([args.impl], workload, explicit=True)[0].name
    join_group(args.timeout)
    recorder = Recorder(args, workload, dataset, name) if dist.get_rank() == 0 else None
    try:
        state = rank_state(args.impl, workload, dataset)
        answers = gather(ready_payload(start, workload.hidden))
        if recorder:
            recorder.ready(answers)
        _train(state, workload, recorder)
    except BaseException as exc:
        if recorder:
            recorder.finish("failed", f"{type(exc).__name__}: {exc}")
        raise
    if recorder:
        recorder.finish("complete")
    leave(state)
    return 0


def leave(state) -> None:
    """Free the implementation (its DDP reducer holds the group), then leave the group with every rank."""
    state.impl = None
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()
