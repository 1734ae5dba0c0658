"""``perfsuite flame``: real py-spy on a tiny subset, and its one-line failures."""

import json
import os
import shutil
import stat
from pathlib import Path

import pandas as pd
import pytest

from perfsuite.cli.main import main
from perfsuite.core.interface import OTHER, PHASES
from perfsuite.results import artifacts
from tests.test_run import data_args

FIXTURES = Path(__file__).parent / "fixtures" / "profile_impls.py"
TINY = ["--subset", "0.02", "--epochs", "1", "--warmup", "1", "--threads", "1", "--quiet"]


def _one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("perfsuite: error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_pyspy_missing_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["flame", "--impls", "store", "--out", str(tmp_path / "r"), *TINY, *data_args()]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "pip install py-spy" in line
    assert not (tmp_path / "r").exists()


def test_ptrace_denied_is_one_line_and_says_how_to_allow_it(tmp_path, monkeypatch, capsys):
    fake = tmp_path / "bin" / "py-spy"
    fake.parent.mkdir()
    fake.write_text(
        '#!/bin/sh\necho "Permission Denied: Try running again with elevated permissions '
        'by going \'sudo env \\"PATH=\\$PATH\\" !!\'"\nexit 1\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "r"
    assert main(["flame", "--impls", "store,idiomatic", "--out", str(out), *TINY, *data_args()]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "ptrace not permitted" in line and "SYS_PTRACE" in line and "ptrace_scope" in line
    meta = json.loads((out / "meta.json").read_text())
    assert meta["implementations"]["store"]["status"] == "failed"
    assert meta["implementations"]["idiomatic"]["status"] == "not run"


@pytest.fixture(scope="module")
def flame_run(tmp_path_factory):
    if shutil.which("py-spy") is None:
        pytest.skip("py-spy is not installed")
    out = tmp_path_factory.mktemp("flame") / "r"
    longer = ["--subset", "0.1", "--epochs", "2", "--warmup", "1", "--threads", "1", "--quiet"]
    status = main(
        [
            "flame",
            "--impls",
            f"{FIXTURES}:ExitWhileSampled,store",
            "--rate",
            "200",
            "--out",
            str(out),
            *longer,
            *data_args(),
        ]
    )
    return status, out


def test_real_pyspy_writes_every_output_with_phase_frames(flame_run):
    status, out = flame_run
    flame = out / "flame"
    for suffix in (".svg", ".speedscope.json", ".collapsed.txt", ".shares.json"):
        assert (flame / f"store{suffix}").is_file(), suffix
    svg = (flame / "store.svg").read_text()
    assert "time_staged_epoch (perfsuite/core/phases.py" in svg
    # a tiny epoch gets a handful of samples: at least one phase method is there (all five on full MNIST)
    assert any(
        f"Store.{m} (impls/store.py" in svg or f"{m} (perfsuite/core/phases.py" in svg
        for m in ("batching", "forward", "loss", "backward", "step")
    )
    assert json.loads((flame / "store.speedscope.json").read_text())["profiles"]


def test_sampled_and_timer_shares_side_by_side(flame_run):
    _, out = flame_run
    payload = json.loads((out / "flame" / "store.shares.json").read_text())
    assert payload["samples"] > 0
    assert set(payload["shares"]) == set(PHASES) | {OTHER}
    assert sum(payload["shares"].values()) == pytest.approx(1.0)
    assert sum(payload["timer_shares"].values()) == pytest.approx(1.0)
    assert [r["phase"] for r in payload["agreement"]] == list(PHASES) + [OTHER]
    over = payload["overhead"]
    assert set(over["per_format"]) == {"raw", "flamegraph", "speedscope"}
    assert over["unsampled_epoch_median_s"] > 0 and over["sampled_epoch_median_s"] > 0
    shares = pd.read_csv(out / "flame" / "shares.csv")
    assert set(shares["impl"]) == {"store"} and len(shares) == len(PHASES) + 1
    epochs = pd.read_csv(out / "epochs.csv")
    measured = epochs[(epochs["impl"] == "store") & (epochs["warmup"] == 0)]
    assert list(measured["epoch"]) == payload["epochs"]
    assert (
        len(pd.read_csv(out / "flame" / "overhead.csv").query("impl == 'store'")) == 3 * 2 * 2
    )  # formats x (plain, sampled) x epochs


def test_worker_exiting_while_sampled_is_one_line_and_the_rest_is_kept(flame_run, capsys):
    status, out = flame_run
    assert status == 1
    meta = json.loads((out / "meta.json").read_text())
    assert meta["status"] == "failed"
    failed = meta["implementations"]["exits-sampled"]
    assert failed["status"] == "failed" and "exited unexpectedly with status 3" in failed["reason"]
    assert meta["implementations"]["store"]["status"] == "ok"
    report = (out / "index.html").read_text()
    assert "flame/store.svg" in report and "Sampling overhead" in report


def test_report_finds_shares_and_links_the_other_sample_files(flame_run):
    _, out = flame_run
    found = artifacts.discover(out, ["store", "exits-sampled"])
    assert [a.path for a in found["shares"]] == ["flame/store.shares.json"]
    assert not found["shares"][0].error and found["shares"][0].overhead
    assert "flame/store.speedscope.json" in [a.path for a in found["samples"]]
