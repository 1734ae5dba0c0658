"""``perfsuite compare``: verdicts, CI-gating exit status, unusable input, metadata warnings."""

import json

import pytest

from perfsuite import cli
from perfsuite.analysis import compare
from perfsuite.core.errors import UsageError
from perfsuite.results.reader import load_run
from tests.fakerun import make_run, scale_phase


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("cmp") / "base", epochs=4, steps=40, noise=0.05)


def test_same_run_exits_zero(base, capsys):
    assert cli.main(["compare", str(base), str(base)]) == 0
    out = capsys.readouterr().out
    assert "no significant slowdown beyond 5%" in out


def test_scaled_step_exits_one_and_names_it(base, tmp_path, capsys):
    slower = scale_phase(base, tmp_path / "slower", "store", "step", 1.3)
    assert cli.main(["compare", str(base), str(slower), "--threshold", "5%"]) == 1
    err = capsys.readouterr().err
    assert "store step" in err
    assert "idiomatic" not in err


def test_scaled_step_rows(base, tmp_path):
    slower = scale_phase(base, tmp_path / "slower", "store", "step", 1.3)
    rows, _ = compare.compare_runs(load_run(base), load_run(slower))
    verdicts = {(r.impl, r.quantity): r for r in rows}
    hit = verdicts[("store", "step")]
    assert hit.verdict == "slower" and hit.ratio == pytest.approx(1.3)
    assert hit.low > 1 and hit.p_value < 0.05 and hit.unit == "epoch" and hit.n_new == 4
    slower_epochs = {k for k, r in verdicts.items() if r.verdict != "no change"}
    assert ("store", "step") in slower_epochs <= {("store", "step"), ("store", "epoch")}


def test_a_burst_of_load_in_one_epoch_is_not_a_regression(base, tmp_path):
    """All 40 steps of one epoch 40% slower: hundreds of correlated steps, but one epoch of evidence."""
    burst = scale_phase(base, tmp_path / "burst", "store", "batching", 1.4, epoch=2)
    rows, _ = compare.compare_runs(load_run(base), load_run(burst))
    hit = {(r.impl, r.quantity): r for r in rows}[("store", "batching")]
    assert hit.verdict == "no change" and hit.n_new == 4 and hit.p_value > 0.05


def test_faster_is_not_a_failure(base, tmp_path, capsys):
    faster = scale_phase(base, tmp_path / "faster", "idiomatic", "batching", 0.5)
    assert cli.main(["compare", str(base), str(faster)]) == 0
    assert "faster" in capsys.readouterr().out


def test_threshold_above_the_change_passes(base, tmp_path):
    slower = scale_phase(base, tmp_path / "slower", "store", "step", 1.3)
    assert cli.main(["compare", str(base), str(slower), "--threshold", "40%"]) == 0


def test_html_view(base, tmp_path):
    slower = scale_phase(base, tmp_path / "slower", "store", "step", 1.3)
    out = tmp_path / "cmp.html"
    assert cli.main(["compare", str(base), str(slower), "--html", str(out)]) == 1
    html = out.read_text()
    assert "Significant slowdown" in html and "<strong>store step</strong>" in html
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


def test_verdict_rules():
    assert compare.verdict(1.3, 1.2, 1.4, 0.001, 0.05, 0.05) == ("slower", "")
    assert compare.verdict(0.7, 0.6, 0.8, 0.001, 0.05, 0.05) == ("faster", "")
    assert compare.verdict(1.02, 1.01, 1.03, 0.001, 0.05, 0.05)[0] == "no change"
    assert compare.verdict(1.3, 0.9, 1.6, 0.001, 0.05, 0.05) == ("no change", "")
    assert compare.verdict(1.3, 1.2, 1.4, 0.2, 0.05, 0.05) == ("no change", "")
