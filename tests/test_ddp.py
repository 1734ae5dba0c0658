"""``ddp``: DistributedDataParallel over gloo, launched by torchrun, comm as a sub-phase of backward.

The end-to-end tests start real torchrun jobs of two ranks over loopback
(one thread each) on a tiny subset; the others test the pieces in-process.
"""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from perfsuite.analysis import commmodel
from perfsuite.analysis.summary import summarize
from perfsuite.cli.main import main
from perfsuite.impls.ddp import GlobalBatchShards, union_seconds
from perfsuite.measure.ddp_launch import LOOPBACK, free_loopback_port, loopback_namespace_prefix, root_cause
from perfsuite.measure.processes import WorkerLost
from perfsuite.results.reader import Run, job_rows
from tests.test_run import data_args

FIXTURES = Path(__file__).parent / "fixtures" / "ddp_impls.py"
TINY = ["--subset", "0.02", "--epochs", "1", "--warmup", "0", "--threads", "2", "--nproc", "2", "--quiet"]


def running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "r"
    assert main(["run", "--impls", "idiomatic,ddp", *TINY, "--out", str(out), *data_args()]) == 0
    return out


def test_both_ranks_on_disk_with_comm(ddp_run):
    epochs = pd.read_csv(ddp_run / "epochs.csv")
    ddp = epochs[epochs["impl"] == "ddp"]
    assert sorted(ddp["rank"]) == [0, 1]
    assert (ddp["comm_seconds"] > 0).all() and (ddp["comm_seconds"] < ddp["backward_seconds"]).all()
    assert (ddp["coverage"] >= 0.95).all()
    idiomatic = epochs[epochs["impl"] == "idiomatic"]
    assert list(idiomatic["rank"]) == [0] and idiomatic["comm_seconds"].isna().all()
    phases = pd.read_csv(ddp_run / "phases.csv")
    comm = phases[phases["phase"] == "comm"]
    assert set(comm["impl"]) == {"ddp"} and sorted(comm["rank"].unique()) == [0, 1]
    assert len(comm) == 2 * 10 and (comm["seconds"] > 0).all()
    sums = comm.groupby("rank")["seconds"].sum()
    assert np.allclose(sums.to_numpy(), ddp.sort_values("rank")["comm_seconds"].to_numpy())


def test_global_losses_match_single_process(ddp_run):
    steps = pd.read_csv(ddp_run / "steps.csv")
    single = steps[steps["impl"] == "idiomatic"]["loss"].to_numpy()
    for rank in (0, 1):
        mine = steps[(steps["impl"] == "ddp") & (steps["rank"] == rank)]["loss"].to_numpy()
        assert len(mine) == len(single) == 10
        assert np.max(np.abs(mine - single) / np.abs(single)) < 1e-4
    epochs = pd.read_csv(ddp_run / "epochs.csv")
    acc = epochs.groupby("impl")["train_accuracy"].agg(["min", "max"])
    assert abs(acc.loc["ddp", "max"] - acc.loc["idiomatic", "min"]) < 0.005


def test_summary_ranks_and_comm_model(ddp_run):
    summary = json.loads((ddp_run / "summary.json").read_text())
    ddp = summary["implementations"]["ddp"]
    dist = ddp["distributed"]
    assert dist["ranks"] == 2 and dist["slowest_rank"] in (0, 1)
    assert set(dist["per_rank"]) == {"0", "1"} and 0 < dist["comm_share"] < 1
    assert dist["rank_spread_seconds"] >= 0 and dist["min_coverage"] >= 0.95
    model = ddp["comm_model"]
    assert model["parameters"] == 101770 and model["bytes_per_step"] == 4 * 101770
    assert model["bandwidth_bytes_per_second"] > 0 and model["measured_comm_seconds_per_step"] > 0
    assert "distributed" not in summary["implementations"]["idiomatic"]
    meta = json.loads((ddp_run / "meta.json").read_text())
    info = meta["implementations"]["ddp"]["info"]
    assert meta["schema_version"] == 2 and info["ranks"] == 2 and info["threads_per_rank"] == 1
    assert "127.0.0.1" in info["launcher"] and info["allreduce_benchmark"]


