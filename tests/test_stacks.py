"""Collapsed-stack parsing and phase attribution on small hand-made stack files."""

import pytest

from perfsuite.core.errors import UsageError
from perfsuite.core.interface import OTHER, PHASES
from perfsuite.profile import stacks
from perfsuite.results.record import EpochRecord

LINES = {phase: line for line, phase in sorted(stacks.harness_call_sites().items(), reverse=True)}
"""A harness line per phase (any line of its call)."""
EPOCH_LINE = min(stacks.epoch_call_sites())
WORKER = "<module> (<string>:1);main (perfsuite/profile_worker.py:81);measured_epochs (perfsuite/profile_worker.py:49)"


def harness(phase: str) -> str:
    """The frames down to the harness frame at the call of ``phase``."""
    return (
        f"{WORKER};time_epoch (perfsuite/phases.py:{EPOCH_LINE});time_staged_epoch (perfsuite/phases.py:{LINES[phase]})"
    )


def write(tmp_path, lines) -> str:
    path = tmp_path / "stacks.collapsed.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_every_phase_has_a_harness_line():
    assert set(LINES) == set(PHASES)
    assert stacks.epoch_call_sites()


def test_parse_python_and_native_frames():
    f = stacks.parse_frame("Store.forward (impls/store.py:139)")
    assert (f.name, f.function, f.file, f.line) == ("Store.forward", "forward", "impls/store.py", 139)
    n = stacks.parse_frame(
        "c10::impl::wrap<&at::(anonymous namespace)::mm(at::Tensor const&, at::Tensor const&)>::call (libtorch_cpu.so)"
    )
    assert n.name.endswith("::call") and n.file == "libtorch_cpu.so" and n.line is None
    bare = stacks.parse_frame("phase_forward")
    assert (bare.name, bare.file, bare.line) == ("phase_forward", "", None)


def test_parse_collapsed_counts_and_blank_lines():
    parsed = stacks.parse_collapsed(["a (x.py:1);b (x.py:2) 7", "", "a (x.py:1) 3\n"])
    assert [(len(frames), n) for frames, n in parsed] == [(2, 7), (1, 3)]
    assert parsed[0][0][1] == stacks.Frame("b", "x.py", 2)


@pytest.mark.parametrize("bad", ["a;b", "a;b x", "a;b 0", " 5"])
def test_malformed_line_names_file_and_line(bad):
    with pytest.raises(UsageError, match=r"f.txt:2: not a collapsed stack"):
        stacks.parse_collapsed(["a 1", bad], "f.txt")


def test_shares_from_a_hand_made_file(tmp_path):
    path = write(
        tmp_path,
        [
            f"{harness('batching')};batching (perfsuite/phases.py:40);"
            "_SingleProcessDataLoaderIter.__next__ (torch/utils/data/dataloader.py:700) 10",
            f"{harness('forward')};Store.forward (impls/store.py:139);MyModel.forward (impls/store.py:89) 20",
            f"{harness('loss')};Store.loss (impls/store.py:142);cross_entropy (impls/store.py:101) 5",
            # a frame named forward deep inside backward (autograd Function.forward) stays backward
            f"{harness('backward')};Store.backward (impls/store.py:145);Tensor.backward (torch/_tensor.py:623);"
            "Function.forward (x.py:3) 30",
            f"{harness('step')};Optimizer.step (torch/optim/optimizer.py:5);zero_grad (torch/optim/optimizer.py:9) 15",
            # inside the epoch, between phases (loss bookkeeping): other
            f"{WORKER};time_epoch (perfsuite/phases.py:{EPOCH_LINE});time_staged_epoch (perfsuite/phases.py:1) 20",
            # outside every epoch: waiting for the next command
            "<module> (<string>:1);main (perfsuite/profile_worker.py:81);_serve (perfsuite/profile_worker.py:55) 99",
        ],
    )
    counts = stacks.count_samples(stacks.read_collapsed(path))
    assert counts.counts == {"batching": 10, "forward": 20, "loss": 5, "backward": 30, "step": 15, OTHER: 20}
    assert counts.outside == 99 and counts.inside == 100
    assert counts.shares()["backward"] == pytest.approx(0.30)
    assert sum(counts.shares().values()) == pytest.approx(1.0)


def test_epoch_frame_after_the_epoch_window_is_outside():
    after = max(stacks.epoch_call_sites()) + 1
    parsed = stacks.parse_collapsed([f"{WORKER};time_epoch (perfsuite/phases.py:{after}) 4"])
    assert stacks.count_samples(parsed).outside == 4


