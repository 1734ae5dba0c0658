"""``perfsuite profile -- python script.py``: a user's own loop recorded into a run folder, and its failures."""

import json
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from perfsuite.cli.main import main
from perfsuite.core.interface import PHASES
from tests.test_run import mnist_root

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
PY = sys.executable
TINY_USER = ["--steps", "6", "--epochs", "2", "--width", "16", "--depth", "1"]


def _errors(err: str) -> list:
    return [line for line in err.splitlines() if line.startswith("perfsuite: error:")]


@pytest.fixture(scope="module")
def user_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("profile") / "r"
    status = main(["profile", "--out", str(out), "--quiet", "--", PY, str(EXAMPLES / "user_model.py"), *TINY_USER])
    return status, out


def test_user_model_writes_a_run_folder_and_report(user_run):
    status, out = user_run
    assert status == 0
    for name in ("epochs.csv", "phases.csv", "steps.csv", "meta.json", "summary.json", "index.html"):
        assert (out / name).is_file(), name
    epochs = pd.read_csv(out / "epochs.csv")
    assert list(epochs["epoch"]) == [0, 1] and list(epochs["warmup"]) == [1, 0]
    assert (epochs["steps"] == 6).all()
    inside = epochs[[f"{p}_seconds" for p in PHASES]].sum(axis=1)
    assert (epochs["other_seconds"] - (epochs["wall_seconds"] - inside)).abs().max() < 1e-9
    assert len(pd.read_csv(out / "steps.csv")) == 12
    meta = json.loads((out / "meta.json").read_text())
    script = meta["scripts"]["user_model"]
    assert script["script"] == str(EXAMPLES / "user_model.py") and script["args"] == TINY_USER
    assert {"commit", "dirty"} <= set(script["git"]) and script["exit_status"] == 0
    assert meta["status"] == "complete" and meta["user_phases"] == ["eval", "logging", "to_device"]
    page = (out / "index.html").read_text()
    assert 'id="named-phases"' in page and "to_device" in page
    assert "idiomatic has no measured epochs" not in page  # the script is the baseline


def test_user_phases_are_in_phases_csv_and_a_breakdown_of_other_in_the_summary(user_run):
    _, out = user_run
    phases = pd.read_csv(out / "phases.csv")
    assert {"to_device", "logging", "eval"} <= set(phases["phase"])
    assert len(phases[(phases["phase"] == "to_device") & (phases["epoch"] == 1)]) == 6
    summary = json.loads((out / "summary.json").read_text())
    named = summary["user_phases"]["user_model"]
    assert set(named["phases"]) == {"to_device", "logging", "eval"}
    total = sum(f["seconds"] for f in named["phases"].values())
    assert named["unnamed_other_seconds"] == pytest.approx(named["other_seconds"] - total, abs=1e-9)
    assert summary["implementations"]["user_model"]["measured_epochs"] == 1


@pytest.mark.skipif(mnist_root() is None, reason="real MNIST not found (set PERFSUITE_DATA)")
def test_mnist_loop_example_on_real_mnist(tmp_path, capsys):
    out = tmp_path / "r"
    args = ["--data-dir", mnist_root(), "--subset", "640", "--epochs", "2", "--steps", "4"]
    status = main(["profile", "--out", str(out), "--", PY, str(EXAMPLES / "mnist_loop.py"), *args])
    err = capsys.readouterr().err
    assert status == 0, err
    assert "mnist_loop epoch 1" in err
    epochs = pd.read_csv(out / "epochs.csv")
    assert list(epochs["steps"]) == [4, 4] and (epochs["batching_seconds"] > 0).all()
    assert (out / "index.html").is_file()
    assert json.loads((out / "summary.json").read_text())["implementations"]["mnist_loop"]["measured_epochs"] == 1


def test_a_crashing_script_keeps_finished_epochs_and_exits_1_with_one_line(tmp_path, capsys):
    out = tmp_path / "r"
    command = [PY, str(EXAMPLES / "user_model.py"), *TINY_USER[:2], "--epochs", "3", "--fail-at-epoch", "1"]
    assert main(["profile", "--out", str(out), "--quiet", "--", *command]) == 1
    (line,) = _errors(capsys.readouterr().err)
    assert "exited with status 1" in line and "RuntimeError: simulated failure in epoch 1" in line
    assert "1 finished epoch kept" in line
    assert list(pd.read_csv(out / "epochs.csv")["epoch"]) == [0]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["status"] == "failed" and meta["implementations"]["user_model"]["status"] == "failed"
    assert (out / "index.html").is_file()


