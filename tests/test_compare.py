"""``perfsuite compare``: calibrated and raw modes, the four verdicts, the gate's exit status, drift, bad input."""

import json
import math
import shutil

import pytest

from perfsuite import cli
from perfsuite.analysis import compare, stats
from perfsuite.core.errors import UsageError
from perfsuite.results.reader import load_run
from tests.fakerun import FAST, SLOW, make_run, scale_phase, scaled, set_meta

IMPLS = {"idiomatic": SLOW, "store": FAST}
DRIFT = 1.3
"""Machine-wide factor between the two runs of the A/A pair."""


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    folder = make_run(tmp_path_factory.mktemp("cmp") / "base", impls=IMPLS, epochs=8, steps=40, noise=0.05)
    return set_meta(folder, roofline={"peak_gflops": 200.0})


@pytest.fixture(scope="module")
def drifted(tmp_path_factory):
    """The same code measured again on a machine 1.3× slower everywhere (other seed: other noise)."""
    folder = make_run(
        tmp_path_factory.mktemp("cmp") / "drifted",
        impls=scaled(IMPLS, DRIFT),
        epochs=8,
        steps=40,
        noise=0.05,
        seed=1,
        other=0.0005 * DRIFT,
    )
    return set_meta(folder, roofline={"peak_gflops": 200.0})


def _rows(base, new, **kwargs):
    rows, notes = compare.compare_runs(load_run(base), load_run(new), **kwargs)
    return {(r.impl, r.quantity): r for r in rows}, notes


def test_same_run_exits_zero(base, capsys):
    assert cli.main(["compare", str(base), str(base)]) == 0
    out, err = capsys.readouterr()
    assert "no significant slowdown beyond 5%" in out
    assert "drifted" not in err


def test_machine_drift_is_not_a_regression_when_calibrated(base, drifted, capsys):
    assert cli.main(["compare", str(base), str(drifted)]) == 0
    rows, _ = _rows(base, drifted)
    gated = [r for r in rows.values() if r.impl != "store"]
    assert gated and all(r.mode == "calibrated" and r.verdict in ("no change", "inconclusive") for r in gated)
    assert rows[("idiomatic", "epoch")].unit == rows[("idiomatic", "step")].unit == "×store"
    assert rows[("idiomatic", "epoch")].ratio == pytest.approx(1.0, abs=0.02)
    ref = rows[("store", "epoch")]
    assert ref.verdict == "reference" and ref.unit == "s" and ref.ratio == pytest.approx(DRIFT, rel=0.02)
    assert math.isnan(ref.p_adjusted) and [q for i, q in rows if i == "store"] == ["epoch"]


def test_machine_drift_fails_raw_and_says_why(base, drifted, capsys):
    assert cli.main(["compare", str(base), str(drifted), "--raw"]) == 1
    err = capsys.readouterr().err
    assert "raw seconds across runs are exposed to machine drift" in err
    rows, _ = _rows(base, drifted, raw=True)
    assert rows[("idiomatic", "epoch")].verdict == "slower" and rows[("store", "step")].verdict == "slower"
    assert all(r.mode == "raw" and r.unit == "s" for r in rows.values())


def test_drift_line_when_the_reference_moved(base, drifted, tmp_path, capsys):
    page = tmp_path / "cmp.html"
    cli.main(["compare", str(base), str(drifted), "--html", str(page)])
    err = capsys.readouterr().err
    drift = [line for line in err.splitlines() if "drifted" in line]
    assert drift == [
        "perfsuite: warning: the machine drifted between the runs: store's median epoch moved ×1.30 "
        "(outside its 95% interval); calibrated ratios are used"
    ]
    assert drift[0].removeprefix("perfsuite: warning: ").replace("'", "&#39;") in page.read_text()


def test_drift_line_names_the_matmul_peaks(base, tmp_path, capsys):
    slower_machine = set_meta(shutil.copytree(base, tmp_path / "peak"), roofline={"peak_gflops": 168.0})
    cli.main(["compare", str(base), str(slower_machine)])
    err = capsys.readouterr().err
    assert "the machine drifted between the runs: the matmul peak 200 → 168 GFLOP/s; calibrated ratios" in err
    close = set_meta(shutil.copytree(base, tmp_path / "close"), roofline={"peak_gflops": 196.0})
    cli.main(["compare", str(base), str(close)])
    assert "drifted" not in capsys.readouterr().err


