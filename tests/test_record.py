"""perfsuite.record: phase recording for a user's own loop, timed with a fake clock."""

import json
import math
import subprocess
import sys
import warnings

import pytest

from perfsuite import record
from perfsuite.core.clock import FakeClock
from perfsuite.core.interface import PHASES
from perfsuite.results.reader import load_run
from perfsuite.results.record import EpochRecord
from perfsuite.results.writer import ResultsWriter


@pytest.fixture
def clock():
    """Recording on with a fake clock for one test (always switched off after it)."""
    fake = FakeClock()
    record.start(clock=fake)
    yield fake
    record.stop()


def _loop(clock, steps=3, user=True):
    """One epoch of a loop where every phase lasts a known time: batching 1, forward 2, loss 3, backward 4, step 5,
    to_device 0.5, 0.25 of unmarked work per step; 7 before the loop (unmarked) and eval 10 after it."""
    data = list(range(steps))

    def loader():
        for item in data:
            clock.advance(1.0)
            yield item

    with record.epoch():
        clock.advance(7.0)
        for _ in record.batches(loader()):
            if user:
                with record.phase("to_device"):
                    clock.advance(0.5)
            with record.phase("forward"):
                clock.advance(2.0)
            with record.phase("loss"):
                clock.advance(3.0)
            with record.phase("backward"):
                clock.advance(4.0)
            with record.phase("step"):
                clock.advance(5.0)
            clock.advance(0.25)
        if user:
            with record.phase("eval"):
                clock.advance(10.0)


def test_standard_phases_sum_and_other_is_wall_minus_phases(clock):
    _loop(clock)
    (epoch,) = record.active().epochs
    assert epoch["epoch"] == 0
    assert [row for row in epoch["phases"]] == [[1.0, 2.0, 3.0, 4.0, 5.0]] * 3
    assert epoch["wall"] == pytest.approx(7 + 3 * (15 + 0.5 + 0.25) + 10)
    record_ = EpochRecord(0, 0, False, epoch["wall"], tuple(map(tuple, epoch["phases"])), ())
    row = record_.row("mine")
    assert row["other_seconds"] == pytest.approx(epoch["wall"] - 45)
    assert row["coverage"] == pytest.approx(45 / epoch["wall"])


def test_user_named_phases_are_per_step_and_charged_to_the_current_step(clock):
    _loop(clock)
    (epoch,) = record.active().epochs
    assert epoch["user"]["to_device"] == [[0, 0.5], [1, 0.5], [2, 0.5]]
    assert epoch["user"]["eval"] == [[2, 10.0]]  # after the last batch: the last step


def test_the_final_empty_request_and_the_iterator_creation_are_batching(clock):
    class Loader:
        def __iter__(self):
            clock.advance(0.5)  # creating the iterator: the first step's batching
            return self._gen()

        def _gen(self):
            for item in range(2):
                clock.advance(1.0)
                yield item
            clock.advance(0.25)  # the final, empty request: the last step's batching

    with record.epoch():
        for _ in record.batches(Loader()):
            with record.phase("forward"):
                clock.advance(2.0)
    (epoch,) = record.active().epochs
    assert [row[0] for row in epoch["phases"]] == [1.5, 1.25]
    assert epoch["wall"] == pytest.approx(1.5 + 1.25 + 4.0)


def test_without_the_batch_wrapper_a_repeated_standard_phase_opens_a_step(clock):
    @record.phase("step")
    def update():
        clock.advance(5.0)

    with record.epoch():
        for _ in range(4):
            with record.phase("forward"):
                clock.advance(2.0)
            with record.phase("logging"):
                clock.advance(1.0)
            update()
    (epoch,) = record.active().epochs
    assert epoch["phases"] == [[0.0, 2.0, 0.0, 0.0, 5.0]] * 4
    assert epoch["user"]["logging"] == [[s, 1.0] for s in range(4)]


