"""Adaptive sampling (``perfsuite run --precision``): the stopping rule, pairing, budget, bad input, one real run."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from perfsuite.analysis import stats
from perfsuite.analysis.precision import interval_widths, job_walls
from perfsuite.cli.main import main
from perfsuite.core.clock import FakeClock
from perfsuite.core.sampling import SamplingTarget, parse_budget, parse_precision
from perfsuite.core.workload import Workload
from perfsuite.measure.handle import WorkerHandle
from perfsuite.measure.runner import Runner
from perfsuite.measure.sampling import AdaptivePlan, FixedPlan
from perfsuite.results.record import EpochRecord
from tests.test_reliability import one_line_error
from tests.test_run import data_args

WARMUP_SECONDS = 50.0
"""What a fake warm-up epoch costs: far beyond any budget below, which it must not count against."""


def wall_of(mean: float, noise: float, seed: int):
    """Seconds of a fake implementation's epoch: ``mean`` times a seeded log-normal factor per (round, epoch)."""

    def wall(round_: int, epoch: int) -> float:
        return mean * math.exp(noise * np.random.default_rng([seed, round_, epoch]).standard_normal())

    return wall


class FakeHandle(WorkerHandle):
    """A worker handle without a process: each epoch advances the fake clock by its wall seconds."""

    def __init__(self, name: str, wall, clock: FakeClock, warmup: int):
        super().__init__(SimpleNamespace(name=name, spec=name, unavailable_reason=None))
        self.wall, self.clock, self.warmup = wall, clock, warmup
        self.asked = None

    def start(self, workload, dataset) -> None:
        self.process = object()

    def send(self, message: tuple) -> None:
        self.asked = message

    def receive(self, expected: str, timeout: float):
        if expected == "ready":
            return {"start_seconds": 0.0}
        if expected == "setup":
            return {"round": self.asked[1], "setup_seconds": 0.0, "metrics": {}, "info": {}}
        _, round_, epoch = self.asked
        warm = epoch < self.warmup
        seconds = WARMUP_SECONDS if warm else self.wall(round_, epoch)
        self.clock.advance(seconds)
        return EpochRecord(round=round_, epoch=epoch, warmup=warm, wall=seconds, phases=(), losses=())

    def stop(self, graceful: bool) -> None:
        pass


def run_fake(walls: dict, target: SamplingTarget | None, epochs=5, warmup=1, repeats=1):
    """Run the real runner over fake handles; returns the plan and the ``(impl, record)`` sequence sunk."""
    workload = Workload(epochs=epochs, warmup=warmup, repeats=repeats, threads=1)
    clock = FakeClock()
    plan = FixedPlan(workload) if target is None else AdaptivePlan(workload, target, clock)
    sunk = []
    runner = Runner(workload, None, [], sink=lambda name, record: sunk.append((name, record)), plan=plan)
    runner.handles = [FakeHandle(name, wall, clock, warmup) for name, wall in walls.items()]
    handles = runner.run()
    assert all(h.status == "ok" for h in handles)
    return plan, sunk


def measured(sunk: list, name: str) -> list:
    return [(r.round, r.epoch) for n, r in sunk if n == name and not r.warmup]


def target(precision=0.03, budget=None, min_epochs=5, max_epochs=40) -> SamplingTarget:
    return SamplingTarget(precision, budget, min_epochs, max_epochs)


STEADY_BASE = wall_of(6.0, 0.002, 1)
STEADY = wall_of(0.4, 0.002, 2)
NOISY = wall_of(0.3, 0.05, 3)


def test_steady_stops_at_the_minimum_noisy_goes_on_and_keeps_its_pairs():
    plan, sunk = run_fake({"idiomatic": STEADY_BASE, "store": STEADY, "noisy": NOISY}, target())
    assert plan.stops == {"store": "precision", "noisy": "precision", "idiomatic": "paired"}
    store, noisy, base = measured(sunk, "store"), measured(sunk, "noisy"), measured(sunk, "idiomatic")
    assert len(store) == 5 < len(noisy) <= 40
    assert base == noisy, "the baseline is measured exactly as long as anything else is"
    assert set(store) <= set(base) and set(noisy) <= set(base), "every epoch has its baseline pair"
    assert plan.widths["noisy"] <= 0.03 and plan.widths["store"] <= 0.03
    record = plan.to_dict({"idiomatic": "ok", "store": "ok", "noisy": "ok"})
    assert record["stop"] == "precision" and record["baseline"] == "idiomatic"
    assert record["implementations"]["store"] == {
        "stop": "precision",
        "epochs": 5,
        "half_width": plan.widths["store"],
        "interval": "speedup",
        "within_target": True,
    }
    assert record["implementations"]["idiomatic"]["interval"] == "epoch"
    assert record["implementations"]["idiomatic"]["within_target"] is None, "the baseline's epoch is not a target"


