"""``perfsuite flame``: real py-spy on a tiny subset, and its one-line failures."""

import json
import os
import re
import shutil
import stat
import sys
from pathlib import Path

import pandas as pd
import pytest

from perfsuite.cli.main import main
from perfsuite.core.interface import OTHER, PHASES
from perfsuite.results import artifacts
from tests import test_report_browser as pages
from tests.test_folded import svg_levels
from tests.test_run import data_args

FIXTURES = Path(__file__).parent / "fixtures" / "profile_impls.py"
browser = pages.browser
"""The report tests' headless Chromium, here for the flame graphs (sampled once, by ``flame_run``)."""
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
            f"{FIXTURES}:ExitWhileSampled,idiomatic,store",
            "--rate",
            "200",
            "--diff",
            "idiomatic,store",
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
    assert set(shares["impl"]) == {"idiomatic", "store"} and len(shares) == 2 * (len(PHASES) + 1)
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
    found = artifacts.discover(out, ["idiomatic", "store", "exits-sampled"])
    assert [a.path for a in found["shares"]] == ["flame/idiomatic.shares.json", "flame/store.shares.json"]
    assert not found["shares"][1].error and found["shares"][1].overhead
    samples = [a.path for a in found["samples"]]
    assert {"flame/store.speedscope.json", "flame/store.phases.speedscope.json"} <= set(samples)
    assert {"flame/store.phases.collapsed.txt", "flame/diff-idiomatic-store.folded.txt"} <= set(samples)
    assert [a.path for a in found["flame"]] == ["flame/idiomatic.svg", "flame/store.svg"]
    assert [(a.impl, a.path) for a in found["phase_flames"]] == [
        ("idiomatic", "flame/idiomatic.phases.svg"),
        ("store", "flame/store.phases.svg"),
    ]
    store = found["phase_flames"][1]
    assert store.rows and all(r["path"] == f"flame/store.{r['phase']}.svg" for r in store.rows)
    assert [(a.label, a.path) for a in found["diff_flames"]] == [
        ("store vs idiomatic, by phase", "flame/diff-idiomatic-store-by-phase.svg"),
        ("store vs idiomatic", "flame/diff-idiomatic-store.svg"),
    ]


BOOTSTRAP = ("<module>", "spawn_main", "_bootstrap", "_serve", "serve", "child_main", "measured_epochs", "time_epoch")
"""Functions of the worker's start-up and command loop, above the epoch in py-spy's stacks."""


def _payload(out, name):
    return json.loads((out / "flame" / f"{name}.shares.json").read_text())


@pytest.mark.parametrize("name", ["idiomatic", "store"])
def test_phase_flame_graph_has_the_phases_directly_under_the_epoch(flame_run, name):
    _, out = flame_run
    payload = _payload(out, name)
    sampled = {p for p in (*PHASES, OTHER) if payload["counts"][p] > 0}
    assert payload["graphs"]["svg"] == f"{name}.phases.svg"
    levels = svg_levels((out / "flame" / f"{name}.phases.svg").read_text())
    assert levels[:3] == [{"all"}, {"epoch"}, sampled]
    assert sampled & {"forward", "backward"}  # a tiny epoch gets a handful of samples (all five on full MNIST)
    frames = {frame for level in levels for frame in level}
    assert not [f for f in frames if f.split(" (")[0].rsplit(".", 1)[-1] in BOOTSTRAP]
    raw = {
        f.split(" (")[0].rsplit(".", 1)[-1]
        for level in svg_levels((out / "flame" / f"{name}.svg").read_text())
        for f in level
    }
    assert {"<module>", "spawn_main", "_bootstrap", "time_staged_epoch"} <= raw  # py-spy's own graph is kept whole
    rooted = (out / "flame" / f"{name}.phases.collapsed.txt").read_text().splitlines()
    # the harness's loop between phase calls is the epoch's "other" time, never a tower of its own
    assert all(line.startswith("epoch;other;") for line in rooted if "time_staged_epoch (" in line)


@pytest.mark.parametrize("name", ["idiomatic", "store"])
def test_one_flame_graph_per_sampled_phase_holding_only_that_phase(flame_run, name):
    _, out = flame_run
    payload = _payload(out, name)
    per_phase = payload["graphs"]["per_phase"]
    assert set(per_phase) == {p for p in (*PHASES, OTHER) if payload["counts"][p] > 0}
    for phase, file in per_phase.items():
        levels = svg_levels((out / "flame" / file).read_text())
        assert levels[:3] == [{"all"}, {"epoch"}, {phase}], file
    for phase in {*PHASES, OTHER} - set(per_phase):
        assert not (out / "flame" / f"{name}.{phase}.svg").exists()
        assert f"{name}: no samples in {phase}, no {phase} flame graph" in payload["graphs"]["notes"]
    speedscope = json.loads((out / "flame" / f"{name}.phases.speedscope.json").read_text())
    assert speedscope["shared"]["frames"][0]["name"] == "epoch"
    assert sum(speedscope["profiles"][0]["weights"]) == payload["samples"]