def test_losses_are_read_after_the_epoch_and_aligned_with_steps(clock):
    class Value:
        reads = 0

        def __float__(self):
            Value.reads += 1
            return 0.5

    with record.epoch():
        for i in record.batches(range(3)):
            with record.phase("forward"):
                clock.advance(1.0)
            if i != 1:
                record.loss(Value())
            assert Value.reads == 0  # never read inside the epoch
    (epoch,) = record.active().epochs
    assert epoch["losses"][0] == 0.5 and math.isnan(epoch["losses"][1]) and epoch["losses"][2] == 0.5


def test_a_tensor_loss_is_kept_without_its_graph_and_read_exactly(clock):
    import torch

    w = torch.tensor([1.5, -2.0], requires_grad=True)
    with record.epoch():
        for i in record.batches(range(2)):
            loss = (w * (i + 1)).pow(2).sum()
            loss.backward()
            record.loss(loss)
            assert type(record.active()._losses[i]) is float  # read at once on the CPU: no graph, no alias held
    (epoch,) = record.active().epochs
    assert epoch["losses"] == [6.25, 25.0]


def test_a_tensor_that_is_not_one_number_on_the_cpu_is_kept_as_an_alias_without_its_graph():
    import torch

    from perfsuite.core.recording import kept

    w = torch.tensor([1.5, -2.0], requires_grad=True)
    pair = w * 2
    alias = kept(pair)
    assert torch.equal(alias, pair.detach()) and alias.grad_fn is None and not alias.requires_grad
    assert alias.data_ptr() == pair.data_ptr()  # the same values, not a copy
    on_meta = torch.ones((), device="meta", requires_grad=True) * 2
    assert kept(on_meta).grad_fn is None and kept(on_meta).device.type == "meta"  # not read: a device may be busy
    assert kept(0.5) == 0.5


def test_nested_phases_are_an_error(clock):
    with (
        pytest.raises(record.RecordingError, match="phases do not nest"),
        record.epoch(),
        record.phase("forward"),
        record.phase("to_device"),
    ):
        pass


def test_overlapping_phases_are_an_error(clock):
    a, b = record.phase("forward"), record.phase("loss")
    with record.epoch():
        a.__enter__()
        with pytest.raises(record.RecordingError, match="'loss' opened while phase 'forward' is open"):
            b.__enter__()
        with pytest.raises(record.RecordingError, match="'loss' closed while phase 'forward' is open"):
            b.__exit__(None, None, None)
        a.__exit__(None, None, None)


def test_a_batch_requested_inside_a_phase_and_an_epoch_inside_an_epoch_are_errors(clock):
    with (
        pytest.raises(record.RecordingError, match="a batch (iterator created|requested)"),
        record.epoch(),
        record.phase("forward"),
    ):
        next(iter(record.batches(range(2))))
    with pytest.raises(record.RecordingError, match="epochs do not nest"), record.epoch(), record.epoch():
        pass


def test_a_phase_outside_an_epoch_warns_once_and_is_not_recorded(clock):
    with pytest.warns(record.RecordingWarning, match="'eval' outside an epoch") as caught:
        for _ in range(3):
            with record.phase("eval"):
                clock.advance(1.0)
    assert len(caught) == 1
    with pytest.warns(record.RecordingWarning, match="batches outside an epoch"):
        assert list(record.batches(range(3))) == [0, 1, 2]
    assert record.active().epochs == []


def test_an_epoch_left_by_an_exception_is_dropped_and_the_finished_ones_kept(clock):
    _loop(clock, user=False)
    with pytest.raises(ZeroDivisionError), record.epoch():
        for _ in record.batches(range(3)):
            with record.phase("forward"):
                raise ZeroDivisionError
    _loop(clock, user=False)
    assert [e["epoch"] for e in record.active().epochs] == [0, 2]


@pytest.mark.parametrize("name", ["other", "comm", "bad name", "", "1st", "x" * 65])
def test_bad_phase_names_are_refused(clock, name):
    with pytest.raises(ValueError, match="phase name"):
        record.phase(name)


@pytest.mark.parametrize("name", ["other", "bad name", 7])
def test_bad_phase_names_are_refused_while_off_too(name):
    assert record.active() is None
    with pytest.raises(ValueError, match="phase name"):
        record.phase(name)


