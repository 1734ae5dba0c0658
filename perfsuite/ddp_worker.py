"""One rank of a multi-rank implementation, started by torchrun (``python -m perfsuite.ddp_worker``).

Two ways to drive it:

* ``--connect SOCKET`` (what ``perfsuite run --nproc N`` does): every rank
  connects to the parent's Unix socket, says which rank it is, receives the
  implementation, workload and dataset, joins the gloo process group
  (``env://`` from torchrun), measures all-reduce on it
  (:func:`perfsuite.commmodel.benchmark_allreduce`) and then answers the same
  ``setup`` / ``epoch`` / ``stop`` commands as a single-process worker
  (:func:`perfsuite.worker.serve`). The parent interleaves its epochs with the
  other implementations' and writes every rank's records.
* ``--out DIR`` with workload options (across machines, see README): the
  ranks run the rounds themselves and rank 0 gathers every rank's records and
  writes the run folder (:mod:`perfsuite.ddp_standalone`).
"""

import argparse
import os
import signal
import socket
import sys
import time
import traceback
from dataclasses import replace
from datetime import timedelta
from multiprocessing.connection import Client

import torch
import torch.distributed as dist

from perfsuite import commmodel
from perfsuite.errors import error_message
from perfsuite.worker import WorkerState, serve

ENV_RANK = "RANK"
ENV_WORLD = "WORLD_SIZE"
ENV_LOCAL_RANK = "LOCAL_RANK"


def rank_identity() -> dict:
    """Which rank this process is, from torchrun's environment."""
    return {"rank": int(os.environ[ENV_RANK]), "world_size": int(os.environ[ENV_WORLD]),
            "local_rank": int(os.environ.get(ENV_LOCAL_RANK, 0)), "pid": os.getpid(),
            "host": socket.gethostname()}


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
    return {"start_seconds": time.perf_counter() - start, "threads": torch.get_num_threads(),
            **rank_identity(), "allreduce_benchmark": commmodel.benchmark_allreduce(sizes)}


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
        serve(conn, state)
    except (EOFError, BrokenPipeError):
        return
    except BaseException as exc:
        conn.send(("error", error_message(exc), traceback.format_exc()))
        raise
    finally:
        conn.close()
        if dist.is_initialized():
            dist.destroy_process_group()


def parser() -> argparse.ArgumentParser:
    """Options of the rank entry point (standalone mode takes the ``run`` workload and data options)."""
    from perfsuite.cli import _data_options, _workload_options

    p = argparse.ArgumentParser(prog="python -m perfsuite.ddp_worker", description=__doc__.splitlines()[0])
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--connect", help="Unix socket of the perfsuite parent (set by perfsuite run)")
    mode.add_argument("--out", help="standalone: run folder rank 0 writes (new or empty)")
    p.add_argument("--impl", default="ddp", help="multi-rank implementation to run (default ddp)")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds a collective may wait for a peer")
    _workload_options(p)
    _data_options(p)
    return p


def main(argv=None) -> int:
    """Entry point under torchrun."""
    args = parser().parse_args(argv)
    if args.connect:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's; it stops the ranks
        connected(args.connect)
        return 0
    from perfsuite import ddp_standalone

    status = ddp_standalone.run(args)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # the folder is written and the group left: skip the teardown (see ddp_standalone)


if __name__ == "__main__":
    sys.exit(main())
