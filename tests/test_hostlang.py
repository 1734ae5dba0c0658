"""The host-language comparison (store, native, rust) on hand-made runs whose ratios are known."""

import json
import math

import pytest

from perfsuite.analysis.hostlang import host_language
from perfsuite.analysis.sweep import host_points
from perfsuite.render import report
from perfsuite.render.sweep_charts import host_table
from perfsuite.results.reader import load_run
from tests.fakerun import FAST, SLOW, make_run


def scaled(means: dict, factor: float) -> dict:
    return {phase: seconds * factor for phase, seconds in means.items()}


@pytest.fixture(scope="module")
def three_hosts(tmp_path_factory):
    """store, native 10% faster per phase, rust 20% faster, and the idiomatic loop; 8 paired epochs, no 'other'."""
    impls = {"idiomatic": SLOW, "store": FAST, "native": scaled(FAST, 0.9), "rust": scaled(FAST, 0.8)}
    return make_run(tmp_path_factory.mktemp("hosts") / "run", impls, epochs=8, noise=0.02, other=0.0)


def test_paired_ratios_find_the_known_factors(three_hosts):
    result = host_language(load_run(three_hosts))
    for impl, factor in (("native", 0.9), ("rust", 0.8)):
        for quantity in ("epoch", "forward", "step"):
            row = result.row(impl, quantity)
            assert row.pairs == 8 and row.low <= row.ratio <= row.high
            assert row.ratio == pytest.approx(factor, rel=0.03), (impl, quantity)
    assert result.row("rust").language == "Rust" and result.row("native").language == "C++"


def test_the_article_share_is_the_log_ratio(three_hosts):
    result = host_language(load_run(three_hosts))
    article = result.article
    expected = sum(SLOW.values()) / (0.8 * sum(FAST.values()))
    assert article["speedup"] == pytest.approx(expected, rel=0.05)
    assert article["low"] <= article["speedup"] <= article["high"] and article["pairs"] == 8
    host = result.row("rust").ratio
    assert article["host_share"] == pytest.approx(math.log(1 / host) / math.log(article["speedup"]))
    assert f"the host language explains {article['host_share']:.0%} of that speedup" in result.sentence
    rust = result.row("rust")
    assert result.sentence.startswith(f"At equal design the epoch takes {rust.ratio:.3f}× [{rust.low:.3f}–")
    assert result.sentence.index("Rust host loop") < result.sentence.index("C++ host loop")


def test_rust_no_faster_than_python_explains_none(tmp_path):
    impls = {"idiomatic": SLOW, "store": FAST, "rust": scaled(FAST, 1.1)}
    result = host_language(load_run(make_run(tmp_path / "r", impls, epochs=6, noise=0.02, other=0.0)))
    assert result.article["host_share"] < 0
    assert "the host language explains none of it" in result.sentence
    assert "C++" not in result.sentence


def test_no_comparison_without_store_and_a_compiled_host(tmp_path):
    assert host_language(load_run(make_run(tmp_path / "a", {"store": FAST, "tuned": FAST}, epochs=2))) is None
    assert host_language(load_run(make_run(tmp_path / "b", {"native": FAST, "rust": FAST}, epochs=2))) is None
    only_native = host_language(load_run(make_run(tmp_path / "c", {"store": FAST, "native": FAST}, epochs=2)))
    assert only_native.article == {} and "C++" in only_native.sentence and "idiomatic" not in only_native.sentence


def test_summary_and_report_show_it_only_when_measured(three_hosts, tmp_path):
    page = report.write_report(three_hosts).read_text()
    summary = json.loads((three_hosts / "summary.json").read_text())
    assert summary["host_language"]["reference"] == "store" and len(summary["host_language"]["rows"]) == 14
    assert "The host language at equal design" in page and "Rust (rust) ÷ Python, × (95% CI)" in page
    plain = make_run(tmp_path / "plain", epochs=2, steps=5)
    assert "host language" not in report.write_report(plain).read_text()
    assert "host_language" not in json.loads((plain / "summary.json").read_text())


def test_sweep_points_carry_the_comparison(three_hosts, tmp_path):
    record = {
        "points": [
            {"label": "threads=1", "values": {"threads": 1}, "folder": three_hosts.name},
            {"label": "threads=2", "values": {"threads": 2}, "folder": "never-ran"},
        ]
    }
    points = host_points(three_hosts.parent, record)
    assert [p["point"] for p in points] == ["threads=1"] and points[0]["values"] == {"threads": 1}
    table = host_table(points)
    assert "Rust (rust) ÷ Python" in table and "C++ (native) ÷ Python" in table and "threads=1" in table
    assert all(f"<th>{q}</th>" in table for q in ("epoch", "batching", "forward", "loss", "backward", "step"))
    assert "nan" not in table
