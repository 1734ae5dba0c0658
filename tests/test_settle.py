"""What would settle an inconclusive comparison: the variance split, the design rule, and compare's note."""

import math
import re

import numpy as np
import pytest
from scipy import stats

from perfsuite import cli
from perfsuite.analysis import compare, settle
from perfsuite.analysis.ab import Pair, ab_rows
from perfsuite.results.reader import load_run
from tests.fakerun import FAST, SLOW, make_run, scale_phase, set_meta

IMPLS = {"idiomatic": SLOW, "store": FAST}


def _per_run(n, r, round_var, within):
    return (round_var + within / np.asarray(r)) / n


def test_split_recovers_the_components_it_was_built_from():
    rng = np.random.default_rng(0)
    rounds = np.repeat(np.arange(40), 30)
    logs = rng.normal(0, 0.05, 40)[rounds] + rng.normal(0, 0.2, len(rounds))
    s = settle.split(rounds, np.exp(logs))
    assert s.within == pytest.approx(0.04, rel=0.1)
    assert s.round_var == pytest.approx(0.0025, abs=0.0012)
    assert (s.rounds, s.epochs_per_round) == (40, 30)
    assert math.isnan(settle.split(np.zeros(20), np.exp(logs[:20])).round_var)
    assert settle.split([0], [1.0]) is None


def test_the_goal_is_the_distance_to_the_nearest_edge_with_room_for_power():
    share = stats.norm.ppf(0.975) / (stats.norm.ppf(0.975) + stats.norm.ppf(0.9))
    beyond = math.log(1.12) - math.log(1.05)
    assert settle.goal(1.12, 0.05) == pytest.approx(beyond * share)
    assert settle.goal(1 / 1.12, 0.05) == pytest.approx(beyond * share)
    assert settle.goal(1.01, 0.05) == pytest.approx((math.log(1.05) - math.log(1.01)) * share)
    assert math.isnan(settle.goal(0.0, 0.05)) and math.isnan(settle.goal(math.nan, 0.05))
    assert settle.log_half_width(1.0, 1.21) == pytest.approx(math.log(1.1))
    assert math.isnan(settle.log_half_width(math.nan, 1.1))


@pytest.mark.parametrize("round_var", [0.0, 0.0004, 0.003])
def test_the_design_narrows_the_interval_enough_at_the_least_cost(round_var):
    """V(n, r) ≤ V(14, 10) · (aim / now)², at least the rounds measured, and nothing cheaper qualifies."""
    within, now, aim, c_round, c_epoch = 0.04, 0.06, 0.02, 5.0, 0.3
    s = settle.Split(within, round_var, 14, 10)
    design = settle.by_rounds(s, s, now, aim, 14, c_round, c_epoch)
    allowed = _per_run(14, 10, round_var, within) * (aim / now) ** 2
    assert design.rounds >= 14 and _per_run(design.rounds, design.epochs, round_var, within) <= allowed
    assert design.seconds == pytest.approx(design.rounds * (c_round + design.epochs * c_epoch))
    r = np.arange(1, 2000)
    cheapest = min(
        float(np.min(n * (c_round + r[ok] * c_epoch), initial=np.inf))
        for n in range(14, 400)
        for ok in [_per_run(n, r, round_var, within) <= allowed]
    )
    assert design.seconds == pytest.approx(cheapest)


def test_variance_between_rounds_asks_for_rounds_not_epochs():
    calm = settle.Split(0.04, 0.0, 14, 10)
    split_ = settle.Split(0.04, 0.002, 14, 10)
    a, b = (settle.by_rounds(s, s, 0.06, 0.02, 14, 5.0, 0.3) for s in (calm, split_))
    assert b.rounds > a.rounds and b.epochs < a.epochs
    assert a.within_share == 1.0 and 0 < b.within_share < 1


def test_a_ratio_on_the_margins_edge_cannot_be_settled():
    s = settle.Split(0.04, 0.001, 14, 10)
    assert settle.by_rounds(s, s, 0.06, 1e-4, 14, 5.0, 0.3) is None
    assert settle.by_rounds(s, s, 0.06, 0.0, 14, 5.0, 0.3) is None
    assert settle.by_epochs(0.06, 20, 1e-4, 7, 0.3) is None


def test_epoch_mode_scales_the_epochs_by_the_square_of_the_narrowing():
    design = settle.by_epochs(0.06, 20, 0.02, 5, 0.3)
    assert (design.rounds, design.epochs) == (1, 180) and design.seconds == pytest.approx(54.0)
    assert settle.by_epochs(0.06, 20, 0.05, 40, 0.3).epochs == 40


def _noisy(folder, epochs, seed, rounds=1):
    return make_run(folder, impls=IMPLS, epochs=epochs, rounds=rounds, steps=10, noise=0.5, seed=seed)


