"""pytest-benchmark JSON beside a run's figures: validation, comparison, attaching, the report section."""

import json

import numpy as np
import pytest

from perfsuite import cli
from perfsuite.analysis import benchjson
from perfsuite.core.errors import UsageError
from perfsuite.render import report
from perfsuite.results.reader import load_run
from tests.fakerun import META, make_run

WORKLOAD = dict(META["workload"])
DATASET = dict(META["dataset"])


def _record(name, stats, extra=None, params=None):
    full = {
        "min": stats["median"] * 0.9,
        "max": stats["median"] * 1.5,
        "mean": stats["median"] * 1.05,
        "stddev": stats["median"] * 0.1,
        "rounds": 5,
        "iqr": stats["median"] * 0.05,
        **stats,
    }
    return {
        "group": "g",
        "name": name,
        "fullname": f"tests/benchmarks/x.py::{name}",
        "params": params or {},
        "extra_info": extra or {},
        "stats": full,
    }


def _ours(impl, kind, phase=None, median=0.01, workload=None, dataset=None):
    extra = {"impl": impl, "kind": kind, "workload": workload or WORKLOAD, "dataset": dataset or DATASET, "threads": 2}
    if phase:
        extra["phase"] = phase
    name = f"test_epoch[{impl}]" if kind == "epoch" else f"test_phase[{impl}-{phase}]"
    return _record(name, {"median": median}, extra)


def _payload(*records):
    return {
        "machine_info": {"cpu": {"brand_raw": "Test CPU"}},
        "datetime": "2026-01-01T00:00:00",
        "version": "5.2.3",
        "benchmarks": list(records),
    }


def _write(path, payload):
    path.write_text(json.dumps(payload))
    return path


@pytest.fixture
def run(tmp_path):
    return load_run(make_run(tmp_path / "run", epochs=3, steps=12))


def _expected(run, impl, phase, steps="all"):
    """Median per-step seconds of ``phase`` read straight from phases.csv (measured epochs only)."""
    phases = run.phases
    measured = run.epochs.loc[(run.epochs["impl"] == impl) & (run.epochs["warmup"] == 0), ["round", "epoch"]]
    rows = phases[(phases["impl"] == impl) & (phases["phase"] == phase)].merge(measured, on=["round", "epoch"])
    if steps == "first":
        rows = rows[rows["step"] == 0]
    elif steps == "inner":
        rows = rows[(rows["step"] > 0) & (rows["step"] < rows["step"].max())]
    return float(np.median(rows["seconds"]))


def test_load_reads_every_benchmark(tmp_path):
    path = _write(
        tmp_path / "b.json",
        _payload(_ours("store", "epoch"), _ours("store", "phase", "forward"), _record("test_other", {"median": 1.0})),
    )
    loaded = benchjson.load(path)
    assert [b.kind for b in loaded.benchmarks] == ["epoch", "phase", "other"]
    assert [b.impl for b in loaded.benchmarks] == ["store", "store", None]
    assert loaded.benchmarks[1].phase == "forward"
    assert loaded.benchmarks[0].stats["median"] == 0.01


@pytest.mark.parametrize(
    "text, problem",
    [
        ("{truncated", "unreadable JSON"),
        ("[]", "expected a JSON object"),
        ('{"benchmarks": {}}', "no 'benchmarks' list"),
        ('{"benchmarks": [3]}', "benchmark 0 is not an object"),
        ('{"benchmarks": [{"stats": {}}]}', "benchmark 0 has no name"),
        ('{"benchmarks": [{"name": "t", "stats": {"median": "fast"}}]}', "stats lack numbers for median"),
        ('{"benchmarks": [{"name": "t"}]}', "t has no stats"),
    ],
)
def test_malformed_file_is_one_line_naming_it(tmp_path, text, problem):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(UsageError) as info:
        benchjson.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: not a pytest-benchmark JSON file") and problem in message
    assert "\n" not in message


def test_binary_and_missing_files(tmp_path):
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(UsageError, match="not UTF-8"):
        benchjson.load(binary)
    with pytest.raises(UsageError, match="no such file"):
        benchjson.load(tmp_path / "absent.json")


def test_comparison_puts_the_runs_figure_beside_each_benchmark(tmp_path, run):
    epoch_median = float(np.median(run.measured("store")["wall_seconds"]))
    bench = benchjson.load(
        _write(
            tmp_path / "b.json",
            _payload(
                _ours("store", "epoch", median=epoch_median * 1.05),
                _ours("store", "phase", "forward"),
                _ours("store", "phase", "first_batch"),
                _ours("store", "phase", "batching"),
                _record("test_other", {"median": 1.0}),
            ),
        )
    )
    frame = benchjson.comparison(bench, run).set_index("measures")
    epoch = frame.loc["epoch"]
    assert epoch["run median"] == benchjson.format_seconds(epoch_median)
    assert epoch["run figure"] == "median epoch" and epoch["benchmark vs run"] == "+5.0%"
    assert frame.loc["phase: forward", "run median"] == benchjson.format_seconds(_expected(run, "store", "forward"))
    assert frame.loc["phase: first_batch", "run median"] == benchjson.format_seconds(
        _expected(run, "store", "batching", "first")
    )
    assert frame.loc["phase: batching", "run median"] == benchjson.format_seconds(
        _expected(run, "store", "batching", "inner")
    )
    other = frame.loc["other"]
    assert other["implementation"] == "—" and other["run median"] == "—" and other["benchmark vs run"] == "—"


