"""Phase-rooted stacks, per-phase and differential stacks and the speedscope file, on hand-made stacks;
and their flame graphs as inferno draws them."""

import html
import json
import re
import sys

import pytest

from perfsuite.core.interface import OTHER
from perfsuite.profile import flamesvg, folded, phaseflames, stacks
from tests.test_stacks import EPOCH_LINE, WORKER, harness

PHASES_PY = "perfsuite/core/phases.py"


def staged():
    return stacks.parse_collapsed(
        [
            f"{harness('forward')};forward ({PHASES_PY}:62);Store.forward (impls/store.py:140);addmm (libtorch.so) 5",
            f"{harness('forward')};forward ({PHASES_PY}:62);Store.forward (impls/store.py:140) 1",
            f"{harness('batching')};batching ({PHASES_PY}:60);Store.batches (impls/store.py:10) 3",
            f"{harness('step')};step ({PHASES_PY}:80);Store.step (impls/store.py:150) 2",
            f"{WORKER};receive (perfsuite/measure/processes.py:90) 7",
            f"{WORKER};time_epoch (perfsuite/phases.py:{EPOCH_LINE});stack (torch/functional.py:3) 1",
        ]
    )


def test_staged_stacks_start_at_the_phase_without_bootstrap_frames():
    rooted = folded.phase_rooted(staged())
    assert rooted == [
        (("epoch", "forward", "Store.forward (impls/store.py:140)", "addmm (libtorch.so)"), 5),
        (("epoch", "batching", "Store.batches (impls/store.py:10)"), 3),
        (("epoch", "step", "Store.step (impls/store.py:150)"), 2),
        (("epoch", "forward", "Store.forward (impls/store.py:140)"), 1),
        (("epoch", OTHER, "stack (torch/functional.py:3)"), 1),
    ]
    counts = stacks.count_samples(staged())
    assert sum(n for _, n in rooted) == counts.inside == 12 and counts.outside == 7
    assert not any("<module>" in frame or "time_epoch" in frame for frames, _ in rooted for frame in frames)


def test_a_harness_without_phase_frames_keeps_the_method():
    old = stacks.parse_collapsed([f"{harness('forward')};Store.forward (impls/store.py:140) 4"])
    assert folded.phase_rooted(old) == [(("epoch", "forward", "Store.forward (impls/store.py:140)"), 4)]


def test_fused_stacks_start_below_the_phase_symbol():
    native = f"{WORKER};time_epoch (perfsuite/phases.py:{EPOCH_LINE});Native.train_epoch (impls/native.py:136)"
    parsed = stacks.parse_collapsed(
        [
            f"{native};Trainer::train_epoch (trainer.so);phase_forward (trainer.so);at::mm (libtorch_cpu.so) 6",
            f"{native};perfsuite_rust::trainer::phase_step (librust.so);at_add_ (shim.so) 2",
        ]
    )
    assert folded.phase_rooted(parsed, root="native") == [
        (("native", "forward", "at::mm (libtorch_cpu.so)"), 6),
        (("native", "step", "at_add_ (shim.so)"), 2),
    ]


def test_one_phase_and_the_lines():
    rooted = folded.phase_rooted(staged())
    forward = folded.of_phase(rooted, "forward")
    assert [n for _, n in forward] == [5, 1]
    assert folded.to_lines(forward)[0] == "epoch;forward;Store.forward (impls/store.py:140);addmm (libtorch.so) 5"
    with pytest.raises(ValueError, match="unknown phase 'comm'"):
        folded.of_phase(rooted, "comm")


def test_differential_normalises_the_first_side_to_the_seconds_total():
    before = [(("epoch", "batching"), 6), (("epoch", "forward"), 4)]
    after = [(("epoch", "batching"), 4), (("epoch", "forward"), 12), (("epoch", "step"), 4)]
    rows = folded.differential(before, after)
    assert rows == [(("epoch", "forward"), 8, 12), (("epoch", "batching"), 12, 4), (("epoch", "step"), 0, 4)]
    assert sum(r[1] for r in rows) == sum(r[2] for r in rows) == 20
    assert folded.differential_lines(rows)[0] == "epoch;forward 8 12"


def test_speedscope_file_shares_frames_and_weights_samples(tmp_path):
    rooted = folded.phase_rooted(staged())
    doc = json.loads(json.dumps(folded.speedscope(rooted, "store")))
    assert doc["$schema"] == folded.SPEEDSCOPE_SCHEMA
    names = [f["name"] for f in doc["shared"]["frames"]]
    assert len(names) == len(set(names)) and names[:2] == ["epoch", "forward"]
    profile = doc["profiles"][0]
    assert profile["type"] == "sampled" and profile["weights"] == [n for _, n in rooted]
    assert profile["endValue"] == 12 and [names[i] for i in profile["samples"][1]][:2] == ["epoch", "batching"]


