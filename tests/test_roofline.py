"""The roofline: the epoch's flop count on known shapes, the floor arithmetic, a short real measurement."""

import math

import pytest

from perfsuite.analysis import roofline
from perfsuite.measure import probes


def test_epoch_flops_of_the_article_workload():
    flops = roofline.epoch_flops(samples=60_000, hidden=128, batch_size=128)
    assert flops["forward"] == 2 * 60_000 * (784 * 128 + 128 * 10) == 12_195_840_000
    assert flops["backward"] == 12_195_840_000 + 2 * 60_000 * 128 * 10 == 12_349_440_000
    assert flops["steps"] == 469
    assert flops["update"] == 5 * (784 * 128 + 128 + 128 * 10 + 10) * 469 == 238_650_650
    assert flops["total"] == 24_783_930_650


def test_epoch_flops_by_hand_on_a_tiny_shape():
    flops = roofline.epoch_flops(samples=10, hidden=2, batch_size=4)
    layers = 784 * 2 + 2 * 10
    assert flops["forward"] == 2 * 10 * layers == 31_760
    assert flops["backward"] == 31_760 + 2 * 10 * 2 * 10 == 32_160
    assert roofline.parameters(2) == 1_600
    assert flops["update"] == 5 * 1_600 * 3
    assert flops["total"] == 31_760 + 32_160 + 24_000


def test_workload_shapes_follow_batch_and_width():
    shapes = {s.name: s for s in roofline.workload_shapes(batch=32, hidden=64, square=256)}
    assert (shapes["forward x·W1"].m, shapes["forward x·W1"].k, shapes["forward x·W1"].n) == (32, 784, 64)
    assert shapes["backward xᵀ·dh"].transposed_a and shapes["backward xᵀ·dh"].k == 32
    assert shapes["square 256"].flops == 2 * 256**3 and not shapes["square 256"].per_step
    per_step = sum(s.flops for s in shapes.values() if s.per_step)
    flops = roofline.epoch_flops(samples=32, hidden=64, batch_size=32)
    assert per_step == flops["forward"] + flops["backward"]


def _throughput(rate_of):
    shapes = roofline.workload_shapes(batch=128, hidden=128, square=1024)
    return {
        "threads": 2,
        "measure_seconds": 1.0,
        "shapes": [
            {**s.to_dict(), "calls": 10, "best_gflops": rate_of(s), "median_gflops": rate_of(s) * 0.9} for s in shapes
        ],
    }


def test_floor_record_uses_the_highest_rate_and_each_shape_rate():
    record = roofline.floor_record(
        _throughput(lambda s: 200.0 if s.name.startswith("square") else 100.0),
        samples=60_000,
        hidden=128,
        batch_size=128,
    )
    assert record["peak_gflops"] == 200.0 and record["peak_shape"] == "square 1024"
    assert record["floor_seconds"] == pytest.approx(24_783_930_650 / 200e9)
    assert record["workload_shapes_gflops"] == pytest.approx(100.0)
    assert record["matmul_floor_seconds"] == pytest.approx((12_195_840_000 + 12_349_440_000) / 100e9)


def test_annotate_gives_every_implementation_its_multiple():
    meta = {"roofline": roofline.floor_record(_throughput(lambda s: 100.0), 60_000, 128, 128)}
    floor = meta["roofline"]["floor_seconds"]
    summary = {"implementations": {"fast": {"epoch_seconds": 1.5 * floor}, "broken": {"status": "failed"}}}
    roofline.annotate(summary, meta)
    fast = summary["implementations"]["fast"]["roofline"]
    assert fast["floor_multiple"] == pytest.approx(1.5)
    assert fast["share_of_peak"] == pytest.approx(1 / 1.5)
    assert fast["achieved_gflops"] == pytest.approx(100.0 / 1.5)
    assert "roofline" not in summary["implementations"]["broken"]
    assert summary["roofline"]["floor_seconds"] == floor


def test_annotate_reports_a_failed_measurement():
    summary = roofline.annotate({"implementations": {}}, {"roofline": {"error": "no answer within 1 s"}})
    assert summary["roofline"] == {"error": "no answer within 1 s"}
    assert "no answer" in roofline.describe(summary["roofline"])


def test_a_short_real_measurement():
    record = probes.measure(threads=1, batch=16, hidden=8, square=64, budget=0.05)
    assert record["threads"] == 1 and len(record["shapes"]) == 6
    assert all(r["best_gflops"] >= r["median_gflops"] > 0 and math.isfinite(r["best_gflops"]) for r in record["shapes"])
    floor = roofline.floor_record(record, samples=100, hidden=8, batch_size=16)
    assert 0 < floor["floor_seconds"] <= floor["matmul_floor_seconds"] * 2


def test_best_of_two_measurements_keeps_each_shapes_better_rate():
    busy = roofline.floor_record(
        _throughput(lambda s: 150.0 if s.name.startswith("square") else 100.0), 60_000, 128, 128
    )
    quiet = roofline.floor_record(
        _throughput(lambda s: 200.0 if s.name.startswith("square") else 80.0), 60_000, 128, 128
    )
    best = roofline.best_of([busy, quiet], 60_000, 128, 128)
    assert best["peak_gflops"] == 200.0 and best["floor_seconds"] == pytest.approx(24_783_930_650 / 200e9)
    assert best["workload_shapes_gflops"] == pytest.approx(100.0)
    assert best["measured_peaks_gflops"] == [150.0, 200.0] and best["measure_seconds"] == 2.0
    assert "best of 2 measurements, at the start and end of the run: 150, 200" in roofline.describe(best)
    summary = roofline.annotate({"implementations": {}}, {"roofline": best})
    assert summary["roofline"]["measured_peaks_gflops"] == [150.0, 200.0]
    assert "150, 200" in roofline.describe(summary["roofline"])


def test_best_of_skips_a_failed_measurement():
    first = roofline.floor_record(_throughput(lambda s: 120.0), 60_000, 128, 128)
    best = roofline.best_of([first, {"error": "no answer within 1 s"}], 60_000, 128, 128)
    assert best["peak_gflops"] == 120.0 and best["measured_peaks_gflops"] == [120.0, None]
    assert "120, failed" in roofline.describe(best)
    failed = {"error": "no answer within 1 s"}
    assert roofline.best_of([failed, failed], 60_000, 128, 128) is failed


def test_a_single_measurement_is_described_without_a_list():
    record = roofline.floor_record(_throughput(lambda s: 100.0), 60_000, 128, 128)
    assert "best of" not in roofline.describe(record)


def test_a_failed_second_measurement_keeps_the_first_and_says_so(monkeypatch):
    from types import SimpleNamespace

    from perfsuite.core.workload import Workload

    first = roofline.floor_record(_throughput(lambda s: 120.0), 60_000, 128, 128)
    monkeypatch.setattr(probes, "measure_in_process", lambda *args, **kwargs: {"error": "no answer within 1 s"})
    notes = []
    record = probes.for_run(
        Workload(), SimpleNamespace(n_train=60_000), 1.0, SimpleNamespace(note=notes.append), earlier=first
    )
    assert record["peak_gflops"] == 120.0 and record["measured_peaks_gflops"] == [120.0, None]
    assert notes == [
        "perfsuite: measuring the roofline again failed (no answer within 1 s); the first measurement counts"
    ]
