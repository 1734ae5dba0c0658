"""benchmarks/compare_rates.py's bookkeeping: judgements, rates, resuming and judging again (no measuring)."""

import importlib.util
import json
import math
import statistics
from pathlib import Path
from types import SimpleNamespace

import pytest

from perfsuite.results.schema import SCHEMA_VERSION
from tests.fakerun import FAST, make_run, scale_phase, set_meta

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "compare_rates.py"


@pytest.fixture(scope="module")
def cr():
    spec = importlib.util.spec_from_file_location("compare_rates", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(impl, quantity, verdict, ratio=1.0):
    return {
        "impl": impl,
        "quantity": quantity,
        "verdict": verdict,
        "ratio": ratio,
        "low": 0.9,
        "high": 1.1,
        "p_adjusted": 0.5,
    }


def test_a_judgement_names_its_rows_and_keeps_the_slowed_figures(cr):
    rows = [
        _row("slowstep", "step", "slower", 1.1),
        _row("store", "batching", "inconclusive"),
        _row("slowstep", "epoch", "no change"),
        _row("slowstep", "forward", "no change"),
    ]
    j = cr._judgement(1, rows)
    assert j.slower == ["slowstep step"] and j.inconclusive == ["store batching"]
    assert set(j.slowed) == {"step", "epoch"} and j.slowed["step"][0] == 1.1
    assert j.alarm() and j.detected()


def test_rates_count_alarms_and_detections_of_the_slowed_implementation_only(cr):
    def pair(kind, slower):
        return {"kind": kind, "modes": {"ab": {"status": int(bool(slower)), "slower": slower}}}

    results = [pair("aa", []), pair("aa", ["store step"]), pair("ab", ["slowstep step"]), pair("ab", ["store step"])]
    got = cr.rates(results)["ab"]
    assert (got["false_alarm"]["hits"], got["false_alarm"]["n"]) == (1, 2)
    assert (got["detection"]["hits"], got["detection"]["n"]) == (1, 2)
    assert 0 < got["detection"]["low"] < 0.5 < got["detection"]["high"] < 1


def test_resuming_refuses_other_options_but_judging_again_may_move_the_checkout(cr, tmp_path):
    path = tmp_path / "compare_rates.json"
    config = {"subset": 0.25, "impls": "store,/a/slowstep.py:SlowStep", "pairs": 20, "resume": False}
    path.write_text(json.dumps({"config": config, "pairs": [{"kind": "aa", "index": 1}]}))
    assert cr.judged(path, config | {"pairs": 30, "resume": True}) == [{"kind": "aa", "index": 1}]
    with pytest.raises(SystemExit, match="subset"):
        cr.judged(path, config | {"subset": 0.5})
    moved = config | {"impls": "store,/b/slowstep.py:SlowStep"}
    with pytest.raises(SystemExit, match="impls"):
        cr.judged(path, moved)
    assert len(cr.judged(path, moved, cr.RESUMABLE + ("impls",))) == 1


def test_judging_again_needs_a_measured_benchmark(cr, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cr.parse_args(["--out", str(tmp_path), "--rejudge"])
    assert exit_.value.code == 2 and "compare_rates.json does not exist" in capsys.readouterr().err


def test_an_ab_run_is_judged_again_with_what_would_settle_it(cr, tmp_path):
    sides = {"slowstep@base": FAST, "slowstep@new": FAST}
    run = make_run(tmp_path / "ab", sides, epochs=3, rounds=3, steps=10, noise=0.8)
    slow = scale_phase(run, tmp_path / "slow", "slowstep@new", "step", 1.15)
    set_meta(
        slow, fresh_workers=True, ab={"pairs": [{"impl": "slowstep", "base": "slowstep@base", "new": "slowstep@new"}]}
    )
    j = cr._ab_again(slow, SimpleNamespace(threshold="5%", alpha=0.05))
    assert "slowstep step" in j.inconclusive and j.status == 0
    assert j.settle.startswith("to settle slowstep ") and "--fresh-workers --repeats" in j.settle
    old = {k: v for k, v in j.__dict__.items() if k != "settle"}
    assert cr.Judgement(**old).settle == "", "judgements written before settle was kept still load"


def test_the_step_spread_sets_the_aa_ratios_beside_what_their_intervals_claimed(cr):
    def judged(ratio, half):
        return {"slowed": {"step": [ratio, ratio / half, ratio * half, 0.5]}, "slower": []}

    aa = [judged(r, 1.02) for r in (0.98, 1.0, 1.02, 1.0)]
    ab = [judged(1.1, 1.03), judged(1.08, 1.02), {"slowed": {}, "slower": []}]
    spread = cr.step_spread(aa, ab)
    assert spread["aa_ratios"] == [0.98, 1.02] and spread["ab_ratios"] == [1.08, 1.1]
    assert spread["ab_lower"] == pytest.approx([1.08 / 1.02, 1.1 / 1.03])
    logs = [math.log(r) for r in (0.98, 1.0, 1.02, 1.0)]
    assert spread["aa_sd"] == pytest.approx(statistics.stdev(logs))
    assert spread["aa_interval_sd"] == pytest.approx(math.log(1.02) / 1.96)
    assert "A/A log ratios' sd 1.6%, their intervals implied 1.0%" in cr.table(
        {"calibrated": {"false_alarm": cr.rate(0, 4), "detection": cr.rate(1, 2), "step": spread}}
    )


def test_resuming_refuses_another_kind_of_machine(cr, tmp_path):
    def record(name, model, cpus):
        base = tmp_path / name / "base"
        base.mkdir(parents=True)
        machine = {"cpu_model": model, "logical_cpus": cpus}
        (base / "meta.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION, "machine": machine}))
        return {"kind": "aa", "index": 1, "base": str(base)}

    results = [record("aa-01", "AMD EPYC", 2), {"kind": "aa", "index": 2, "base": str(tmp_path / "gone" / "base")}]
    here = {"cpu_model": "AMD EPYC", "logical_cpus": 2, "hostname": "elsewhere"}
    cr.same_machine(results, here)
    with pytest.raises(SystemExit, match=r"measured on AMD EPYC \(2 CPUs\), this machine is Intel Xeon \(2 CPUs\)"):
        cr.same_machine(results, here | {"cpu_model": "Intel Xeon"})
    with pytest.raises(SystemExit, match=r"\(4 CPUs\)"):
        cr.same_machine(results, here | {"logical_cpus": 4})
