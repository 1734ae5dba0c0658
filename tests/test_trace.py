"""``perfsuite trace``: phase ranges in the Chrome trace, top operators per phase, the range hook."""

import csv
import json
from contextlib import contextmanager
from types import SimpleNamespace

import pytest

from perfsuite.cli.main import main
from perfsuite.core.interface import OTHER, PHASES
from perfsuite.core.phases import time_staged_epoch
from perfsuite.profile import torchtrace
from perfsuite.results import artifacts
from tests.fixtures.test_impls import Tiny
from tests.test_run import data_args


@pytest.fixture(scope="module")
def trace_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("trace") / "r"
    status = main(
        [
            "trace",
            "--impls",
            "store",
            "--subset",
            "0.01",
            "--epochs",
            "1",
            "--warmup",
            "1",
            "--threads",
            "1",
            "--quiet",
            "--top",
            "4",
            "--out",
            str(out),
            *data_args(),
        ]
    )
    assert status == 0
    return out


def test_chrome_trace_has_the_five_phase_ranges(trace_run):
    events = json.loads((trace_run / "trace" / "store.trace.json").read_text())["traceEvents"]
    ranges = {e["name"] for e in events if e.get("ph") == "X" and e.get("cat") == "user_annotation"}
    assert set(PHASES) <= ranges
    steps = sum(1 for e in events if e.get("name") == "forward" and e.get("ph") == "X")
    assert steps == 5  # 600 samples / batch 128: only the active epoch, not the warm-up


def test_top_operators_per_phase_written_and_reported(trace_run):
    with open(trace_run / "trace" / "store.top_ops.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["phase"] for r in rows} <= set(PHASES) | {OTHER}
    forward = [r for r in rows if r["phase"] == "forward"]
    assert 1 <= len(forward) <= 4 and any(r["operator"].startswith("aten::") for r in forward)
    assert sum(float(r["share_of_phase"]) for r in forward) <= 1.0 + 1e-9
    report = (trace_run / "index.html").read_text()
    assert "Top operators by self CPU time" in report and "trace/store.trace.json" in report
    found = artifacts.discover(trace_run, ["store"])
    assert found["trace"][0].shares and found["top_ops"][0].rows


def test_timer_records_of_the_traced_epochs_are_kept(trace_run):
    with open(trace_run / "epochs.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["epoch"], r["warmup"]) for r in rows] == [("0", "1"), ("1", "0")]


def _event(name, parent=None, self_us=0.0):
    return SimpleNamespace(name=name, cpu_parent=parent, self_cpu_time_total=self_us, cpu_time_total=self_us)


def test_operators_charged_to_the_enclosing_phase_range():
    step = _event("ProfilerStep#3", self_us=5.0)
    fwd = _event("forward", step, 2.0)
    mm = _event("aten::mm", _event("aten::matmul", fwd, 1.0), 30.0)
    opt = _event("Optimizer.step#SGD.step", _event("step", step, 1.0), 4.0)
    loose = _event("aten::stack", step, 3.0)
    events = [step, fwd, mm, mm.cpu_parent, opt.cpu_parent, opt, loose]
    totals = torchtrace.self_times(events)
    assert totals[("forward", "aten::mm")] == [30.0, 1]
    assert totals[("forward", torchtrace.OUTSIDE_OPS)] == [2.0, 1]
    assert totals[("step", "Optimizer.step#SGD.step")] == [4.0, 1]
    assert totals[(OTHER, "aten::stack")] == [3.0, 1]
    assert totals[(OTHER, torchtrace.OUTSIDE_OPS)] == [5.0, 1]
    rows = torchtrace.top_ops(totals, 1)
    first = {r["phase"]: r for r in rows}
    assert first["forward"]["operator"] == "aten::mm"
    assert first["forward"]["share_of_phase"] == pytest.approx(30 / 33)


def test_phase_range_hook_wraps_each_phase_call():
    entered = []

    @contextmanager
    def phase_range(name):
        entered.append(name)
        yield

    impl = Tiny()
    impl.setup(SimpleNamespace(params={"w2": __import__("torch").zeros(10, 8)}))
    timing = time_staged_epoch(impl, 0, phase_range=phase_range)
    assert len(timing.phases) == impl.steps
    # iterator creation + one request per batch + the final empty request
    assert entered.count("batching") == impl.steps + 2
    assert [entered.count(p) for p in PHASES[1:]] == [impl.steps] * 4
    assert entered[:3] == ["batching", "batching", "forward"]


def test_trace_names_with_hash_are_not_phases(tmp_path):
    (tmp_path / "trace").mkdir()
    events = [
        {"ph": "X", "name": "step", "dur": 10},
        {"ph": "X", "name": "Optimizer.step#SGD.step", "dur": 8},
        {"ph": "X", "name": "forward", "dur": 30},
    ]
    (tmp_path / "trace" / "a.trace.json").write_text(json.dumps({"traceEvents": events}))
    trace = artifacts.traces(tmp_path, ["a"])[0]
    assert trace.shares["step"] == pytest.approx(10 / 40)


def test_ctrl_c_keeps_what_was_recorded_and_marks_unavailable(tmp_path, capsys):
    """The profiling commands' shared loop: unavailable implementations marked, Ctrl-C keeps the folder."""
    from pathlib import Path

    from perfsuite.cli.main import build_parser
    from perfsuite.profile.session import ProfileRun

    fixtures = Path(__file__).parent / "fixtures" / "test_impls.py"
    args = build_parser().parse_args(
        [
            "trace",
            "--impls",
            f"{fixtures}:Unavailable,store",
            "--subset",
            "0.01",
            "--quiet",
            "--out",
            str(tmp_path / "r"),
            *data_args(),
        ]
    )
    run = ProfileRun(args, "trace", {})
    seen = []
    with pytest.raises(KeyboardInterrupt), run.recording(2):
        for _, spec in run.available():
            seen.append(spec.name)
            raise KeyboardInterrupt
    assert seen == ["store"]
    meta = json.loads((tmp_path / "r" / "meta.json").read_text())
    assert meta["status"] == "interrupted"
    assert meta["implementations"]["unavailable"]["status"] == "unavailable"
    assert (tmp_path / "r" / "summary.json").exists() and (tmp_path / "r" / "index.html").exists()
    assert "interrupted; what was recorded is kept" in capsys.readouterr().err