def test_check_includes_ddp(capsys):
    assert (
        main(["check", "--impls", "ddp", "--subset", "0.02", "--threads", "2", "--nproc", "2", "--quiet", *data_args()])
        == 0
    )
    assert "ddp" in capsys.readouterr().out


def cls_name(cls: str) -> str:
    return {"DyingRank": "dying-rank", "RaisingRank": "raising-rank"}[cls]


@pytest.mark.parametrize(
    "cls, fragment",
    [
        ("DyingRank", "dying-rank failed: rank 1 of 2 died during 'epoch' (exit status 3)"),
        ("RaisingRank", "raising-rank failed: rank 1: RuntimeError: rank 1 raised on purpose"),
    ],
)
def test_failing_rank_stops_the_others(cls, fragment, tmp_path, capsys):
    out = tmp_path / "r"
    status = main(
        ["run", "--impls", f"store,{FIXTURES}:{cls}", *TINY, "--timeout", "60", "--out", str(out), *data_args()]
    )
    assert status == 1
    err = capsys.readouterr().err
    assert fragment in err and "the other ranks were stopped" in err
    meta = json.loads((out / "meta.json").read_text())
    assert meta["implementations"]["store"]["status"] == "ok"
    pids = meta["implementations"][cls_name(cls)]["info"]["rank_pids"]
    assert len(pids) == 2 and not any(running(pid) for pid in pids)


TEARDOWN = ("RendezvousConnectionError", "DistNetworkError")
"""How a torchrun agent fails when the agent hosting the rendezvous store exited first."""


def test_standalone_two_nodes_over_loopback(tmp_path):
    """Two torchrun agents (--nnodes 2, one rank each) meet at a c10d rendezvous on 127.0.0.1.

    An agent may exit non-zero only in the way torchrun agents do when the
    store's host left first (after every rank finished and the folder was
    complete); anything else fails the test.
    """
    out, port = tmp_path / "r", free_loopback_port()
    agent = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "2",
        "--nproc-per-node",
        "1",
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        f"{LOOPBACK}:{port}",
        "--rdzv-id",
        "test",
        "--local-addr",
        LOOPBACK,
        "-m",
        "perfsuite.cli.torchrun",
        "--out",
        str(out),
        "--subset",
        "0.02",
        "--epochs",
        "1",
        "--warmup",
        "0",
        "--threads",
        "1",
        *data_args(),
    ]
    script = (
        f"{' '.join(agent)} 2>{tmp_path}/a.err & pa=$!; {' '.join(agent)} 2>{tmp_path}/b.err & pb=$!; "
        "wait $pa; a=$?; wait $pb; b=$?; echo $a $b"
    )
    prefix = loopback_namespace_prefix()
    command = prefix + ["sh", "-c", script] if prefix else ["sh", "-c", script]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "GLOO_SOCKET_IFNAME": "lo"},
    )
    statuses = [int(s) for s in done.stdout.split()[-2:]]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["status"] == "complete" and meta["workload"]["nproc"] == 2
    for status, name in zip(statuses, ("a", "b"), strict=True):
        err = (tmp_path / f"{name}.err").read_text()
        assert status == 0 or any(kind in err for kind in TEARDOWN), f"agent {name} exited {status}: {err[-2000:]}"
    assert statuses.count(0) >= 1
    epochs = pd.read_csv(out / "epochs.csv")
    assert sorted(epochs["rank"]) == [0, 1] and (epochs["comm_seconds"] > 0).all()


