"""The parent's side of a multi-rank implementation: torchrun launched, every rank on its own connection.

:class:`TorchrunHandle` is the runner's handle for an implementation marked
``distributed = True`` (``ddp``). It starts

    python -m torch.distributed.run --nnodes 1 --nproc-per-node N --rdzv-backend c10d
        --rdzv-endpoint 127.0.0.1:<free port> --local-addr 127.0.0.1 --max-restarts 0
        -m perfsuite.cli.torchrun --connect <unix socket>

in a session of its own, accepts one connection per rank on a Unix socket
in a private temporary folder, and speaks the single-process worker protocol
to all ranks at once: a command goes to every rank, and the answer is the
ranks' answers together (an epoch answer is one record per rank).

Loopback only: the rendezvous is on 127.0.0.1 and gloo is pinned to the
loopback interface (``GLOO_SOCKET_IFNAME=lo``). torch's TCPStore (the
rendezvous store) always listens on every interface, so where the system
allows it torchrun runs in a network namespace of its own whose only
interface is loopback (``unshare --user --net``, no privileges needed);
``info["network_isolation"]`` in ``meta.json`` says which applied.

A rank that raises, dies or does not answer fails the whole implementation
with a reason naming the rank (from torchrun's failure summary when it has
one); the other ranks and torchrun are stopped at once, never left waiting
in a collective.
"""

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path

from perfsuite.measure.handle import WorkerHandle
from perfsuite.measure.processes import WorkerLost, checked

