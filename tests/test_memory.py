"""``perfsuite memory``: allocations charged to phases, memray's cross-check, the report and the gate."""

import json
import shutil
import sys
from collections import namedtuple
from pathlib import Path

import pandas as pd
import pytest

from perfsuite.analysis.memory import memory_verdict, overhead
from perfsuite.cli.main import main
from perfsuite.core.interface import OTHER, PHASES
from perfsuite.profile import memraycheck
from perfsuite.profile.allocations import attribute
from tests.fixtures.profile_impls import KNOWN_BYTES
from tests.test_run import data_args

FIXTURES = Path(__file__).parent / "fixtures"
TINY = ["--subset", "0.01", "--epochs", "1", "--warmup", "1", "--threads", "1", "--quiet"]
STAGED = ("batching", "forward", "loss", "backward", "step")


def _one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("perfsuite: error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_events_are_charged_to_the_range_that_holds_them():
    ranges = [(10, 20, "forward"), (30, 40, "backward"), (50, 60, "forward")]
    memory = [(5, 100), (11, 64), (12, 32), (15, -64), (35, 1000), (36, -1000), (45, -100), (55, 8)]
    found = attribute(ranges, memory)
    fwd, bwd, other = (found["phases"][p] for p in ("forward", "backward", OTHER))
    assert (fwd["allocations"], fwd["allocated_bytes"], fwd["frees"], fwd["freed_bytes"]) == (3, 104, 1, 64)
    assert (bwd["allocations"], bwd["allocated_bytes"], bwd["frees"]) == (1, 1000, 1)
    assert (other["allocations"], other["frees"], other["freed_bytes"]) == (1, 1, 100)
    assert fwd["ranges"] == 2 and fwd["peak_bytes"] == 96 and fwd["peak_bytes_median"] == 52
    assert bwd["peak_bytes"] == 1000
    assert found["epoch_peak_bytes"] == 1132 and found["net_bytes"] == 40
    assert found["phases"]["step"] == dict.fromkeys(found["phases"]["step"], 0)


Record = namedtuple("Record", "allocator size address n_allocations stack")


def _record(allocator, size, address, phase=None):
    stack = [("inner", "/x/impl.py", 1)]
    if phase:
        stack.append((phase, "/site-packages/perfsuite/core/phases.py", 60))
    record = Record(allocator, size, address, 1, stack)
    return type("R", (), {**record._asdict(), "stack_trace": lambda self: self.stack})()


def test_memray_scan_follows_posix_memalign_blocks_by_address():
    memalign, malloc, free = 9, 6, 5
    records = [
        _record(memalign, 1000, 1, "forward"),
        _record(malloc, 50, 2, "forward"),
        _record(memalign, 500, 3, "backward"),
        _record(free, 0, 1),
        _record(free, 0, 99),
        _record(memalign, 200, 4),
    ]
    found = memraycheck.scan(records, memalign, {free})
    by_phase = found["by_phase"]
    assert by_phase["tensor_allocations"]["forward"] == 1 and by_phase["allocations"]["forward"] == 2
    assert by_phase["tensor_bytes"]["backward"] == 500 and by_phase["tensor_allocations"][OTHER] == 1
    assert found["tensor_peak_bytes"] == 1500


def test_memray_missing_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "memray", None)
    with pytest.raises(memraycheck.MemrayUnavailable, match="pip install memray"):
        memraycheck.tracked_epoch(object(), 0, "/nonexistent/x.bin")


def test_overhead_pairs_each_profiled_epoch_with_the_plain_one_before_it():
    epochs = pd.DataFrame(
        {"mode": ["plain", "profiled", "plain", "profiled", "memray"], "epoch": [1, 2, 3, 4, 5]}
        | {"wall_seconds": [1.0, 1.5, 2.0, 2.2, 9.0]}
    )
    found = overhead(epochs)
    assert found["median"] == pytest.approx(30.0) and found["pairs"] == 2
    assert found["ci_low"] <= found["median"] <= found["ci_high"]
    assert memory_verdict(100, 120, 0.05) == (1.2, "larger")
    assert memory_verdict(0, 0, 0.05) == (1.0, "no change")
    assert memory_verdict(100, 90, 0.05)[1] == "smaller"


@pytest.fixture(scope="module")
def memory_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("memory") / "r"
    impls = (
        f"idiomatic,store,tuned,{FIXTURES / 'profile_impls.py'}:AllocatesInStep,{FIXTURES / 'test_impls.py'}:FusedTiny"
    )
    status = main(["memory", "--impls", impls, "--out", str(out), *TINY, *data_args()])
    assert status == 0
    return out


def _phases(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "memory" / "phases.csv")


