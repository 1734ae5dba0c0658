"""One rank of a multi-rank implementation, started by torchrun (``python -m perfsuite.cli.torchrun``).

Two ways to drive it:

* ``--connect SOCKET`` (what ``perfsuite run --nproc N`` does): every rank
  connects to the parent's Unix socket, says which rank it is, receives the
  implementation, workload and dataset, joins the gloo process group
  (``env://`` from torchrun), measures all-reduce on it
  (:func:`perfsuite.measure.probes.benchmark_allreduce`) and then answers the same
  ``setup`` / ``epoch`` / ``stop`` commands as a single-process worker
  (:func:`perfsuite.measure.worker.answer`). The parent interleaves its epochs with the
  other implementations' and writes every rank's records.
* ``--out DIR`` with workload options (across machines, see README): the
  ranks run the rounds themselves and rank 0 gathers every rank's records and
  writes the run folder (:mod:`perfsuite.measure.ddp_standalone`).
"""

import os
import socket
import time
import traceback
from dataclasses import replace
from datetime import timedelta
from multiprocessing.connection import Client

import torch
import torch.distributed as dist

from perfsuite.analysis import commmodel
from perfsuite.core.errors import error_message
from perfsuite.measure import probes
from perfsuite.measure.processes import serve
from perfsuite.measure.worker import WorkerState, answer

ENV_RANK = "RANK"
ENV_WORLD = "WORLD_SIZE"
ENV_LOCAL_RANK = "LOCAL_RANK"


def rank_identity() -> dict:
    """Which rank this process is, from torchrun's environment."""
    return {
        "rank": int(os.environ[ENV_RANK]),
        "world_size": int(os.environ[ENV_WORLD]),
        "local_rank": int(os.environ.get(ENV_LOCAL_RANK, 0)),
        "pid": os.getpid(),
        "host": socket.gethostname(),
    }


def join_group(timeout: float) -> None:
    """Join the gloo process group torchrun set up (``env://``); collectives time out after ``timeout`` s."""
    dist.init_process_group("gloo", timeout=timedelta(seconds=timeout))


def rank_state(spec: str, workload, dataset) -> WorkerState:
    """A worker state for this rank: ``threads`` shared between the ranks, its rank number set."""
    state = WorkerState(spec, replace(workload, threads=workload.threads_per_rank), dataset)
    state.rank = dist.get_rank()
    return state


def ready_payload(start: float, hidden: int) -> dict:
    """What a rank reports once it can train: start-up seconds, threads, the all-reduce benchmark."""
    sizes = sorted(set(commmodel.BENCH_SIZES) | {commmodel.bytes_per_step(hidden)})
    return {
        "start_seconds": time.perf_counter() - start,
        "threads": torch.get_num_threads(),
        **rank_identity(),
        "allreduce_benchmark": probes.benchmark_allreduce(sizes),
    }


def connected(path: str) -> None:
    """Rank life when the parent drives it over the Unix socket ``path``."""
    start = time.perf_counter()
    conn = Client(path, family="AF_UNIX")
    try:
        conn.send(("hello", rank_identity()))
        _, spec, workload, dataset, timeout = conn.recv()
        join_group(timeout)
        state = rank_state(spec, workload, dataset)
        conn.send(("ready", ready_payload(start, workload.hidden)))
        serve(conn, state, answer)
    except (EOFError, BrokenPipeError):
        return
    except BaseException as exc:
        conn.send(("error", error_message(exc), traceback.format_exc()))
        raise
    finally:
        conn.close()
        if dist.is_initialized():
            dist.destroy_process_group()