def test_passes_stay_interleaved_after_an_implementation_stops():
    plan, sunk = run_fake({"idiomatic": STEADY_BASE, "store": STEADY, "noisy": NOISY}, target())
    order = [n for n, r in sunk if r.epoch >= 6]
    assert order and order == ["idiomatic", "noisy"] * (len(order) // 2)
    assert [r.epoch for n, r in sunk if n == "noisy"] == list(range(len(measured(sunk, "noisy")) + 1))


def test_a_precise_baseline_keeps_running_while_others_need_pairs():
    plan, sunk = run_fake({"idiomatic": STEADY_BASE, "noisy": NOISY}, target())
    assert len(measured(sunk, "idiomatic")) == len(measured(sunk, "noisy")) > 5
    widths = interval_widths({"idiomatic": [r for n, r in sunk if n == "idiomatic"]}, "idiomatic")
    assert widths["idiomatic"] <= 0.03, "it was precise long before it stopped"


def test_a_drifting_baseline_stops_with_the_others():
    """Pairs cancel the drift: store's speedup is precise at the minimum, and the baseline alone would pair nothing."""
    drift = wall_of(1.0, 0.05, 4)
    steady = wall_of(0.4, 0.002, 5)
    walls = {"idiomatic": lambda r, e: 6.0 * drift(r, e), "store": lambda r, e: drift(r, e) * steady(r, e)}
    plan, sunk = run_fake(walls, target())
    assert len(measured(sunk, "store")) == len(measured(sunk, "idiomatic")) == 5
    assert plan.widths["idiomatic"] > 0.03, "its own median epoch is wider than the target"
    assert plan.stops == {"store": "precision", "idiomatic": "paired"}
    assert plan.to_dict({"idiomatic": "ok", "store": "ok"})["stop"] == "precision"


def test_a_lone_implementation_watches_its_own_median_epoch():
    plan, sunk = run_fake({"idiomatic": lambda r, e: 6.0 * wall_of(1.0, 0.05, 4)(r, e)}, target())
    assert len(measured(sunk, "idiomatic")) > 5 and plan.stops["idiomatic"] in ("precision", "max_epochs")
    assert plan.to_dict({"idiomatic": "ok"})["implementations"]["idiomatic"]["within_target"] is not None


def test_max_epochs_ends_a_run_that_never_gets_precise():
    plan, sunk = run_fake({"a": wall_of(1.0, 0.5, 6), "b": wall_of(1.0, 0.5, 7)}, target(0.001, max_epochs=8))
    assert plan.stops[plan.baseline] == "paired" and sorted(plan.stops.values()) == ["max_epochs", "paired"]
    assert len(measured(sunk, "a")) == len(measured(sunk, "b")) == 8
    assert plan.to_dict({"a": "ok", "b": "ok"})["stop"] == "max_epochs"


def test_nothing_stops_before_the_minimum_of_every_round():
    plan, sunk = run_fake({"idiomatic": STEADY_BASE, "store": STEADY}, target(0.5, min_epochs=6), epochs=3, repeats=2)
    assert measured(sunk, "store") == [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3)]
    assert plan.stops == {"store": "precision", "idiomatic": "paired"}