def test_implementation_is_found_from_params_without_extra_info(tmp_path, run):
    bench = benchjson.load(
        _write(
            tmp_path / "b.json",
            _payload(_record("test_epoch[idiomatic]", {"median": 2.0}, params={"impl_spec": "idiomatic"})),
        )
    )
    assert benchjson.comparison(bench, run)["implementation"].tolist() == ["idiomatic"]


def test_comparison_without_a_run_keeps_the_statistics(tmp_path):
    bench = benchjson.load(_write(tmp_path / "b.json", _payload(_ours("store", "epoch", median=0.5))))
    row = benchjson.comparison(bench).iloc[0]
    assert row["median"] == "500 ms" and row["run median"] == "—"


def test_workload_notes_name_what_differs(tmp_path, run):
    same = benchjson.load(_write(tmp_path / "same.json", _payload(_ours("store", "epoch"))))
    assert benchjson.workload_notes(same, run.meta) == []
    other = benchjson.load(
        _write(
            tmp_path / "other.json",
            _payload(
                _ours(
                    "store",
                    "epoch",
                    workload={**WORKLOAD, "subset": 0.02},
                    dataset={**DATASET, "label": "SYNTHETIC MNIST-shaped data (not MNIST)"},
                )
            ),
        )
    )
    (note,) = benchjson.workload_notes(other, run.meta)
    assert "subset 0.02 (run: 1.0)" in note and "dataset SYNTHETIC" in note


@pytest.mark.parametrize(
    "seconds, text",
    [(2.5, "2.5 s"), (0.0123, "12.3 ms"), (0.000212, "212 µs"), (4e-8, "40 ns"), (None, "—"), (float("nan"), "—")],
)
def test_format_seconds(seconds, text):
    assert benchjson.format_seconds(seconds) == text


def test_attach_copies_into_the_run_folder(tmp_path, run):
    source = _write(tmp_path / "mine.json", _payload(_ours("store", "epoch")))
    target = benchjson.attach(run.folder, source)
    assert target == run.folder / "benchmark" / "mine.json" and target.read_text() == source.read_text()
    assert benchjson.attach(run.folder, target) == target
    assert benchjson.discovered(run.folder, target)


def test_attach_refuses_bad_input_and_copies_nothing(tmp_path, run):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(UsageError, match="no 'benchmarks' list"):
        benchjson.attach(run.folder, bad)
    assert not (run.folder / "benchmark").exists()
    good = _write(tmp_path / "good.json", _payload())
    with pytest.raises(UsageError, match="no such run folder"):
        benchjson.attach(tmp_path / "nowhere", good)


def test_report_shows_the_section_for_a_file_in_the_run_folder(run):
    _write(run.folder / "benchmark.json", _payload(_ours("store", "epoch", median=0.02)))
    html = report.write_report(run.folder).read_text()
    assert 'id="benchmarks"' in html and "benchmark vs run" in html
    assert "tests/benchmarks/x.py::test_epoch[store]" in html and "median epoch" in html


def test_report_shows_a_broken_file_as_a_warning(run):
    (run.folder / "benchmark.json").write_text("{truncated")
    html = report.write_report(run.folder).read_text()
    assert "benchmark.json: not a pytest-benchmark JSON file (unreadable JSON" in html


def test_cli_report_with_pytest_benchmark(tmp_path, run, capsys):
    source = _write(
        tmp_path / "bench.json", _payload(_ours("store", "phase", "step", workload={**WORKLOAD, "threads": 1}))
    )
    assert cli.main(["report", str(run.folder), "--pytest-benchmark", str(source)]) == 0
    assert f"pytest-benchmark: {run.folder / 'benchmark' / 'bench.json'}" in capsys.readouterr().out
    html = (run.folder / "index.html").read_text()
    assert "test_phase[store-step]" in html and "threads 1 (run: 2)" in html


def test_cli_report_with_a_malformed_file_is_one_line(tmp_path, run, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"benchmarks": [{"name": "t", "stats": {}}]}')
    assert cli.main(["report", str(run.folder), "--pytest-benchmark", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err == f"perfsuite: error: {bad}: not a pytest-benchmark JSON file "
        "(t: stats lack numbers for median, iqr, mean, stddev, min, max, rounds)"
    )