SVG_FRAME = re.compile(r'<g><title>(.*?) \(([\d,]+) samples?[^<]*</title><rect [^>]*?y="([\d.]+)"')


def svg_levels(svg: str) -> list:
    """The frame names of an inferno flame graph by depth: ``[{"all"}, {"epoch"}, {phases…}, …]``."""
    frames = [(html.unescape(name), float(y)) for name, _, y in SVG_FRAME.findall(svg)]
    ys = sorted({y for _, y in frames}, reverse=True)
    return [{name for name, y in frames if y == level} for level in ys]


def test_phase_graphs_have_the_phases_as_towers_and_one_file_per_sampled_phase(tmp_path):
    pytest.importorskip("pyinferno")
    files = phaseflames.write_phase_graphs(tmp_path, "store", folded.phase_rooted(staged()))
    levels = svg_levels((tmp_path / files["svg"]).read_text())
    assert levels[:3] == [{"all"}, {"epoch"}, {"forward", "batching", "step", OTHER}]
    assert files["per_phase"] == {p: f"store.{p}.svg" for p in ("batching", "forward", "step", OTHER)}
    forward = svg_levels((tmp_path / "store.forward.svg").read_text())
    assert forward[2] == {"forward"} and "addmm (libtorch.so)" in forward[4]
    assert not (tmp_path / "store.loss.svg").exists() and not (tmp_path / "store.backward.svg").exists()
    assert files["notes"] == [
        "store: no samples in loss, no loss flame graph",
        "store: no samples in backward, no backward flame graph",
    ]
    assert (tmp_path / files["collapsed"]).read_text().splitlines()[0].startswith("epoch;forward;Store.forward")
    assert json.loads((tmp_path / files["speedscope"]).read_text())["profiles"][0]["endValue"] == 12


def test_truncated_stacks_end_at_the_phase():
    rooted = [(("epoch", "forward", "mm"), 3), (("epoch", "forward", "add"), 2), (("epoch", "step"), 1)]
    assert folded.truncated(rooted, 2) == [(("epoch", "forward"), 5), (("epoch", "step"), 1)]


def test_differential_graph_colours_growth_red_and_shrinkage_blue(tmp_path):
    pytest.importorskip("pyinferno")
    rooted = {
        "a": [(("epoch", "batching", "load"), 6), (("epoch", "forward", "mm"), 4)],
        "b": [(("epoch", "batching", "load"), 2), (("epoch", "forward", "mm"), 8)],
    }
    entry = phaseflames.write_diff(tmp_path, "a", "b", rooted)
    assert entry == {
        "before": "a",
        "after": "b",
        "folded": "diff-a-b.folded.txt",
        "svg": "diff-a-b.svg",
        "phases_svg": "diff-a-b-by-phase.svg",
        "notes": [],
    }
    by_phase = (tmp_path / "diff-a-b-by-phase.svg").read_text()
    assert "forward (8 samples, 80.00%; +40.00%)" in by_phase and "batching (2 samples, 20.00%; -40.00%)" in by_phase
    assert (tmp_path / "diff-a-b.folded.txt").read_text() == "epoch;forward;mm 4 8\nepoch;batching;load 6 2\n"
    svg = (tmp_path / "diff-a-b.svg").read_text()
    assert "mm (8 samples, 80.00%; +40.00%)" in svg and "load (2 samples, 20.00%; -40.00%)" in svg
    fills = re.findall(r'fill="rgb\((\d+),(\d+),(\d+)\)"', svg)
    assert any(r > b for r, _, b in map(lambda f: tuple(map(int, f)), fills))
    assert any(b > r for r, _, b in map(lambda f: tuple(map(int, f)), fills))


def test_nothing_to_draw_is_a_note_not_an_empty_file(tmp_path):
    pytest.importorskip("pyinferno")
    with pytest.raises(flamesvg.FlameSvgError, match="^x: no samples to draw$"):
        flamesvg.write(tmp_path / "x.svg", [], "x")
    files = phaseflames.write_phase_graphs(tmp_path, "idle", [])
    assert files["svg"] is None and files["notes"] == ["idle: no samples inside an epoch, no phase flame graphs"]
    assert not list(tmp_path.glob("*.svg"))


def test_without_pyinferno_the_text_files_are_written_and_one_note_says_why(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyinferno", None)
    rooted = folded.phase_rooted(staged())
    files = phaseflames.write_phase_graphs(tmp_path, "store", rooted)
    entry = phaseflames.write_diff(tmp_path, "store", "other", {"store": rooted, "other": rooted})
    assert files["svg"] is None and files["per_phase"] == {} and not list(tmp_path.glob("*.svg"))
    assert len(files["notes"]) == 1 and "pip install pyinferno" in files["notes"][0]
    assert entry["notes"] == files["notes"] and entry["folded"] == "diff-store-other.folded.txt"
    assert (tmp_path / "store.phases.collapsed.txt").is_file() and (tmp_path / "store.phases.speedscope.json").is_file()