def test_a_scope_fetched_before_the_loop_follows_start_and_stop():
    forward = record.phase("forward")  # fetched while off, kept across the switches
    fake = FakeClock()
    recorder = record.start(clock=fake)
    try:
        assert record.phase("forward") is forward
        with record.epoch():
            for _ in record.batches([1, 2]):
                with forward:
                    fake.advance(2.0)
        assert [row[1] for row in recorder.epochs[0]["phases"]] == [2.0, 2.0]
    finally:
        record.stop()
    null = type(record.phase("loss"))
    assert record.phase("forward") is forward and type(forward) is null
    with record.epoch(), forward, forward:  # off again: nothing is timed or checked
        pass
    assert len(recorder.epochs) == 1


def test_stopping_inside_a_fetched_scope_closes_the_phase_in_the_recorder_that_opened_it():
    forward = record.phase("forward")
    fake = FakeClock()
    recorder = record.start(clock=fake)
    try:
        with record.epoch():
            for _ in record.batches([1]):
                with forward:
                    fake.advance(3.0)
                    record.stop()
    finally:
        record.stop()
    assert recorder.epochs[0]["phases"] == [[0.0, 3.0, 0.0, 0.0, 0.0]]
    assert type(forward) is type(record.phase("loss"))


def test_the_off_state_does_nothing_and_shares_null_contexts():
    assert record.active() is None
    items = [1, 2]
    assert record.batches(items) is items
    assert record.epoch() is record.epoch()
    assert record.phase("forward") is record.phase("forward")
    calls = []

    @record.phase("step")
    def update(x):
        calls.append(x)
        return x + 1

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with record.epoch(), record.phase("forward"), record.phase("forward"):  # not even nesting is checked
            record.loss(1.0)
    assert update(1) == 2 and calls == [1]


def test_a_decorator_applied_while_off_times_once_recording_is_on():
    @record.phase("step")
    def update(clock):
        clock.advance(2.0)

    fake = FakeClock()
    record.start(clock=fake)
    try:
        with record.epoch():
            update(fake)
        assert record.active().epochs[0]["phases"] == [[0.0, 0.0, 0.0, 0.0, 2.0]]
    finally:
        record.stop()


def test_the_standard_phases_are_the_harness_phases():
    assert record.STANDARD == PHASES
    assert "other" in record.RESERVED and "comm" in record.RESERVED


def test_importing_perfsuite_record_loads_neither_torch_nor_pandas():
    heavy = "('torch', 'numpy', 'pandas', 'matplotlib')"
    code = f"import sys; from perfsuite import record; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_file_sink_lines_and_user_phases_round_trip_through_the_run_folder(tmp_path):
    path = tmp_path / "records.jsonl"
    fake = FakeClock()
    record.start(path, clock=fake)
    try:
        _loop(fake)
    finally:
        record.stop()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["hello"] == 1 and lines[1] == {"begin": 0} and lines[2]["epoch"] == 0
    found = lines[2]
    user = {name: tuple(tuple(p) for p in pairs) for name, pairs in found["user"].items()}
    rec = EpochRecord(0, 0, False, found["wall"], tuple(map(tuple, found["phases"])), (), user_phases=user)
    (tmp_path / "run").mkdir()
    writer = ResultsWriter(tmp_path / "run")
    writer.write_meta({"implementations": {"mine": {}}})
    writer.append_epoch("mine", rec)
    writer.close()
    run = load_run(tmp_path / "run")
    assert set(run.phases["phase"]) == {*PHASES, "to_device", "eval"}
    assert {"to_device", "eval"} <= set(run.wide_phases.columns)
    (back,) = run.records("mine")
    assert back.user_phases == {"eval": ((2, 10.0),), "to_device": ((0, 0.5), (1, 0.5), (2, 0.5))}
    assert back.phases == rec.phases


def test_the_off_state_lets_exceptions_through():
    with pytest.raises(KeyError), record.epoch(), record.phase("forward"):
        raise KeyError("x")
    with record.phase("forward") as value:
        assert value is None
