"""Bad input gets one line and the right exit status; faults never lose finished epochs."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from perfsuite.cli.main import main
from perfsuite.results.schema import SCHEMA_VERSION
from tests.test_run import data_args

FIXTURES = Path(__file__).parent / "fixtures" / "test_impls.py"
TINY = ["--subset", "0.01", "--epochs", "1", "--warmup", "0", "--threads", "1", "--quiet"]


def one_line_error(capsys, fragment):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("perfsuite") and fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--batch-size", "0"], "--batch-size 0: must be a whole number of at least 1"),
        (["--lr", "-0.1"], "--lr -0.1: must be a positive number"),
        (["--subset", "1.5"], "--subset 1.5: must be a fraction in (0, 1]"),
        (["--subset", "0"], "--subset 0.0: must be a fraction in (0, 1]"),
        (["--threads", "0"], "--threads 0"),
        (["--repeats", "0"], "--repeats 0"),
        (["--timeout", "0"], "--timeout 0: must be a positive number"),
        (["--loss", "hinge"], "--loss hinge: must be one of ce, mse"),
        (["--impls", "nosuch"], "--impls nosuch: unknown implementation"),
        (["--impls", "store:"], "expected a name, module:Class or path/to/file.py:Class"),
        (["--impls", "missing/file.py:Loop"], "file missing/file.py does not exist"),
        (["--impls", f"{FIXTURES}:NotAnImpl"], "not a perfsuite implementation"),
        (["--data-dir", "/nonexistent/mnist"], "/nonexistent/mnist: data root does not exist"),
        (["--dataset", "cifar"], "--dataset cifar: must be one of auto, mnist, synthetic"),
    ],
)
def test_bad_run_options(args, fragment, capsys, tmp_path):
    assert main(["run", *TINY, "--out", str(tmp_path / "r"), *data_args(), *args]) == 2
    one_line_error(capsys, fragment)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("command", [["sweep", "--vary", "batch_size=64,128"], ["flame"], ["trace"]])
def test_every_measuring_command_checks_the_timeout(command, capsys, tmp_path):
    assert main([*command, *TINY, "--timeout", "-5", "--out", str(tmp_path / "r"), *data_args()]) == 2
    one_line_error(capsys, "--timeout -5: must be a positive number of seconds")
    assert not (tmp_path / "r").exists()


def test_dataset_mnist_without_data(tmp_path, capsys):
    assert main(["run", *TINY, "--dataset", "mnist", "--data-dir", str(tmp_path)]) == 2
    one_line_error(capsys, "train-images-idx3-ubyte: file not found")


def test_argparse_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "--batch-size", "lots"])
    assert info.value.code == 2
    one_line_error(capsys, "argument --batch-size: invalid int value: 'lots'")


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["run", *TINY, "--impls", "store", "--out", str(blocker / "run"), *data_args()]) == 2
    one_line_error(capsys, "cannot write there")


def write_run(folder: Path, meta: dict = None, epochs: str = None) -> Path:
    folder.mkdir()
    (folder / "meta.json").write_text(json.dumps(meta if meta is not None else {"schema_version": SCHEMA_VERSION}))
    if epochs is not None:
        (folder / "epochs.csv").write_text(epochs)
    return folder


@pytest.mark.parametrize(
    "make,fragment",
    [
        (lambda p: p, "no such run folder"),
        (lambda p: (p.mkdir(), p)[1], "not a perfsuite run folder (no meta.json)"),
        (lambda p: (p.mkdir(), (p / "meta.json").write_text('{"schema_ver'), p)[2], "unreadable or truncated JSON"),
        (lambda p: write_run(p, {"schema_version": SCHEMA_VERSION + 1}), "is newer than this perfsuite reads"),
        (lambda p: write_run(p, {"run_id": "x"}), "has no schema_version"),
        (lambda p: write_run(p), "no epochs.csv"),
        (lambda p: write_run(p, epochs="impl,round\nstore,0\n"), "missing columns"),
    ],
)
def test_summary_of_bad_folders(tmp_path, capsys, make, fragment):
    folder = make(tmp_path / "run")
    assert main(["summary", str(folder)]) == 2
    one_line_error(capsys, fragment)


def test_worker_faults_are_recorded_and_the_rest_finishes(tmp_path, capsys):
    out = tmp_path / "r"
    impls = ",".join(
        ["store"] + [f"{FIXTURES}:{c}" for c in ("ExitInEpoch", "KillInEpoch", "RaiseInEpoch", "HangInForward")]
    )
    assert main(["run", *TINY, "--impls", impls, "--timeout", "4", "--out", str(out), *data_args()]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    meta = json.loads((out / "meta.json").read_text())
    reasons = {name: (i["status"], i["reason"]) for name, i in meta["implementations"].items()}
    assert reasons["store"] == ("ok", "")
    assert reasons["exits"] == ("failed", "worker exited unexpectedly with status 3")
    assert reasons["killed"] == ("failed", "worker was killed by SIGKILL")
    assert reasons["raises"] == ("failed", "ValueError: backward exploded on purpose")
    assert reasons["hangs"][0] == "failed" and reasons["hangs"][1].startswith("no answer within 4 s")
    assert set(pd.read_csv(out / "epochs.csv")["impl"]) == {"store"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["implementations"]["killed"]["status"] == "failed"
    for name in ("exits", "killed", "raises", "hangs"):
        assert f"{name} failed" in err


def _as_at_a_terminal() -> None:
    """In the child before exec: take Ctrl-C as a foreground command does.

    A shell's background job (``pytest … &``, ``nohup``) starts with SIGINT
    ignored and passes that on, and Python keeps an inherited SIG_IGN; the
    tests of Ctrl-C stand for a user at a terminal.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_run(out: Path, *extra, own_group: bool = False):
    return subprocess.Popen(
        [sys.executable, "-m", "perfsuite", "run", "--quiet", *extra, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=own_group,
        preexec_fn=_as_at_a_terminal,
    )


def wait_for_rows(path: Path, rows: int, proc, limit=120.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) > rows:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    raise AssertionError(f"{path} never reached {rows} rows")


def test_sigint_keeps_every_finished_epoch(tmp_path):
    out = tmp_path / "r"
    proc = start_run(
        out, "--impls", "store", "--subset", "0.05", "--epochs", "500", "--warmup", "0", "--threads", "1", *data_args()
    )
    wait_for_rows(out / "epochs.csv", 3, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in err and "interrupted" in err
    meta = json.loads((out / "meta.json").read_text())
    assert meta["status"] == "interrupted"
    epochs = pd.read_csv(out / "epochs.csv")
    assert len(epochs) >= 3
    phases = pd.read_csv(out / "phases.csv")
    assert len(phases) == epochs["steps"].sum() * 5
    summary = json.loads((out / "summary.json").read_text())
    assert summary["implementations"]["store"]["measured_epochs"] == len(epochs)
    assert main(["summary", str(out)]) == 0
    assert "report of the finished epochs" in err and "interrupted" in (out / "index.html").read_text()


@pytest.mark.parametrize("whole_group", [False, True], ids=["to-the-parent", "to-the-process-group"])
def test_sigterm_is_an_interruption(tmp_path, whole_group):
    """What timeout, CI runners and container stops send: kept epochs, status interrupted, summary, report."""
    out = tmp_path / "r"
    proc = start_run(
        out,
        *("--impls", "store", "--subset", "0.05", "--epochs", "500", "--warmup", "0", "--threads", "1"),
        *data_args(),
        own_group=whole_group,
    )
    wait_for_rows(out / "epochs.csv", 2, proc)
    if whole_group:
        os.killpg(proc.pid, signal.SIGTERM)
    else:
        proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and "perfsuite: terminated" in err
    meta = json.loads((out / "meta.json").read_text())
    assert meta["status"] == "interrupted"
    assert meta["implementations"]["store"]["status"] == "interrupted"
    epochs = pd.read_csv(out / "epochs.csv")
    summary = json.loads((out / "summary.json").read_text())
    assert len(epochs) >= 2 and summary["implementations"]["store"]["measured_epochs"] == len(epochs)
    assert "interrupted" in (out / "index.html").read_text()


def test_diverging_run_is_flagged_not_crashed(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["run", *TINY, "--impls", "store", "--lr", "1e30", "--out", str(out), *data_args()]) == 0
    err = capsys.readouterr().err
    assert "store diverged: its loss became NaN or infinite in round 0, epoch 0" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["implementations"]["store"]["diverged"] is True
    assert summary["implementations"]["store"]["final_loss"] is None


def test_two_runs_at_once_write_separate_folders(tmp_path):
    reports = tmp_path / "reports"
    args = ["run", "--quiet", "--impls", "store", *TINY[:-1], "--reports", str(reports), *data_args()]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "perfsuite", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    runs = sorted(p for p in reports.iterdir() if p.name != "latest")
    assert len(runs) == 2
    for run in runs:
        assert json.loads((run / "meta.json").read_text())["status"] == "complete"
        assert len(pd.read_csv(run / "epochs.csv")) == 1
    assert (reports / "latest").resolve() in [r.resolve() for r in runs]