def test_budget_stops_before_a_pass_that_would_not_fit_and_ignores_the_warmup():
    walls = {name: wall_of(1.0, 0.3, seed) for seed, name in enumerate(("idiomatic", "b", "c"))}
    plan, sunk = run_fake(walls, target(0.001, budget=10.0))
    counts = {name: len(measured(sunk, name)) for name in walls}
    pass_seconds = [sum(walls[n](0, e) for n in walls) for e in range(1, 6)]
    fits = max(k for k in range(1, 6) if sum(pass_seconds[:k]) <= 10.0)
    assert set(counts.values()) == {fits} and fits < 5
    assert plan.stops == dict.fromkeys(walls, "budget")
    assert plan.elapsed == pytest.approx(sum(pass_seconds[:fits])) and plan.elapsed <= 10.0
    assert plan.to_dict(dict.fromkeys(walls, "ok"))["stop"] == "budget"


def test_a_budget_that_cannot_hold_one_pass_is_refused():
    walls = {"idiomatic": wall_of(6.0, 0.01, 1), "store": wall_of(0.4, 0.01, 2)}
    plan, sunk = run_fake(walls, target(budget=5.0))
    assert len(measured(sunk, "idiomatic")) == 1
    assert plan.refusal.startswith("--budget 5s: one measured epoch of each implementation took 6.")
    assert plan.to_dict({"idiomatic": "ok", "store": "ok"})["stop"] == "budget_too_small"


def test_fixed_plan_measures_exactly_the_epochs_asked():
    _, sunk = run_fake({"a": STEADY, "b": NOISY}, None, epochs=3, warmup=1, repeats=2)
    assert [(n, r.round, r.epoch) for n, r in sunk] == [
        (n, round_, epoch) for round_ in range(2) for epoch in range(4) for n in ("a", "b")
    ]


def test_failed_and_interrupted_implementations_are_recorded():
    plan = AdaptivePlan(Workload(threads=1), target(), FakeClock())
    record = plan.to_dict({"a": "failed", "b": "interrupted", "c": "unavailable"})
    assert record["implementations"]["a"]["stop"] == "failed"
    assert record["implementations"]["b"]["stop"] == "interrupted" and "c" not in record["implementations"]
    assert record["stop"] == "interrupted"


def rec(round_, epoch, wall, warmup=False, rank=0):
    return EpochRecord(round=round_, epoch=epoch, warmup=warmup, wall=wall, phases=(), losses=(), rank=rank)


def test_widths_pair_a_short_implementation_with_the_baselines_first_epochs():
    base_walls = [6.0 + 0.1 * e for e in range(1, 11)]
    short_walls = [0.4 + 0.01 * (e % 3) for e in range(1, 6)]
    base = [rec(0, 0, 9.0, warmup=True)] + [rec(0, e, w) for e, w in enumerate(base_walls, start=1)]
    short = [rec(0, e, w) for e, w in enumerate(short_walls, start=1)]
    widths = interval_widths({"idiomatic": base, "store": short}, "idiomatic")
    pairs = stats.speedup(base_walls[:5], short_walls, n_resamples=999)
    assert widths["store"] == pytest.approx((pairs.ci_high - pairs.ci_low) / 2 / pairs.median)
    own = stats.describe(base_walls, n_resamples=999)
    assert widths["idiomatic"] == pytest.approx((own.ci_high - own.ci_low) / 2 / own.median)
    assert math.isnan(interval_widths({"idiomatic": base[:2], "store": short[:1]}, "idiomatic")["store"])


def test_a_multi_rank_epoch_lasts_as_long_as_its_slowest_rank():
    assert job_walls([rec(0, 1, 2.0), rec(0, 1, 2.5, rank=1), rec(0, 0, 9.0, warmup=True)]) == {(0, 1): 2.5}


@pytest.mark.parametrize(
    "text,seconds", [("120", 120.0), ("120s", 120.0), ("2m", 120.0), ("1.5 min", 90.0), ("1h", 3600.0)]
)
def test_budget_durations(text, seconds):
    assert parse_budget(text) == seconds