def test_differential_flame_graph_of_two_sampled_implementations(flame_run):
    _, out = flame_run
    lines = (out / "flame" / "diff-idiomatic-store.folded.txt").read_text().splitlines()
    assert lines and all(re.fullmatch(r"epoch;\S.* \d+ \d+", line) for line in lines)
    assert sum(int(line.split()[-1]) for line in lines) == _payload(out, "store")["samples"]
    svg = (out / "flame" / "diff-idiomatic-store.svg").read_text()
    assert re.search(r"samples, [\d.]+%; [+-][\d.]+%\)</title>", svg), "no change in share in the titles"
    assert svg_levels(svg)[1] == {"epoch"}
    assert re.search(r'fill="rgb\(255,\d+,\d+\)"', svg), "no frame coloured as grown"
    meta = json.loads((out / "meta.json").read_text())
    assert [(d["before"], d["after"], d["svg"]) for d in meta["profile"]["diffs"]] == [
        ("idiomatic", "store", "diff-idiomatic-store.svg")
    ]
    report = (out / "index.html").read_text()
    assert 'data="flame/store.phases.svg"' in report and 'data="flame/diff-idiomatic-store.svg"' in report
    assert 'href="flame/store.forward.svg"' in report


def test_phase_and_differential_graphs_open_in_chromium(browser, flame_run, tmp_path):
    _, out = flame_run
    flame = out / "flame"
    payload = _payload(out, "store")
    phase = max(payload["graphs"]["per_phase"], key=lambda p: payload["counts"][p])
    for file in ("store.phases.svg", payload["graphs"]["per_phase"][phase], "diff-idiomatic-store.svg"):
        titles = pages.check_svg(browser, flame / file)
        names = {t.split(" (")[0] for t in titles}
        assert {"all", "epoch", phase} <= names and len(titles) > 3, file
        assert not names & {"<module>", "spawn_main"}, file
    pages.check_page(browser, out / "index.html", tmp_path / "flame-report.png")
    heights = browser.execute_script(
        "return [...document.querySelectorAll('object.flame')].map(o => o.getBoundingClientRect().height)"
    )
    assert len(heights) >= 3 and all(h > 80 for h in heights), heights


def test_redraw_from_a_run_folder_without_sampling(flame_run, capsys):
    _, out = flame_run
    assert main(["flame", "--from", str(out), "--diff", "store,idiomatic"]) == 0
    assert (out / "flame" / "diff-store-idiomatic.svg").is_file()
    assert 'data="flame/diff-store-idiomatic.svg"' in (out / "index.html").read_text()
    assert main(["flame", "--from", str(out), "--diff", "store,exits-sampled"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "--diff store,exits-sampled: exits-sampled not among the implementations in" in line


def test_redraw_without_pyinferno_keeps_pyspy_graphs_and_says_so_once(flame_run, tmp_path, monkeypatch, capsys):
    _, out = flame_run
    copy = shutil.copytree(out, tmp_path / "r")
    for svg in (copy / "flame").glob("*.svg"):
        if svg.name not in ("idiomatic.svg", "store.svg"):
            svg.unlink()
    monkeypatch.setitem(sys.modules, "pyinferno", None)
    assert main(["flame", "--from", str(copy), "--diff", "idiomatic,store"]) == 0
    err = capsys.readouterr().err
    assert err.count("pyinferno cannot be imported") == 1 and "Traceback" not in err
    assert sorted(p.name for p in (copy / "flame").glob("*.svg")) == ["idiomatic.svg", "store.svg"]
    assert (copy / "flame" / "diff-idiomatic-store.folded.txt").is_file()
    assert "pyinferno cannot be imported" in (copy / "index.html").read_text()


@pytest.mark.parametrize(
    "value, says",
    [
        ("store", "--diff store: expected two implementation names, A,B"),
        ("store,", "--diff store,: expected two implementation names, A,B"),
        ("store,store", "--diff store,store: compares store with itself"),
        ("store,tuned", "--diff store,tuned: tuned not among the implementations sampled (store)"),
    ],
)
def test_bad_diff_is_one_line_before_anything_is_measured(tmp_path, capsys, value, says):
    if shutil.which("py-spy") is None:
        pytest.skip("py-spy is not installed")
    out = tmp_path / "r"
    assert main(["flame", "--impls", "store", "--diff", value, "--out", str(out), *TINY, *data_args()]) == 2
    assert says in _one_line(capsys.readouterr().err)
    assert not out.exists()


def test_redraw_from_a_folder_that_is_not_a_flame_run_is_one_line(tmp_path, capsys):
    assert main(["flame", "--from", str(tmp_path / "absent")]) == 2
    assert "--from" in (line := _one_line(capsys.readouterr().err)) and "no flame/*.shares.json" in line
    (tmp_path / "flame").mkdir()
    (tmp_path / "flame" / "x.shares.json").write_text('{"impl": "x"}')
    assert main(["flame", "--from", str(tmp_path)]) == 2
    assert "x.shares.json: not written by perfsuite flame" in _one_line(capsys.readouterr().err)
