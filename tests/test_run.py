"""``perfsuite run`` end to end in worker processes: the run folder and its invariants."""

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from perfsuite.cli.main import main
from perfsuite.core.interface import PHASES
from perfsuite.results.schema import SCHEMA_VERSION
from tests.conftest import mnist_root

FIXTURES = Path(__file__).parent / "fixtures" / "test_impls.py"


def data_args():
    root = mnist_root()
    return ["--data-dir", root] if root else ["--dataset", "synthetic"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "r"
    status = main(
        [
            "run",
            "--impls",
            f"idiomatic,store,{FIXTURES}:SleepInBackward",
            "--subset",
            "0.02",
            "--epochs",
            "2",
            "--warmup",
            "1",
            "--threads",
            "1",
            "--quiet",
            "--out",
            str(out),
            *data_args(),
        ]
    )
    assert status == 0
    return out


def test_run_folder_has_the_files(run_dir):
    for name in ("phases.csv", "steps.csv", "epochs.csv", "meta.json", "summary.json"):
        assert (run_dir / name).is_file(), name


def test_epochs_interleaved_and_warmup_flagged(run_dir):
    epochs = pd.read_csv(run_dir / "epochs.csv")
    assert list(epochs["impl"]) == ["idiomatic", "store", "sleepy-backward"] * 3
    assert list(epochs["warmup"]) == [1] * 3 + [0] * 6
    assert list(epochs["epoch"]) == [0] * 3 + [1] * 3 + [2] * 3


def test_phase_rows_sum_to_epoch_rows(run_dir):
    phases = pd.read_csv(run_dir / "phases.csv")
    epochs = pd.read_csv(run_dir / "epochs.csv").set_index(["impl", "round", "epoch"]).sort_index()
    assert set(phases["phase"]) == set(PHASES)
    sums = phases.groupby(["impl", "round", "epoch", "phase"])["seconds"].sum().unstack()
    for phase in PHASES:
        pd.testing.assert_series_equal(sums[phase], epochs[f"{phase}_seconds"], check_names=False, rtol=1e-9)
    total = sums[list(PHASES)].sum(axis=1)
    assert ((epochs["other_seconds"] + total - epochs["wall_seconds"]).abs() < 1e-9).all()
    assert (epochs["other_seconds"] >= 0).all() and (epochs["coverage"] <= 1).all()
    steps = phases.groupby(["impl", "round", "epoch"])["step"].nunique()
    assert (steps == epochs["steps"]).all()
    assert epochs.loc[("store", 0, 1), "steps"] == 10  # ceil(0.02 * 60000 / 128)


def test_delay_lands_in_backward_through_the_worker(run_dir):
    epochs = pd.read_csv(run_dir / "epochs.csv")
    sleepy = epochs[epochs["impl"] == "sleepy-backward"]
    assert (sleepy["backward_seconds"] >= 5 * 0.03).all()
    assert (sleepy["forward_seconds"] < 0.05).all()


def test_meta_and_summary(run_dir):
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["schema_version"] == SCHEMA_VERSION and meta["status"] == "complete"
    assert meta["workload"]["threads"] == 1 and meta["workload"]["subset"] == 0.02
    assert meta["machine"]["cpu_model"] and meta["software"]["torch"]
    assert meta["software"]["torchvision"] and "commit" in meta["software"]
    assert meta["dataset"]["kind"] in ("mnist", "synthetic")
    assert meta["implementations"]["store"]["status"] == "ok"
    assert meta["measuring_seconds"] >= pd.read_csv(run_dir / "epochs.csv")["wall_seconds"].sum()
    summary = json.loads((run_dir / "summary.json").read_text())
    store = summary["implementations"]["store"]
    assert store["measured_epochs"] == 2
    assert set(store["phase_seconds"]) == set(PHASES) | {"other"}
    epochs = pd.read_csv(run_dir / "epochs.csv")
    measured = epochs[(epochs["impl"] == "store") & (epochs["warmup"] == 0)]
    assert store["epoch_seconds"] == pytest.approx(measured["wall_seconds"].median())


def test_same_losses_idiomatic_and_store(run_dir):
    steps = pd.read_csv(run_dir / "steps.csv")
    a = steps[steps["impl"] == "store"]["loss"].to_numpy()
    b = steps[steps["impl"] == "idiomatic"]["loss"].to_numpy()
    assert len(a) == len(b) == 30
    assert abs(a - b).max() / abs(a).max() < 1e-5


def test_failing_worker_is_recorded_and_others_finish(tmp_path, capsys):
    out = tmp_path / "r"
    status = main(
        [
            "run",
            "--impls",
            f"store,{FIXTURES}:BrokenSetup",
            "--subset",
            "0.01",
            "--epochs",
            "1",
            "--warmup",
            "0",
            "--threads",
            "1",
            "--quiet",
            "--out",
            str(out),
            *data_args(),
        ]
    )
    assert status == 1
    err = capsys.readouterr().err
    assert "broken failed: RuntimeError: setup exploded on purpose" in err
    meta = json.loads((out / "meta.json").read_text())
    assert meta["status"] == "failed"
    assert meta["implementations"]["broken"]["status"] == "failed"
    assert meta["implementations"]["store"]["status"] == "ok"
    assert set(pd.read_csv(out / "epochs.csv")["impl"]) == {"store"}


def test_out_must_be_new_or_empty(tmp_path, capsys):
    (tmp_path / "x").write_text("")
    assert main(["run", "--impls", "store", "--out", str(tmp_path), "--quiet", *data_args()]) == 2
    assert "exists and is not an empty folder" in capsys.readouterr().err


@pytest.mark.skipif(mnist_root() is None, reason="real MNIST not found (set PERFSUITE_DATA)")
def test_the_idiomatic_example_under_profile_flame_computes_what_the_implementation_does(run_dir, tmp_path, capsys):
    """examples/idiomatic_loop.py is the ``idiomatic`` implementation as a user's script: same losses, step for step;
    ``--flame`` samples it and draws its flame graphs with the phases as the first towers above ``epoch``."""
    out = tmp_path / "p"
    script = Path(__file__).resolve().parents[1] / "examples" / "idiomatic_loop.py"
    args = ["--data-dir", mnist_root(), "--subset", "0.02", "--epochs", "3", "--threads", "1"]
    status = main(["profile", "--flame", "--rate", "200", "--name", "idiomatic", "--out", str(out), "--quiet", "--"]
                  + [sys.executable, str(script), *args])  # fmt: skip
    assert status == 0, capsys.readouterr().err
    mine = pd.read_csv(out / "steps.csv").set_index(["epoch", "step"])["loss"]
    theirs = pd.read_csv(run_dir / "steps.csv").query("impl == 'idiomatic'").set_index(["epoch", "step"])["loss"]
    assert len(mine) == len(theirs) == 30
    assert (mine.sort_index().to_numpy() == theirs.sort_index().to_numpy()).all()

    flame = json.loads((out / "meta.json").read_text())["profile"]["flame"]["idiomatic"]
    assert flame["inside_epochs"] > 0 and flame["sampled_shares"]["batching"] > 0.5
    towers = set()
    for line in (out / "flame" / "idiomatic.phases.collapsed.txt").read_text().splitlines():
        frames = line.rpartition(" ")[0].split(";")
        assert frames[0] == "epoch" and not any(f.startswith(("<module>", "main (")) for f in frames[2:3])
        towers.add(frames[1])
    assert "batching" in towers and towers <= {"batching", "forward", "loss", "backward", "step", "other"}
    for name in ("idiomatic.svg", "idiomatic.phases.svg", "idiomatic.batching.svg", "idiomatic.collapsed.txt"):
        assert (out / "flame" / name).is_file(), name
    assert "idiomatic.phases.svg" in (out / "index.html").read_text()