def test_precision_as_fraction_or_percentage():
    assert parse_precision("0.03") == parse_precision("3%") == pytest.approx(0.03)


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--precision", "0"], "--precision 0: must be a fraction in (0, 1)"),
        (["--precision", "1"], "--precision 1: must be a fraction in (0, 1)"),
        (["--precision", "abc"], "--precision abc: must be a fraction in (0, 1)"),
        (["--precision", "nan"], "--precision nan: must be a fraction in (0, 1)"),
        (["--precision", "0.03", "--budget", "0"], "--budget 0: must be a positive duration"),
        (["--precision", "0.03", "--budget", "0s"], "--budget 0s: must be a positive duration"),
        (["--precision", "0.03", "--budget", "2x"], "--budget 2x: not a duration"),
        (["--precision", "0.03", "--budget", "-5"], "--budget -5: not a duration"),
        (["--precision", "0.03", "--budget", ""], "--budget : not a duration"),
        (["--budget", "120s"], "--budget 120s: only applies with --precision"),
        (["--max-epochs", "10"], "--max-epochs 10: only applies with --precision"),
        (["--precision", "0.03", "--epochs", "5", "--max-epochs", "3"], "--max-epochs 3: must be at least the minimum"),
    ],
)
def test_bad_sampling_options(args, fragment, capsys, tmp_path):
    out = tmp_path / "r"
    assert main(["run", "--impls", "store", "--quiet", "--out", str(out), *data_args(), *args]) == 2
    one_line_error(capsys, fragment)
    assert not out.exists()


def test_a_budget_too_small_for_one_epoch_is_refused_after_the_first_pass(capsys, tmp_path):
    out = tmp_path / "r"
    args = ["--impls", "store", "--subset", "0.01", "--epochs", "1", "--warmup", "0", "--threads", "1"]
    args += ["--precision", "0.1", "--budget", "0.001s", "--no-roofline", "--quiet", "--out", str(out)]
    assert main(["run", *args, *data_args()]) == 2
    one_line_error(capsys, "--budget 0.001s: one measured epoch of each implementation took")
    meta = json.loads((out / "meta.json").read_text())
    assert meta["status"] == "failed" and meta["sampling"]["stop"] == "budget_too_small"


def test_adaptive_run_end_to_end(capsys, tmp_path):
    out = tmp_path / "r"
    args = ["--impls", "store,tuned", "--subset", "0.05", "--precision", "0.2", "--budget", "60s", "--threads", "1"]
    assert main(["run", *args, "--no-roofline", "--quiet", "--out", str(out), *data_args()]) == 0
    assert "sampling stopped after " in capsys.readouterr().out
    sampling = json.loads((out / "meta.json").read_text())["sampling"]
    assert sampling["mode"] == "adaptive" and sampling["precision"] == 0.2 and sampling["budget"] == 60.0
    assert (sampling["min_epochs"], sampling["max_epochs"], sampling["baseline"]) == (5, 40, "store")
    assert sampling["stop"] in ("precision", "max_epochs", "budget") and 0 < sampling["elapsed_seconds"] <= 60
    epochs = pd.read_csv(out / "epochs.csv")
    rows = epochs[epochs["warmup"] == 0]
    keys = {n: set(zip(r["round"], r["epoch"], strict=True)) for n, r in rows.groupby("impl")}
    for name in ("store", "tuned"):
        entry = sampling["implementations"][name]
        assert entry["stop"] in ("precision", "max_epochs", "budget") + (("paired",) if name == "store" else ())
        assert entry["epochs"] == len(keys[name]) >= 5
    assert keys["tuned"] <= keys["store"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["statistics"]["implementations"]["tuned"]["gap"]["pairs"] == len(keys["tuned"])


def test_the_stop_line_names_who_missed_the_target():
    from perfsuite.render.terminal import sampling_line

    entry = {"epochs": 10, "interval": "speedup", "stop": "budget"}
    sampling = {
        "stop": "budget",
        "budget": 120.0,
        "precision": 0.03,
        "min_epochs": 5,
        "max_epochs": 40,
        "elapsed_seconds": 118.2,
        "implementations": {
            "store": {**entry, "half_width": 0.012, "within_target": True, "stop": "precision"},
            "tuned": {**entry, "half_width": 0.057, "within_target": False},
            "compiled": {**entry, "half_width": None, "within_target": False},
            "ddp": {**entry, "half_width": None, "within_target": False, "stop": "failed"},
        },
    }
    line = sampling_line(sampling)
    assert line.startswith("sampling stopped after 118.2 s of measuring: the budget would not hold another pass")
    assert line.endswith("; missed the target: tuned ±5.7%, compiled (no interval yet)")
    for entry in sampling["implementations"].values():
        entry["within_target"] = entry.get("stop") != "failed"
    assert "missed" not in sampling_line(sampling)