def test_without_line_numbers_the_called_method_names_the_phase():
    parsed = stacks.parse_collapsed(
        [
            "time_epoch;time_staged_epoch;Store.forward;matmul 3",
            "time_epoch;time_staged_epoch;batching;__next__ 2",
            "time_epoch;time_staged_epoch;Impl.step 1",
            "time_epoch;time_staged_epoch 4",
        ]
    )
    counts = stacks.count_samples(parsed)
    assert (counts.counts["forward"], counts.counts["batching"], counts.counts["step"], counts.counts[OTHER]) == (
        3,
        2,
        1,
        4,
    )


def test_fused_loop_phases_from_native_phase_frames():
    native = f"{WORKER};time_epoch (perfsuite/phases.py:{EPOCH_LINE});Native.train_epoch (impls/native.py:136)"
    parsed = stacks.parse_collapsed(
        [
            f"{native};Trainer::train_epoch (trainer.so);phase_forward (trainer.so);at::mm (libtorch_cpu.so) 6",
            f"{native};Trainer::train_epoch (trainer.so);(anonymous namespace)::phase_backward (trainer.so) 3",
            f"{native};Trainer::train_epoch (trainer.so);phase_batching(Batches&, at::Tensor&) (trainer.so) 1",
            f"{native};Native.permutation (impls/native.py:130) 2",
            f"{native};not_phase_step_helper (trainer.so) 1",
        ]
    )
    counts = stacks.count_samples(parsed)
    assert (counts.counts["forward"], counts.counts["backward"], counts.counts["batching"]) == (6, 3, 1)
    assert counts.counts[OTHER] == 3 and counts.counts["step"] == 0


def test_fused_rust_loop_phases_from_its_demangled_symbols():
    rust = f"{WORKER};time_epoch (perfsuite/phases.py:{EPOCH_LINE});Rust.train_epoch (impls/rust.py:200)"
    lib = "(libperfsuite_rust.so)"
    parsed = stacks.parse_collapsed(
        [
            f"{rust};psr_train_epoch {lib};perfsuite_rust::trainer::phase_step {lib};at_add_ (perfsuite_tch.so) 4",
            f"{rust};perfsuite_rust::trainer::phase_loss::h0123456789abcdef {lib} 2",
            f"{rust};perfsuite_rust::trainer::phase_forwardly {lib} 1",
        ]
    )
    counts = stacks.count_samples(parsed)
    assert (counts.counts["step"], counts.counts["loss"], counts.counts[OTHER]) == (4, 2, 1)


def test_attribution_round_trips_through_a_dict():
    a = stacks.Attribution()
    assert stacks.Attribution.from_dict(a.to_dict()) == a


def test_timer_shares_and_agreement():
    records = [
        EpochRecord(0, 0, False, 1.0, ((0.1, 0.2, 0.0, 0.3, 0.1), (0.1, 0.0, 0.0, 0.0, 0.0)), (1.0, 1.0)),
        EpochRecord(0, 1, False, 1.0, ((0.2, 0.2, 0.2, 0.2, 0.1),), (1.0,)),
    ]
    timers = stacks.timer_shares(records)
    assert timers["batching"] == pytest.approx(0.2) and timers[OTHER] == pytest.approx(0.15)
    rows = stacks.agreement({"batching": 0.25}, timers)
    assert [r["phase"] for r in rows] == list(PHASES) + [OTHER]
    assert rows[0]["difference_pp"] == pytest.approx(5.0)
    assert rows[1]["difference_pp"] is None
    assert stacks.timer_shares([]) == {}


def test_top_frames_are_the_innermost_frames_per_phase():
    parsed = stacks.parse_collapsed(
        [
            f"{harness('batching')};batching (perfsuite/phases.py:40);normalize (tv.py:9);at::sub (libtorch_cpu.so) 6",
            f"{harness('batching')};batching (perfsuite/phases.py:40);to_tensor (tv.py:3) 2",
            f"{harness('forward')};Store.forward (impls/store.py:139) 1",
            "outside (x.py:1) 5",
        ]
    )
    top = stacks.top_frames(parsed, top=1)
    assert top["batching"] == [["at::sub (libtorch_cpu.so)", 0.75]]
    assert top["forward"] == [["Store.forward (impls/store.py)", 1.0]]
    assert set(top) == {"batching", "forward"}