def _rows(base, new):
    rows, notes = compare.compare_runs(load_run(base), load_run(new))
    return {(r.impl, r.quantity): r for r in rows}, notes


def _slowed(tmp_path, name, epochs, seed, rounds=1):
    run = _noisy(tmp_path / f"{name}-run", epochs, seed, rounds)
    return scale_phase(run, tmp_path / name, "idiomatic", "step", 1.2)


def test_the_epochs_a_design_asks_for_settle_the_row(tmp_path):
    """8 noisy epochs leave a 20% slower step inconclusive; the epochs its design asks for make it ``slower``.

    The note names the most demanding inconclusive row beyond the margin. Half the step's epochs leave it
    inconclusive in one of these three pairs (a design aims at 90%, so which pairs settle depends on their seeds).
    """
    rows, notes = _rows(_noisy(tmp_path / "few", 8, 0), _slowed(tmp_path, "few-new", 8, 1))
    step = rows[("idiomatic", "step")]
    assert step.verdict == "inconclusive"
    now, aim = settle.log_half_width(step.low, step.high), settle.goal(step.ratio, 0.05)
    epochs = settle.by_epochs(now, 8, aim, 5, 0.01).epochs
    named = re.match(r"to settle (\w+) (\w+) \(×[\d.]+ ±[\d.]+%, needs ±[\d.]+%\)", notes[-1]).groups()
    assert abs(math.log(rows[named].ratio)) > math.log(1.05), "rows beyond the margin come first"
    assert int(re.search(r"measure about (\d+) epochs in each run", notes[-1]).group(1)) >= epochs
    assert 8 < epochs < 400
    verdicts = [
        _rows(_noisy(tmp_path / f"b{s}", epochs, 10 + s), _slowed(tmp_path, f"n{s}", epochs, 20 + s))[0]
        for s in range(3)
    ]
    assert all(v[("idiomatic", "step")].verdict == "slower" for v in verdicts)


def test_fresh_worker_runs_get_rounds_and_epochs_on_the_command_line(tmp_path, capsys):
    base = set_meta(_noisy(tmp_path / "base", 4, 0, rounds=4), fresh_workers=True)
    new = set_meta(_slowed(tmp_path, "new", 4, 1, rounds=4), fresh_workers=True)
    rows, _ = _rows(base, new)
    row = rows[("idiomatic", "step")]
    assert row.verdict == "inconclusive" and row.mode.endswith("by round")
    assert cli.main(["compare", str(base), str(new)]) == 0
    err = capsys.readouterr().err
    assert re.search(
        r"perfsuite: warning: to settle \w+ \w+ .* measure about \d+ rounds of \d+ epochs in each run "
        r"\(--fresh-workers --repeats \d+ --epochs \d+, about [\d.]+ (s|min) a run",
        err,
    ), err


def test_no_note_when_every_row_is_settled(tmp_path):
    base = make_run(tmp_path / "calm", impls=IMPLS, epochs=8, steps=40, noise=0.05)
    rows, notes = compare.compare_runs(load_run(base), load_run(base))
    assert all(r.verdict != "inconclusive" for r in rows)
    assert not [n for n in notes if "settle" in n]


def test_ab_says_what_would_settle_its_rows(tmp_path):
    """The same note for ``perfsuite ab``: one interleaved run, the rounds' paired ratios."""
    sides = {"store@base": FAST, "store@new": FAST}
    run = set_meta(make_run(tmp_path / "ab", sides, epochs=3, rounds=3, steps=10, noise=0.8), fresh_workers=True)
    scale_phase(run, tmp_path / "slow", "store@new", "step", 1.15)
    result = ab_rows(load_run(tmp_path / "slow"), [Pair("store", "store@base", "store@new")], 0.05, 0.05)
    step = next(r for r in result.rows if r.quantity == "step")
    assert step.verdict == "inconclusive", step
    assert any(
        re.match(r"to settle store \w+ .* measure about \d+ rounds of \d+ epochs \(--fresh-workers", n)
        for n in result.notes
    ), result.notes


def test_a_round_costs_what_the_run_took_beyond_its_epochs(tmp_path):
    folder = make_run(tmp_path / "r", IMPLS, epochs=4, rounds=3, steps=10)
    run = load_run(folder)
    walls = run.epochs[run.epochs["warmup"] == 0].groupby("impl")["wall_seconds"].median()
    per_round, per_epoch = compare.run_costs(load_run(set_meta(folder, measuring_seconds=30.0)))
    assert per_epoch == pytest.approx(walls.sum())
    assert per_round == pytest.approx(10.0 - 4 * walls.sum())
    warm = run.epochs[run.epochs["warmup"] == 1].groupby("impl")["wall_seconds"].median()
    assert compare.run_costs(run)[0] == pytest.approx(sum(0.4 + 0.1 + warm[n] for n in IMPLS)), "start, set-up, warm-up"
