"""Phase-rooted stacks, per-phase and differential stacks and the speedscope file, on hand-made stacks."""

import json

import pytest

from perfsuite.core.interface import OTHER
from perfsuite.profile import folded, stacks
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
