"""Run-level statistics on hand-made run folders: speedups, gap decomposition, headline."""

import math

import pytest

from perfsuite.analysis import speedups as analysis
from perfsuite.core.errors import UsageError
from perfsuite.results.reader import ALL_PHASES, load_run
from tests.fakerun import FAST, SLOW, make_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return load_run(make_run(tmp_path_factory.mktemp("run") / "r", rounds=2, epochs=4, steps=40, noise=0.02))


def test_measured_epochs_exclude_warmup(run):
    assert len(run.measured("store")) == 8
    assert (run.measured("store")["warmup"] == 0).all()
    assert len(run.measured_steps("store")) == 8 * 40


def test_speedup_matches_the_means(run):
    result = analysis.analyse(run)
    assert result.baseline == "idiomatic"
    expected = (sum(SLOW.values()) * 40 + 0.0005) / (sum(FAST.values()) * 40 + 0.0005)
    s = result.impls["store"].speedup
    assert s.n == 8
    assert s.median == pytest.approx(expected, rel=0.03)
    assert s.ci_low < s.median < s.ci_high
    assert result.impls["idiomatic"].speedup is None
    assert result.fastest == "store"


def test_gap_decomposition_adds_up(run):
    g = analysis.analyse(run).impls["store"].gap
    assert g.pairs == 8
    assert sum(c.seconds for c in g.phases.values()) == pytest.approx(g.seconds, rel=1e-9)
    assert sum(c.share for c in g.phases.values()) == pytest.approx(1.0, rel=1e-9)
    assert g.significant
    expected_batching = (SLOW["batching"] - FAST["batching"]) * 40
    assert g.phases["batching"].seconds == pytest.approx(expected_batching, rel=0.03)
    assert g.top()[0] == "batching"
    assert g.phases["batching"].share > 0.6


def test_headline_names_fastest_speedup_and_phase(run):
    text = analysis.headline(analysis.analyse(run))
    assert text.startswith("store is the fastest implementation")
    assert "95% CI" in text and "faster than idiomatic" in text
    assert "batching accounts for" in text


def test_baseline_option(run):
    result = analysis.analyse(run, "store")
    assert result.baseline == "store"
    assert result.impls["idiomatic"].speedup.median < 1
    text = analysis.headline(result)
    assert text.startswith("The baseline store is the fastest")
    with pytest.raises(UsageError, match="--baseline nosuch"):
        analysis.analyse(run, "nosuch")


def test_default_baseline_falls_back_to_slowest(tmp_path):
    run = load_run(make_run(tmp_path / "r", impls={"a": SLOW, "b": FAST}, epochs=2, steps=5))
    result = analysis.analyse(run)
    assert result.baseline == "a"
    assert "idiomatic has no measured epochs" in result.notes[0]


def test_tiny_runs_say_so(tmp_path):
    run = load_run(make_run(tmp_path / "r", epochs=1, steps=5))
    result = analysis.analyse(run)
    s = result.impls["store"]
    assert s.epoch.n == 1 and not s.epoch.has_interval
    assert math.isnan(s.gap.low)
    assert "1 sample: no interval" in analysis.headline(result)


def test_single_implementation(tmp_path):
    run = load_run(make_run(tmp_path / "r", impls={"store": FAST}, epochs=2, steps=5))
    result = analysis.analyse(run)
    assert "ran alone" in analysis.headline(result)


def test_noise_flags(tmp_path):
    noisy = analysis.analyse(load_run(make_run(tmp_path / "n", epochs=6, steps=3, noise=0.6))).noisy
    assert noisy and all(rel > 0.1 for _, _, rel in noisy)
    quiet = analysis.analyse(load_run(make_run(tmp_path / "q", epochs=6, steps=3, noise=0.001))).noisy
    assert quiet == []


def test_to_dict_is_json_ready(run):
    import json

    payload = analysis.analyse(run).to_dict()
    text = json.dumps(payload, allow_nan=False)
    assert '"baseline": "idiomatic"' in text
    assert set(payload["implementations"]["store"]["gap"]["phases"]) == set(ALL_PHASES)


def test_headline_admits_an_interval_that_includes_one(tmp_path):
    same = {"batching": 0.001, "forward": 0.001, "loss": 0.001, "backward": 0.001, "step": 0.001}
    run = load_run(
        make_run(tmp_path / "r", impls={"idiomatic": same, "twin": same}, epochs=6, steps=5, noise=0.3, seed=3)
    )
    text = analysis.headline(analysis.analyse(run))
    assert text.startswith("twin is the fastest implementation")
    assert "does not show it is faster" in text
    assert "within noise, so no phase can be credited" in text
