"""``perfsuite sweep``: --vary parsing and its one-line errors, and a tiny sweep end to end."""

import json

import pandas as pd
import pytest

from perfsuite.cli.main import main
from perfsuite.core.errors import UsageError
from perfsuite.measure import sweep
from tests.test_run import data_args


def one_line_error(capsys, fragment):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith("perfsuite: error: ") and fragment in lines[0], lines[0]


def test_parse_one_and_two_axes():
    axes = sweep.parse_vary(["batch-size=32,64", "subset=0.5,1"])
    assert [(a.name, a.values) for a in axes] == [("batch_size", (32, 64)), ("subset", (0.5, 1.0))]
    assert sweep.point_values(axes) == [
        {"batch_size": 32, "subset": 0.5},
        {"batch_size": 32, "subset": 1.0},
        {"batch_size": 64, "subset": 0.5},
        {"batch_size": 64, "subset": 1.0},
    ]
    assert sweep.label({"batch_size": 32, "subset": 0.5}) == "batch_size-32+subset-0.5"
    assert sweep.parse_vary(["threads= 1, 2"])[0].values == (1, 2)


@pytest.mark.parametrize(
    "texts,fragment",
    [
        ([], "sweep needs --vary NAME=V1,V2"),
        (["lr=0.1,0.2"], "--vary lr=0.1,0.2: unknown name 'lr' (one of batch_size, threads, hidden, subset)"),
        (["batch_size=32,abc"], "--vary batch_size=32,abc: 'abc' is not a whole number"),
        (["hidden=64.5"], "--vary hidden=64.5: '64.5' is not a whole number"),
        (["subset=0.1,lots"], "--vary subset=0.1,lots: 'lots' is not a number"),
        (["subset=nan"], "'nan' is not a finite number"),
        (["batch_size=32,,64"], "'' is not a whole number"),
        (["batch_size"], "--vary batch_size: expected NAME=V1,V2,…"),
        (["batch_size="], "expected NAME=V1,V2,…"),
        (["batch_size=32,32"], "32 listed twice"),
        (["threads=1", "threads=2"], "--vary threads: given twice"),
        (["threads=1", "hidden=8", "subset=0.1"], "at most 2 names at a time"),
    ],
)
def test_bad_vary_values(texts, fragment):
    with pytest.raises(UsageError) as info:
        sweep.parse_vary(texts)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "vary,fragment",
    [
        ("batch_size=32,0", "--vary batch_size=0: must be a whole number of at least 1"),
        ("subset=0.5,1.5", "--vary subset=1.5: must be a fraction in (0, 1]"),
        ("threads=0", "--vary threads=0: must be a whole number of at least 1"),
        ("width=8", "unknown name 'width'"),
    ],
)
def test_bad_vary_on_the_command_line_is_one_line(vary, fragment, capsys, tmp_path):
    assert (
        main(["sweep", "--vary", vary, "--impls", "store", "--out", str(tmp_path / "s"), "--quiet", *data_args()]) == 2
    )
    one_line_error(capsys, fragment)
    assert not (tmp_path / "s").exists()


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "s"
    status = main(
        [
            "sweep",
            "--vary",
            "batch_size=64,256",
            "--impls",
            "store,tuned",
            "--subset",
            "0.02",
            "--epochs",
            "1",
            "--warmup",
            "0",
            "--threads",
            "1",
            "--out",
            str(out),
            "--quiet",
            *data_args(),
        ]
    )
    assert status == 0
    return out


def test_tiny_sweep_writes_points_table_and_page(tiny_sweep):
    record = json.loads((tiny_sweep / "sweep.json").read_text())
    assert record["status"] == "complete" and record["vary"] == [{"name": "batch_size", "values": [64, 256]}]
    assert [p["status"] for p in record["points"]] == ["complete", "complete"]
    for point, batch in zip(record["points"], (64, 256), strict=True):
        meta = json.loads((tiny_sweep / point["folder"] / "meta.json").read_text())
        assert meta["workload"]["batch_size"] == batch and meta["sweep"]["point"] == point["label"]
        assert meta["roofline"]["peak_gflops"] > 0
        first, second = meta["roofline"]["measured_peaks_gflops"]
        assert meta["roofline"]["peak_gflops"] >= max(first, second) * 0.999
        summary = json.loads((tiny_sweep / point["folder"] / "summary.json").read_text())
        assert summary["implementations"]["tuned"]["roofline"]["floor_multiple"] > 1
    table = pd.read_csv(tiny_sweep / "sweep.csv")
    assert set(table["quantity"]) == {"epoch", "batching", "forward", "loss", "backward", "step", "other"}
    assert set(table["impl"]) == {"store", "tuned"} and set(table["batch_size"]) == {64, 256}
    assert (table["median"][table["quantity"] == "epoch"] > 0).all()
    assert {f["impl"] for f in record["analysis"]["overhead_fits"]} == {"store", "tuned"}
    page = (tiny_sweep / "index.html").read_text()
    assert page.count("<svg") == 3 and "Seconds per sample" in page and "compute floor" in page