def test_global_batch_shards_keep_the_global_order():
    order = torch.randperm(300, generator=torch.Generator().manual_seed(1))
    shards = [GlobalBatchShards(order, 128, rank, 2) for rank in range(2)]
    assert shards[0].sizes == [128, 128, 44]
    for k, size in enumerate(shards[0].sizes):
        together = shards[0].shards[k] + shards[1].shards[k]
        assert together == order[128 * k : 128 * k + size].tolist()
    odd = GlobalBatchShards(torch.arange(5), 5, 1, 2)
    assert odd.shards == [[3, 4]]


def test_union_seconds():
    assert union_seconds([]) == 0
    assert union_seconds([(0, 1), (0.5, 2), (3, 4)]) == pytest.approx(3.0)
    assert union_seconds([(1, 2), (0, 3)]) == pytest.approx(3.0)


def test_comm_model_numbers():
    assert commmodel.parameter_count(128) == 101770
    assert commmodel.ring_factor(2) == 1.0 and commmodel.ring_factor(4) == 1.5
    alpha, bandwidth = 50e-6, 2e9
    points = [{"bytes": b, "seconds": 2 * alpha + b / bandwidth} for b in (1024, 1 << 20, 8 << 20)]
    fitted = commmodel.fit(points, 2)
    assert fitted["alpha_seconds"] == pytest.approx(alpha, rel=1e-6)
    assert fitted["bandwidth_bytes_per_second"] == pytest.approx(bandwidth, rel=1e-6)
    four = commmodel.predict(101770, 4, fitted)
    assert four == pytest.approx(6 * alpha + 1.5 * 4 * 101770 / bandwidth)


def test_root_cause_of_torchrun_summary():
    log = "Root Cause (first observed failure):\n[0]:\n  rank      : 1 (local_rank: 1)\n  exitcode  : 3 (pid: 9)\n"
    assert root_cause(log) == (1, "exit status 3")
    assert root_cause(log.replace("exitcode  : 3", "exitcode  : -9")) == (1, "killed by SIGKILL")
    assert root_cause("nothing here") is None


def test_job_view_takes_the_slowest_rank_and_reads_schema_1():
    base = {
        "impl": "ddp",
        "round": 0,
        "epoch": 0,
        "warmup": 0,
        "steps": 3,
        "coverage": 0.99,
        "mean_loss": 1.0,
        "final_loss": 1.0,
        "train_accuracy": 0.5,
        "test_accuracy": 0.5,
        "other_seconds": 0.0,
        **{f"{p}_seconds": 0.1 for p in ("batching", "forward", "loss", "backward", "step")},
    }
    rows = pd.DataFrame(
        [
            {**base, "rank": 0, "wall_seconds": 1.0, "comm_seconds": 0.05},
            {**base, "rank": 1, "wall_seconds": 1.2, "comm_seconds": 0.02},
        ]
    )
    assert list(job_rows(rows)["rank"]) == [1]
    summary = summarize(Run(Path("."), {"implementations": {"ddp": {"status": "ok"}}}, rows))
    assert summary["implementations"]["ddp"]["epoch_seconds"] == 1.2
    assert summary["implementations"]["ddp"]["distributed"]["slowest_rank"] == 1
    old = rows.drop(columns=["rank", "comm_seconds"]).iloc[:1]
    assert summarize(Run(Path("."), {}, old))["implementations"]["ddp"]["epoch_seconds"] == 1.0


def test_ctrl_c_during_a_ddp_run_keeps_the_epochs_and_stops_every_rank(tmp_path):
    from tests.test_reliability import start_run, wait_for_rows

    out = tmp_path / "r"
    proc = start_run(
        out,
        "--impls",
        "ddp",
        "--subset",
        "0.02",
        "--epochs",
        "500",
        "--warmup",
        "0",
        "--threads",
        "2",
        "--nproc",
        "2",
        *data_args(),
    )
    wait_for_rows(out / "epochs.csv", 4, proc, limit=240)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err and "interrupted" in err
    meta = json.loads((out / "meta.json").read_text())
    assert meta["status"] == "interrupted"
    epochs = pd.read_csv(out / "epochs.csv")
    assert len(epochs) >= 4 and set(epochs["rank"]) == {0, 1}
    pids = meta["implementations"]["ddp"]["info"]["rank_pids"]
    assert len(pids) == 2 and not any(running(pid) for pid in pids)
    assert (out / "index.html").exists()