LOOPBACK = "127.0.0.1"
LOOPBACK_INTERFACE = "lo"
SLICE = 0.2
GRACE = 10.0
LOG_TAIL = 25
PEER_LOST = re.compile(r"Connection (reset|closed) by peer|gloo/transport")
"""What a rank reports when a peer left the collective under it: an effect of another rank's failure."""


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (for torchrun's rendezvous store)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def torchrun_command(nproc: int, port: int, sock_path: str, run_id: str) -> list:
    """The torchrun command line of a single-machine run driven by this parent."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc-per-node",
        str(nproc),
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        f"{LOOPBACK}:{port}",
        "--rdzv-id",
        run_id,
        "--local-addr",
        LOOPBACK,
        "--max-restarts",
        "0",
        "--monitor-interval",
        "0.1",
        "-m",
        "perfsuite.cli.torchrun",
        "--connect",
        sock_path,
    ]


NAMESPACE_PREFIX = ["unshare", "--user", "--map-root-user", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]


def loopback_namespace_prefix() -> list:
    """The command prefix running a program in a new network namespace with only loopback up, or ``[]``."""
    if not (shutil.which("unshare") and shutil.which("ip")):
        return []
    probe = subprocess.run(NAMESPACE_PREFIX + ["true"], capture_output=True, timeout=30)
    return NAMESPACE_PREFIX if probe.returncode == 0 else []


def rank_environment(threads: int) -> dict:
    """Environment of the ranks: loopback-only gloo, ``threads`` OpenMP threads, unbuffered output."""
    return {
        **os.environ,
        "GLOO_SOCKET_IFNAME": LOOPBACK_INTERFACE,
        "OMP_NUM_THREADS": str(threads),
        "PYTHONUNBUFFERED": "1",
    }


def root_cause(log_text: str):
    """``(rank, detail)`` of torchrun's "Root Cause" failure summary, or ``None`` when it has none."""
    return _failure(log_text.rpartition("Root Cause")[2])


def failures(log_text: str) -> dict:
    """``{rank: detail}`` of every failed rank torchrun's summary lists ("Failures" and "Root Cause")."""
    summary = log_text[log_text.find("Failures:") :] if "Failures:" in log_text else log_text
    found = {}
    for block in re.split(r"\n\s*\[\d+\]:\s*\n", summary)[1:]:
        failure = _failure(block)
        if failure:
            found.setdefault(*failure)
    return found


def cause_of(rank, log_text: str):
    """torchrun's root cause, unless the rank that was seen to fail exited on its own beside a peer killed by a signal.

    A rank that leaves a collective makes gloo abort its peers (SIGABRT), and
    torchrun may observe that abort first and call it the root cause; a rank
    that ended with an exit status of its own is the cause instead.
    """
    cause = root_cause(log_text)
    own = failures(log_text).get(rank) if rank is not None else None
    if cause and own and cause[0] != rank and cause[1].startswith("killed") and not own.startswith("killed"):
        return rank, own
    return cause


def _failure(block: str):
    """``(rank, detail)`` of the first ``rank :`` / ``exitcode :`` pair in ``block``, or ``None``."""
    rank = re.search(r"rank\s*:\s*(\d+)", block)
    code = re.search(r"exitcode\s*:\s*(-?\d+)", block)
    if not rank or not code:
        return None
    value = int(code.group(1))
    if value < 0:
        try:
            return int(rank.group(1)), f"killed by {signal.Signals(-value).name}"
        except ValueError:
            return int(rank.group(1)), f"killed by signal {-value}"
    return int(rank.group(1)), f"exit status {value}"


@dataclass
class TorchrunHandle(WorkerHandle):
    """The runner's handle of an implementation running on ``nproc`` ranks under torchrun."""

    nproc: int = 2
    timeout: float = 900.0
    ranks: dict = field(default_factory=dict)
    pids: dict = field(default_factory=dict)
    folder: Path = None
    server: object = None
    command: list = field(default_factory=list)

    def start(self, workload, dataset) -> None:
        """Start torchrun (its own session) with a Unix socket for the ranks to connect to."""
        self.folder = Path(tempfile.mkdtemp(prefix="perfsuite-ddp-"))
        sock_path = str(self.folder / "parent.sock")
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(sock_path)
        self.server.listen(self.nproc)
        self.server.settimeout(SLICE)
        self._job = (self.spec.spec, workload, dataset, self.timeout)
        prefix = loopback_namespace_prefix()
        self.command = prefix + torchrun_command(self.nproc, free_loopback_port(), sock_path, self.folder.name)
        self.info.update(
            {
                "ranks": self.nproc,
                "threads_per_rank": workload.threads_per_rank,
                "launcher": " ".join(self.command),
                "network_isolation": "own network namespace, loopback only"
                if prefix
                else "none available: traffic on 127.0.0.1, but the rendezvous store listens on all interfaces",
            }
        )
        with open(self.folder / "torchrun.log", "wb") as log:
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=rank_environment(workload.threads_per_rank),
            )

    def send(self, message: tuple) -> None:
        """Send one command to every rank."""
        for conn in self.ranks.values():
            conn.send(message)

    def receive(self, expected: str, timeout: float):
        """Every rank's answer: a list of records for ``epoch``, else rank 0's answer with the ranks' beside it."""
        deadline = time.monotonic() + timeout
        if expected == "ready":
            self._accept_ranks(deadline)
        answers = self._gather(expected, deadline)
        if expected == "epoch":
            return answers
        if expected == "ready":
            self.info.update(
                {
                    "rank_hosts": [a["host"] for a in answers],
                    "rank_pids": [a["pid"] for a in answers],
                    "allreduce_benchmark": answers[0]["allreduce_benchmark"],
                }
            )
            return {**answers[0], "start_seconds": max(a["start_seconds"] for a in answers)}
        return {
            **answers[0],
            "setup_seconds": max(a["setup_seconds"] for a in answers),
            "rank_setup_seconds": [a["setup_seconds"] for a in answers],
        }

    def records(self, payload) -> list:
        """The per-rank records of one epoch answer."""
        return payload

    def _accept_ranks(self, deadline: float) -> None:
        """Accept every rank's connection, learn its rank number and pid, send it the job."""
        while len(self.ranks) < self.nproc:
            self._check_alive(deadline, "connect")
            try:
                client, _ = self.server.accept()
            except TimeoutError:
                continue
            client.setblocking(True)
            conn = Connection(client.detach())
            if not conn.poll(max(deadline - time.monotonic(), SLICE)):
                conn.close()
                continue
            hello = checked(conn.recv(), "hello")
            self.ranks[hello["rank"]] = conn
            self.pids[hello["rank"]] = hello["pid"]
            conn.send(("init", *self._job))

    def _check_alive(self, deadline: float, what: str) -> None:
        if self.process.poll() is not None:
            raise self._lost(
                None, f"torchrun exited with status {self.process.returncode} before every rank could {what}"
            )
        if time.monotonic() > deadline:
            raise self._lost(None, f"not every rank could {what} in time; the ranks were stopped")

    def _gather(self, expected: str, deadline: float) -> list:
        """One answer from each rank, in rank order; the first failure stops every rank.

        A rank reporting that its peer left the collective (:data:`PEER_LOST`) is
        an effect: the other ranks get :data:`GRACE` seconds to show the failure
        that caused it, which is then the one named.
        """
        answers, effect = {}, None
        while len(answers) < self.nproc:
            pending = {conn: rank for rank, conn in self.ranks.items() if rank not in answers}
            for conn in wait(list(pending), timeout=SLICE):
                rank = pending[conn]
                try:
                    message = conn.recv()
                except (EOFError, ConnectionError, OSError):
                    raise self._lost(rank, f"rank {rank} of {self.nproc} died during '{expected}'") from None
                try:
                    answers[rank] = checked(message, expected)
                except WorkerLost as lost:
                    if effect is None and PEER_LOST.search(lost.reason):  # wait a moment for the peer's own failure
                        answers[rank], effect = None, (rank, lost, time.monotonic() + GRACE)
                        continue
                    raise self._lost(rank, f"rank {rank}: {lost.reason}", lost.traceback, reported=True) from None
            if effect and (len(answers) == self.nproc or time.monotonic() > effect[2]):
                rank, lost, _ = effect
                raise self._lost(rank, f"rank {rank}: {lost.reason}", lost.traceback, reported=True)
            if len(answers) < self.nproc and time.monotonic() > deadline:
                late = sorted(set(self.ranks) - set(answers))
                raise self._lost(
                    None,
                    f"no answer from rank {', '.join(map(str, late))} within the timeout; "
                    "the ranks were stopped (raise --timeout if it is just slow)",
                )
        return [answers[r] for r in sorted(answers)]

    def _lost(self, rank, reason: str, trace: str = "", reported: bool = False) -> WorkerLost:
        """Stop torchrun and every rank; the failure, with torchrun's root cause when it adds to it."""
        self._wait_for_torchrun(GRACE if rank is not None else 0.0)
        self.kill()
        log = self._log_text()
        reason = lost_reason(rank, reason, cause_of(rank, log), self.nproc, reported)
        tail = "\n".join(log.splitlines()[-LOG_TAIL:])
        return WorkerLost(f"{reason}; the other ranks were stopped", trace or tail)

    def _wait_for_torchrun(self, seconds: float) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=seconds)

    def _log_text(self) -> str:
        path = self.folder / "torchrun.log"
        return path.read_text(errors="replace") if path.is_file() else ""

    def kill(self) -> None:
        """Stop torchrun (it terminates its ranks); if it does not exit, kill each rank and torchrun by id."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self._wait_for_torchrun(GRACE / 2)
        if self.process.poll() is None:
            for pid in self.pids.values():
                _kill_pid(pid)
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self, graceful: bool) -> None:
        """Ask every rank to stop and torchrun to finish (or kill them all), then clean up."""
        if graceful and self.process.poll() is None:
            with contextlib.suppress(OSError, ValueError):  # a rank already gone: torchrun is stopped below
                self.send(("stop",))
            self._wait_for_torchrun(GRACE)
        self.kill()
        for conn in self.ranks.values():
            conn.close()
        self.server.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def lost_reason(rank, reason: str, cause, nproc: int, reported: bool) -> str:
    """Why the job failed: ``reason`` (about ``rank``, or the job when ``None``) and torchrun's ``cause``.

    ``cause`` is ``(rank, how it ended)`` from torchrun's summary. A rank that
    merely lost its connection is explained by another rank's earlier death,
    which is named first. A rank that *reported* an exception is the cause
    itself: another rank that died in the collective it left behind (gloo
    aborts, so torchrun may observe that death first) is not named instead.
    """
    if not cause or (reported and cause[0] != rank):
        return reason
    if rank is not None and cause[0] != rank:
        return f"rank {cause[0]} of {nproc} died ({cause[1]}); {reason}"
    return f"{reason} ({cause[1]})"


def _kill_pid(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