def _script(tmp_path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def test_a_script_that_never_opens_an_epoch_is_one_line(tmp_path, capsys):
    plain = _script(tmp_path, "plain.py", "print('training without perfsuite')\n")
    assert main(["profile", "--out", str(tmp_path / "a"), "--", PY, str(plain)]) == 1
    (line,) = _errors(capsys.readouterr().err)
    assert "never opened an epoch" in line and "never imported perfsuite.record" in line
    idle = _script(tmp_path, "idle.py", "from perfsuite import record\nwith record.phase('forward'):\n    pass\n")
    assert main(["profile", "--out", str(tmp_path / "b"), "--", PY, str(idle)]) == 1
    (line,) = _errors(capsys.readouterr().err)
    assert "never entered perfsuite.record.epoch()" in line


@pytest.mark.parametrize(
    "argv, words",
    [
        (["profile"], "give the command to profile"),
        (["profile", "--", PY, "no-such-script.py"], "no such script"),
        (["profile", "--", "no-such-program-xyz"], "no such program"),
        (["profile", "--", PY, "a.py", "::"], "empty command"),
        (["profile", "--warmup", "-1", "--", PY, __file__], "--warmup"),
        (["profile", "--name", "a,b", "--", PY, __file__], "--name"),
        (["profile", "--name", "../x", "--", PY, __file__], "--name"),
        (["profile", "--flame", "--rate", "0", "--", PY, __file__], "--rate 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, words):
    assert main([*argv[:1], "--out", str(tmp_path / "r"), *argv[1:]]) == 2
    (line,) = _errors(capsys.readouterr().err)
    assert words in line


def test_a_bad_option_is_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["profile", "--no-such-option", "--", PY, __file__])
    assert stop.value.code == 2


TICKS = """\
import sys, time
from perfsuite import record
log = open(sys.argv[1], "a")
for epoch in range(int(sys.argv[2])):
    with record.epoch():
        start = time.monotonic()
        for i in record.batches(range(3)):
            with record.phase("forward"):
                time.sleep(0.01)
        log.write(f"{sys.argv[3]} {start} {time.monotonic()}\\n")
        log.flush()
"""


def test_two_argument_sets_alternate_epoch_by_epoch_without_overlap(tmp_path, capsys):
    script = _script(tmp_path, "ticks.py", TICKS)
    log = tmp_path / "log.txt"
    out = tmp_path / "r"
    a = [PY, str(script), str(log), "3", "a"]
    b = [PY, str(script), str(log), "2", "b"]
    assert main(["profile", "--out", str(out), "--quiet", "--warmup", "0", "--", *a, "::", *b]) == 0
    err = capsys.readouterr().err
    assert "only epochs 0–1 are paired" in err
    epochs = pd.read_csv(out / "epochs.csv")
    assert list(zip(epochs["impl"], epochs["epoch"], strict=True)) == [
        ("ticks-1", 0),
        ("ticks-2", 0),
        ("ticks-1", 1),
        ("ticks-2", 1),
        ("ticks-1", 2),
    ]
    spans = sorted((float(s), float(e), who) for who, s, e in (line.split() for line in log.read_text().splitlines()))
    assert [who for _, _, who in spans] == ["a", "b", "a", "b", "a"]
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1))
    assert json.loads((out / "meta.json").read_text())["profile"]["order"] == "alternate"


def test_back_to_back_prints_the_drift_caveat(tmp_path, capsys):
    script = _script(tmp_path, "ticks.py", TICKS)
    log = tmp_path / "log.txt"
    a = [PY, str(script), str(log), "1", "a"]
    b = [PY, str(script), str(log), "1", "b"]
    argv = ["profile", "--out", str(tmp_path / "r"), "--quiet", "--back-to-back", "--name", "x,y"]
    assert main([*argv, "--", *a, "::", *b]) == 0
    assert "back to back, not alternately" in capsys.readouterr().err
    assert list(pd.read_csv(tmp_path / "r" / "epochs.csv")["impl"]) == ["x", "y"]


def test_the_script_and_its_arguments_are_found_in_the_command(tmp_path, monkeypatch):
    from perfsuite.profile.script import describe, split_commands

    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text("")
    entry = describe(["python", "-u", "./train.py", "--lr", "0.1"])
    assert entry["script"] == str(tmp_path / "train.py") and entry["args"] == ["--lr", "0.1"]
    assert describe(["python", "-m", "pkg.train", "--x"])["script"] is None
    assert split_commands(["--", "python", "a.py", "::", "python", "b.py", "--", "x"]) == [
        ["python", "a.py"],
        ["python", "b.py", "--", "x"],
    ]


def test_sigterm_keeps_the_finished_epochs_and_marks_the_run_interrupted(tmp_path):
    import signal
    import subprocess
    import time

    script = _script(tmp_path, "ticks.py", TICKS)
    out = tmp_path / "r"
    command = [PY, "-m", "perfsuite", "profile", "--quiet", "--out", str(out), "--"]
    proc = subprocess.Popen([*command, PY, str(script), str(tmp_path / "log.txt"), "1000", "a"], cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            epochs = out / "epochs.csv"
            if epochs.is_file() and len(epochs.read_text().splitlines()) > 2:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 143
    finally:
        if proc.poll() is None:
            proc.kill()
    meta = json.loads((out / "meta.json").read_text())
    assert meta["status"] == "interrupted" and meta["implementations"]["ticks"]["status"] == "interrupted"
    assert len(pd.read_csv(out / "epochs.csv")) >= 2 and (out / "index.html").is_file()