def test_report_command_redraws_a_sweep(tiny_sweep, capsys):
    (tiny_sweep / "index.html").unlink()
    assert main(["report", str(tiny_sweep)]) == 0
    assert "index.html" in capsys.readouterr().out
    assert (tiny_sweep / "index.html").is_file()


def test_damaged_sweep_json_is_one_line(tmp_path, capsys):
    (tmp_path / "sweep.json").write_text("{not json")
    assert main(["report", str(tmp_path)]) == 2
    one_line_error(capsys, "sweep.json: unreadable or truncated JSON")


def _fake_sweep(folder, batches=(16, 64, 256), threads=(1, 2), fixed=100e-6, per_sample=2e-6):
    """A two-axis sweep folder of hand-made points (no roofline): step seconds = fixed + per_sample · batch."""
    import json as json_mod
    import math

    from perfsuite.results.writer import write_json
    from tests.fakerun import make_run

    points = []
    for b in batches:
        for t in threads:
            values = {"batch_size": b, "threads": t}
            name = sweep.label(values)
            step = (fixed + per_sample * b) / t
            means = {p: step / 5 for p in ("batching", "forward", "loss", "backward", "step")}
            make_run(
                folder / name, {"loop": means}, epochs=3, warmup=1, steps=math.ceil(1200 / b), noise=0.01, other=0.0
            )
            meta_path = folder / name / "meta.json"
            meta = json_mod.loads(meta_path.read_text())
            meta["workload"].update(batch_size=b, threads=t, subset=0.02)
            write_json(meta_path, meta)
            points.append({"label": name, "folder": name, "values": values, "status": "complete"})
    record = {
        "schema_version": 1,
        "kind": "sweep",
        "sweep_id": "fake",
        "created": "now",
        "status": "complete",
        "machine": {"cpu_model": "Test CPU"},
        "software": {"torch": "2.14.1"},
        "vary": [{"name": "batch_size", "values": list(batches)}, {"name": "threads", "values": list(threads)}],
        "base_workload": {"epochs": 3, "warmup": 1, "repeats": 1},
        "impls": ["loop"],
        "roofline": False,
        "dataset": {"label": "MNIST", "synthetic": False, "n_train": 60000},
        "points": points,
    }
    write_json(folder / "sweep.json", record)
    return folder


def test_two_axis_sweep_without_roofline_fits_the_overhead(tmp_path):
    from perfsuite.render.sweep_page import write_sweep_page

    folder = _fake_sweep(tmp_path / "s")
    write_sweep_page(folder)
    record = json.loads((folder / "sweep.json").read_text())
    fits = {f["threads"]: f for f in record["analysis"]["overhead_fits"]}
    assert set(fits) == {1, 2}
    assert fits[1]["fixed_seconds_per_step"] == pytest.approx(100e-6, rel=0.1)
    assert fits[1]["seconds_per_sample"] == pytest.approx(2e-6, rel=0.1)
    assert fits[1]["crossover_batch"] == pytest.approx(50, rel=0.15)
    assert "below batch ≈ 5" in record["analysis"]["crossovers"][0]
    table = pd.read_csv(folder / "sweep.csv")
    epoch = table[(table["quantity"] == "epoch") & (table["threads"] == 1)].sort_values("batch_size")
    assert epoch["median"].iloc[0] == pytest.approx((100e-6 + 2e-6 * 16) / 16, rel=0.05)
    assert table["floor_multiple"].isna().all()
    page = (folder / "index.html").read_text()
    assert page.count("<svg") == 2 and "Distance to the compute floor" not in page and "threads=2" in page