def test_a_reported_exception_is_the_cause_not_the_peer_it_took_down():
    from perfsuite.measure.ddp_launch import lost_reason

    raised = "rank 1: RuntimeError: rank 1 raised on purpose"
    assert lost_reason(1, raised, (0, "killed by SIGABRT"), 2, reported=True) == raised
    assert lost_reason(1, raised, (1, "exit status 1"), 2, reported=True) == f"{raised} (exit status 1)"
    died = "rank 1 of 2 died during 'epoch'"
    assert lost_reason(1, died, (0, "exit status 3"), 2, reported=False) == f"rank 0 of 2 died (exit status 3); {died}"
    assert (
        lost_reason(None, "no answer", (1, "killed by SIGKILL"), 2, reported=False) == "no answer (killed by SIGKILL)"
    )
    assert lost_reason(1, died, None, 2, reported=False) == died


def test_a_rank_that_exited_on_its_own_is_the_cause_not_the_peer_gloo_aborted():
    from perfsuite.measure.ddp_launch import cause_of, failures, lost_reason

    log = (
        "Failures:\n[1]:\n  time      : t\n  rank      : 1 (local_rank: 1)\n  exitcode  : 3 (pid: 11)\n"
        "------\nRoot Cause (first observed failure):\n[0]:\n  time      : t\n  rank      : 0 (local_rank: 0)\n"
        "  exitcode  : -6 (pid: 10)\n======\n"
    )
    assert failures(log) == {1: "exit status 3", 0: "killed by SIGABRT"}
    assert cause_of(1, log) == (1, "exit status 3")
    died = "rank 1 of 2 died during 'epoch'"
    assert lost_reason(1, died, cause_of(1, log), 2, reported=False) == f"{died} (exit status 3)"
    assert cause_of(None, log) == (0, "killed by SIGABRT")  # no rank seen failing: torchrun's word stands
    killed = log.replace("exitcode  : 3", "exitcode  : -9")
    assert cause_of(1, killed) == (0, "killed by SIGABRT")  # both killed: torchrun's first observed failure


class _Gathering:
    """What ``TorchrunHandle._gather`` uses of its handle: the ranks' pipes, their count, and ``_lost``."""

    def __init__(self, ranks):
        self.ranks, self.nproc = ranks, len(ranks)

    def _lost(self, rank, reason, trace="", reported=False):
        return WorkerLost(f"{reason} [reported={reported}]")


def _gather(messages: dict) -> str:
    """The failure ``_gather`` raises when each rank sends its message (``None``: the rank's pipe closes)."""
    from multiprocessing import Pipe

    from perfsuite.measure.ddp_launch import TorchrunHandle

    ranks = {}
    for rank, message in messages.items():
        ours, theirs = Pipe()
        if message is None:
            theirs.close()
        else:
            theirs.send(message)
        ranks[rank] = ours
    with pytest.raises(WorkerLost) as lost:
        TorchrunHandle._gather(_Gathering(ranks), "epoch", time.monotonic() + 30)
    return lost.value.reason


def test_a_rank_reporting_its_peer_gone_waits_for_the_peer_s_own_failure():
    reset = ("error", "RuntimeError: [/x/gloo/transport/tcp/pair.cc:545] Read error: Connection reset by peer")
    assert _gather({0: reset, 1: None}) == "rank 1 of 2 died during 'epoch' [reported=False]"
    assert _gather({0: reset, 1: ("epoch", {})}).startswith("rank 0: RuntimeError: [/x/gloo")  # no other failure
    raised = ("error", "RuntimeError: rank 1 raised on purpose")
    assert _gather({0: reset, 1: raised}) == "rank 1: RuntimeError: rank 1 raised on purpose [reported=True]"