@pytest.mark.parametrize("new", ["base", "drifted"])
def test_real_step_slowdown_is_detected_calibrated(base, drifted, tmp_path, capsys, new):
    """10% more step time in one implementation, with or without machine drift on top."""
    source = {"base": base, "drifted": drifted}[new]
    slower = scale_phase(source, tmp_path / "slower", "idiomatic", "step", 1.1)
    assert cli.main(["compare", str(base), str(slower)]) == 1
    err = capsys.readouterr().err
    assert "idiomatic step" in err and "adjusted" in err
    rows, _ = _rows(base, slower)
    hit = rows[("idiomatic", "step")]
    assert hit.verdict == "slower" and hit.low > 1.05 and hit.ratio == pytest.approx(1.1, abs=0.015)
    assert hit.p_value <= hit.p_adjusted < 0.05 and hit.n_new == 8
    assert [k for k, r in rows.items() if r.verdict == "slower"] == [("idiomatic", "step")]


def test_a_phase_is_calibrated_by_the_same_phase_of_the_reference(base, tmp_path, capsys):
    """Contention that slows only the update (both implementations' step ×1.3) is no regression."""
    both = scale_phase(
        scale_phase(base, tmp_path / "one", "idiomatic", "step", 1.3), tmp_path / "two", "store", "step", 1.3
    )
    assert cli.main(["compare", str(base), str(both)]) == 0
    rows, _ = _rows(base, both)
    assert rows[("idiomatic", "step")].ratio == pytest.approx(1.0, abs=0.03)
    assert rows[("idiomatic", "step")].verdict in ("no change", "inconclusive")
    assert rows[("idiomatic", "epoch")].unit == "×store"
    assert (
        compare.calibrator("step") == "step" and compare.calibrator("other") == compare.calibrator("epoch") == "epoch"
    )


def test_a_phase_under_five_percent_is_shown_but_not_gated(base, tmp_path):
    slower_loss = scale_phase(base, tmp_path / "loss", "idiomatic", "loss", 1.5)
    rows, _ = _rows(base, slower_loss)
    hit = rows[("idiomatic", "loss")]
    assert hit.ratio == pytest.approx(1.5, rel=0.05) and hit.verdict == "no change"
    assert "under 5% of the epoch in both runs; not gated" in hit.note and math.isnan(hit.p_adjusted)


def test_straddling_the_margin_is_inconclusive_and_passes(base, tmp_path, capsys):
    edge = scale_phase(base, tmp_path / "edge", "idiomatic", "step", 1.055)
    assert cli.main(["compare", str(base), str(edge)]) == 0
    out = capsys.readouterr().out
    assert "inconclusive, needs more epochs (does not fail the gate): idiomatic step" in out
    hit = _rows(base, edge)[0][("idiomatic", "step")]
    assert hit.verdict == "inconclusive" and hit.low < 1.05 < hit.high and "more epochs" in hit.note


def test_too_few_epochs_for_the_adjusted_p_is_inconclusive(base, tmp_path):
    """3 epochs against 3 cannot reach p < 0.1: a large change is inconclusive, not slower."""
    few = make_run(tmp_path / "few", impls=IMPLS, epochs=3, steps=40)
    slower = scale_phase(few, tmp_path / "slower", "idiomatic", "step", 1.5)
    rows, notes = _rows(few, slower)
    hit = rows[("idiomatic", "step")]
    assert hit.low > 1.05 and hit.verdict == "inconclusive"
    assert "adjusted p" in hit.note and "3 vs 3 epochs reach p 0.1 at best" in hit.note
    assert "with 3 vs 3 epochs and 5 gated rows, a slowdown of one row alone cannot reach adjusted p < 0.05" in (
        " ".join(notes)
    )
    assert "measure 5 or more epochs per run" in " ".join(notes)
    assert compare.epochs_needed(36, 0.05) == 7 and not compare.power_note(list(_rows(base, base)[0].values()), 0.05)