def test_every_phase_of_every_implementation_has_a_row(memory_run):
    rows = _phases(memory_run)
    assert set(rows["phase"]) == set(PHASES) | {OTHER}
    assert set(rows["impl"]) == {"idiomatic", "store", "tuned", "allocates-in-step", "fused-tiny"}
    epochs = pd.read_csv(memory_run / "memory" / "epochs.csv")
    assert {"plain", "profiled", "memray"} <= set(epochs["mode"])
    assert (epochs.loc[epochs["mode"] == "plain", "rss_peak_bytes"] > 0).all()


def test_a_known_allocation_is_charged_to_its_phase(memory_run):
    summary = json.loads((memory_run / "summary.json").read_text())
    phases = summary["memory"]["impls"]["allocates-in-step"]["phases"]
    assert phases["step"]["allocated_bytes_per_step"] >= KNOWN_BYTES
    assert phases["step"]["peak_bytes"] >= KNOWN_BYTES
    assert all(phases[p]["peak_bytes"] < KNOWN_BYTES for p in ("batching", "forward", "loss", "backward"))


def test_the_designs_show_in_the_allocations(memory_run):
    impls = json.loads((memory_run / "summary.json").read_text())["memory"]["impls"]
    per_step = {n: {p: f["allocations_per_step"] for p, f in m["phases"].items()} for n, m in impls.items()}
    assert per_step["idiomatic"]["batching"] > 100 * per_step["store"]["batching"]
    assert per_step["tuned"]["forward"] == 0 and per_step["tuned"]["step"] == 0
    assert per_step["store"]["forward"] > 0


def test_memray_agrees_with_torch_on_tensor_memory(memory_run):
    impls = json.loads((memory_run / "summary.json").read_text())["memory"]["impls"]
    for name in ("store", "tuned", "allocates-in-step"):
        check = impls[name]["memray"]
        assert check["agrees"], (name, check)
        for phase in ("forward", "loss", "backward", "step"):
            f = check["phases"][phase]
            assert f["tensor_allocations_per_step"] == pytest.approx(f["torch_allocations_per_step"]), (name, phase)
    assert (memory_run / "memory" / "store.memray.bin").is_file()


def test_fused_implementation_gets_epoch_totals_and_a_note(memory_run, capsys):
    impls = json.loads((memory_run / "summary.json").read_text())["memory"]
    fused = impls["impls"]["fused-tiny"]
    assert not fused["ranged"]
    assert all(fused["phases"][p]["allocations_per_step"] == 0 for p in STAGED)
    assert any(n.startswith("fused-tiny: fused implementation") for n in impls["notes"])


def test_report_has_the_memory_section(memory_run):
    page = (memory_run / "index.html").read_text()
    for anchor in ('id="memory"', 'id="memory-phases"', 'id="memory-epochs"', 'id="memory-memray"'):
        assert anchor in page
    assert "memory mode" in page


def test_compare_gates_on_tensor_memory(memory_run, tmp_path, capsys):
    grown = tmp_path / "grown"
    shutil.copytree(memory_run, grown)
    rows = _phases(grown)
    rows.loc[(rows["impl"] == "store") & (rows["phase"] == "forward"), "allocations"] *= 3
    rows.to_csv(grown / "memory" / "phases.csv", index=False)
    assert main(["compare", str(memory_run), str(grown), "--raw"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "more tensor memory beyond 5%: store tensor allocations per step" in line


def test_bad_epochs_is_one_line(tmp_path, capsys):
    assert main(["memory", "--impls", "store", "--epochs", "0", "--out", str(tmp_path / "r"), *data_args()]) == 2
    assert "--epochs 0" in _one_line(capsys.readouterr().err)
    assert not (tmp_path / "r").exists()


def test_sweep_memory_shows_memory_against_batch_size(tmp_path, capsys):
    out = tmp_path / "s"
    args = ["sweep", "--memory", "--impls", "store", "--vary", "batch_size=32,128", "--subset", "0.01"]
    assert main([*args, "--threads", "1", "--quiet", "--out", str(out), *data_args()]) == 0
    rows = json.loads((out / "sweep.json").read_text())["analysis"]["memory"]
    by = {(r["impl"], r["batch_size"]): r for r in rows}
    assert set(by) == {("store", 32), ("store", 128)}
    assert by[("store", 128)]["allocated_bytes_per_step"] > 1.5 * by[("store", 32)]["allocated_bytes_per_step"]
    assert (out / "batch_size-32" / "memory" / "phases.csv").is_file()
    assert 'id="memory"' in (out / "index.html").read_text()
    assert "tensor memory per point" in capsys.readouterr().out
