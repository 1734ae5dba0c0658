"""The run folder's one record type: written by ResultsWriter, read back by Run.records, from every command."""

import shutil
from pathlib import Path

import pytest

import perfsuite
from perfsuite import load_run
from perfsuite.cli import main
from perfsuite.results.record import EpochRecord
from perfsuite.results.writer import ResultsWriter
from tests.test_run import data_args

FIXTURES = Path(__file__).parent / "fixtures" / "test_impls.py"
TINY = ["--subset", "0.01", "--epochs", "1", "--warmup", "1", "--threads", "1", "--quiet"]
SAMPLED = ["--rate", "200", "--subset", "0.05", "--epochs", "2", "--warmup", "1", "--threads", "1", "--quiet"]


def _record(epoch, rank=0, **fields):
    return EpochRecord(
        round=0,
        epoch=epoch,
        warmup=epoch == 0,
        wall=0.5 + epoch,
        phases=((0.01, 0.02, 0.003, 0.04, 0.005), (0.011, 0.021, 0.0031, 0.041, 0.0051)),
        losses=(2.3, 2.1),
        train_accuracy=0.5,
        test_accuracy=0.25,
        rank=rank,
        **fields,
    )


def test_records_round_trip_through_the_files(tmp_path):
    written = [
        _record(0, facts={"graphs_compiled": 2}),
        _record(1, subphases={"comm": (0.001, 0.002)}),
        _record(1, rank=1, subphases={"comm": (0.003, 0.004)}),
    ]
    writer = ResultsWriter(tmp_path)
    writer.write_meta({"run_id": "t", "implementations": {"x": {"status": "ok"}}})
    for record in written:
        writer.append_epoch("x", record)
    writer.close()
    assert load_run(tmp_path).records("x") == written


def test_the_epoch_row_is_derived_from_the_samples():
    row = _record(1).row("x")
    assert row["steps"] == 2 and row["forward_seconds"] == pytest.approx(0.041)
    assert row["other_seconds"] == pytest.approx(1.5 - sum(sum(step) for step in _record(1).phases))
    assert row["mean_loss"] == pytest.approx(2.2) and row["final_loss"] == 2.1
    assert row["comm_seconds"] is None and row["facts"] is None


COMMANDS = {
    "run": ["run", "--no-roofline", *TINY],
    "trace": ["trace", "--top", "2", *TINY],
    "flame": ["flame", *SAMPLED],  # enough samples for py-spy to draw
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_fact_reaches_epochs_csv_from_every_command(command, tmp_path):
    if command == "flame" and shutil.which("py-spy") is None:
        pytest.skip("py-spy is not installed")
    out = tmp_path / "r"
    assert main([*COMMANDS[command], "--impls", f"{FIXTURES}:Reporting", "--out", str(out), *data_args()]) == 0
    run = load_run(out)
    facts = [found for _, found in run.facts("reporting")]
    assert facts and all("epochs_seen" in found for found in facts)
    assert [found["epochs_seen"] for found in facts] == sorted(found["epochs_seen"] for found in facts)
    assert [r.facts for r in run.records("reporting")] == facts


def test_a_multi_rank_epoch_is_one_sample_its_slowest_rank(tmp_path):
    writer = ResultsWriter(tmp_path)
    writer.write_meta({"run_id": "t", "implementations": {"idiomatic": {}, "ddp": {}}})
    for epoch in range(4):
        writer.append_epoch("idiomatic", _record(epoch))
        for rank, extra in ((0, 0.0), (1, 0.25)):
            record = _record(epoch, rank=rank)
            writer.append_epoch("ddp", EpochRecord(**{**record.__dict__, "wall": record.wall + extra}))
    writer.close()
    run = load_run(tmp_path)
    assert list(run.measured("ddp")["rank"]) == [1, 1, 1]
    result = perfsuite.analyse(run)
    assert result.impls["ddp"].epoch.n == 3 and result.impls["ddp"].speedup.n == 3