def test_missing_reference_is_one_line_exit_two(base, tmp_path, capsys):
    alone = make_run(tmp_path / "alone", impls={"idiomatic": SLOW}, epochs=4, steps=10)
    assert cli.main(["compare", str(base), str(alone)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"perfsuite: error: {alone}: ") and "'store'" in err
    assert "--reference NAME" in err and "--raw" in err
    assert cli.main(["compare", str(base), str(alone), "--raw"]) in (0, 1)
    assert cli.main(["compare", str(base), str(base), "--reference", "nothing"]) == 2
    assert f"{base} and {base}: no measured epochs of the reference implementation 'nothing'" in (
        capsys.readouterr().err
    )


def test_another_reference(base, tmp_path):
    slower = scale_phase(base, tmp_path / "slower", "store", "step", 1.3)
    rows, _ = _rows(base, slower, reference="idiomatic")
    assert rows[("idiomatic", "epoch")].verdict == "reference"
    assert rows[("store", "step")].verdict == "slower" and rows[("store", "epoch")].unit == "×idiomatic"


def test_a_burst_of_load_in_one_epoch_is_not_a_regression(base, tmp_path):
    """All 40 steps of one epoch 40% slower: hundreds of correlated steps, but one epoch of evidence."""
    burst = scale_phase(base, tmp_path / "burst", "idiomatic", "batching", 1.4, epoch=3)
    for raw in (False, True):
        rows, _ = _rows(base, burst, raw=raw)
        assert not [r for r in rows.values() if r.verdict == "slower"]
        assert rows[("idiomatic", "batching")].n_new == 8


def test_faster_is_not_a_failure(base, tmp_path, capsys):
    faster = scale_phase(base, tmp_path / "faster", "idiomatic", "batching", 0.5)
    assert cli.main(["compare", str(base), str(faster)]) == 0
    assert "faster" in capsys.readouterr().out
    assert _rows(base, faster)[0][("idiomatic", "epoch")].verdict == "faster"


def test_threshold_above_the_change_passes(base, tmp_path):
    slower = scale_phase(base, tmp_path / "slower", "idiomatic", "step", 1.1)
    assert cli.main(["compare", str(base), str(slower), "--threshold", "40%"]) == 0


def test_table_states_the_verdicts_and_exit_status(base, capsys):
    cli.main(["compare", str(base), str(base)])
    out = " ".join(capsys.readouterr().out.split())
    for word in ("slower:", "faster:", "no change:", "inconclusive:", "exit status 1 only when a row is slower"):
        assert word in out
    assert "p adj" in out and "calibrated: ratios to store within each run" in out


def test_html_view(base, tmp_path):
    slower = scale_phase(base, tmp_path / "slower", "idiomatic", "step", 1.1)
    out = tmp_path / "cmp.html"
    assert cli.main(["compare", str(base), str(slower), "--html", str(out)]) == 1
    html = out.read_text()
    assert "Significant slowdown" in html and "<strong>idiomatic step</strong>" in html
    assert "p_adjusted" in html and "calibrated" in html and "Verdicts and exit status" in html
    assert "inconclusive: the interval straddles" in html and "exit status 1 only when a row is slower" in html
    assert "http://" not in html and "https://" not in html


def test_metadata_differences_warn(base, tmp_path, capsys):
    other = make_run(tmp_path / "other", epochs=4, steps=40, seed=1)
    meta = json.loads((other / "meta.json").read_text())
    meta["machine"]["cpu_model"] = "Another CPU"
    meta["software"]["torch"] = "2.13.0"
    (other / "meta.json").write_text(json.dumps(meta))
    cli.main(["compare", str(base), str(other)])
    err = capsys.readouterr().err
    assert "machine differs: cpu_model 'Test CPU' → 'Another CPU'" in err
    assert "software differs: torch '2.14.1' → '2.13.0'" in err


def _truncate(path, keep):
    text = path.read_text()
    path.write_text(text[: int(len(text) * keep)])


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: _truncate(d / "meta.json", 0.5), "truncated JSON"),
        (lambda d: _truncate(d / "epochs.csv", 0.6), "epochs.csv"),
        (lambda d: (d / "epochs.csv").write_text(""), "epochs.csv: unreadable CSV"),
        (lambda d: _truncate(d / "phases.csv", 0.5), None),
        (lambda d: (d / "steps.csv").unlink(), None),
        (lambda d: (d / "meta.json").unlink(), "no meta.json"),
        (
            lambda d: (d / "meta.json").write_text(
                json.dumps({**json.loads((d / "meta.json").read_text()), "schema_version": 99})
            ),
            "schema version 99 is newer",
        ),
    ],
)
def test_unusable_input_exits_two(base, tmp_path, capsys, damage, message):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(base, broken)
    damage(broken)
    status = cli.main(["compare", str(base), str(broken)])
    err = capsys.readouterr().err
    if message is None:  # per-step files are not needed: compare reads per-epoch seconds
        assert status == 0
        return
    assert status == 2, err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_not_a_folder_and_no_common_impl(base, tmp_path, capsys):
    assert cli.main(["compare", str(base), str(tmp_path / "nowhere")]) == 2
    assert "no such run folder" in capsys.readouterr().err
    lone = make_run(
        tmp_path / "lone",
        impls={"other": {"batching": 1e-3, "forward": 1e-3, "loss": 1e-3, "backward": 1e-3, "step": 1e-3}},
        epochs=2,
        steps=3,
    )
    assert cli.main(["compare", str(base), str(lone)]) == 2
    assert "no implementation has measured epochs in both" in capsys.readouterr().err


@pytest.mark.parametrize("text, value", [("5%", 0.05), ("0.05", 0.05), ("12.5%", 0.125), ("0%", 0.0)])
def test_parse_threshold(text, value):
    assert compare.parse_threshold(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["5", "abc", "150%", "-5%"])
def test_parse_threshold_rejects(text):
    with pytest.raises(UsageError):
        compare.parse_threshold(text)


def test_bad_options_are_one_line_exit_two(base, capsys):
    for option in (["--threshold", "abc"], ["--threshold", "5"], ["--alpha", "1.5"], ["--alpha", "0"]):
        assert cli.main(["compare", str(base), str(base), *option]) == 2
        err = capsys.readouterr().err
        assert err.startswith("perfsuite: error: ") and len(err.strip().splitlines()) == 1


def test_verdict_rules():
    assert compare.verdict(1.3, 1.2, 1.4, 0.001, 0.05, 0.05) == ("slower", "")
    assert compare.verdict(0.7, 0.6, 0.8, 0.001, 0.05, 0.05) == ("faster", "")
    assert compare.verdict(1.02, 1.01, 1.03, 0.001, 0.05, 0.05)[0] == "no change"
    assert compare.verdict(1.0, 0.97, 1.04, 0.5, 0.05, 0.05) == ("no change", "")
    assert compare.verdict(1.3, 0.9, 1.6, 0.001, 0.05, 0.05)[0] == "inconclusive"
    assert compare.verdict(1.3, 1.2, 1.4, 0.2, 0.05, 0.05)[0] == "inconclusive"
    assert compare.verdict(1.3, math.nan, math.nan, math.nan, 0.05, 0.05)[0] == "inconclusive"


def test_the_faster_edge_is_one_over_one_plus_threshold():
    assert compare.margin(0.05) == pytest.approx((1 / 1.05, 1.05))
    assert compare.verdict(0.94, 0.93, 0.951, 0.001, 0.05, 0.05)[0] == "faster"
    assert compare.verdict(0.955, 0.953, 0.958, 0.001, 0.05, 0.05)[0] == "no change"


def test_adjust_p_values_is_benjamini_hochberg():
    adjusted = stats.adjust_p_values([0.01, 0.04, math.nan, 0.03, 0.5])
    assert adjusted[:2] == pytest.approx([0.04, 0.04 * 4 / 3]) and math.isnan(adjusted[2])
    assert adjusted[3:] == pytest.approx([0.04 * 4 / 3, 0.5])
    assert stats.adjust_p_values([]) == []
