"""`--fresh-workers`: the runner restarts the workers every round; `ab` and `compare` take rounds as samples."""

import pandas as pd

from perfsuite.analysis.ab import MODE, MODE_BY_ROUND, Pair, ab_rows
from perfsuite.results.reader import load_run
from tests.fakerun import FAST, make_run, scale_phase_in, set_meta

PAIR = Pair("store", "store@base", "store@new")


def _scale(folder, impl: str, factors: dict) -> None:
    """Multiply ``impl``'s seconds in each round ``r`` by ``factors[r]``: what one process got, for all its epochs."""
    for name in ("phases.csv", "epochs.csv"):
        frame = pd.read_csv(folder / name)
        columns = ["seconds"] if name == "phases.csv" else [c for c in frame.columns if c.endswith("_seconds")]
        columns = [c for c in columns if c != "comm_seconds"]
        for round_, factor in factors.items():
            rows = (frame["impl"] == impl) & (frame["round"] == round_)
            frame.loc[rows, columns] = frame.loc[rows, columns] * factor
        frame.to_csv(folder / name, index=False)


def _scale_step(folder, impl: str, factors: dict) -> None:
    """Multiply ``impl``'s ``step`` seconds in round ``r`` by ``factors[r]``, and its epochs' wall by what that adds."""
    for round_, factor in factors.items():
        scale_phase_in(folder, impl, "step", factor, round_=round_)


def _run(tmp_path, factors: dict, fresh: bool, rounds: int = 8, step: dict = None):
    folder = make_run(tmp_path / "r", {"store@base": FAST, "store@new": FAST}, epochs=4, rounds=rounds, noise=0.02)
    set_meta(folder, fresh_workers=fresh)
    _scale(folder, "store@new", factors)
    _scale_step(folder, "store@new", step or {})
    return ab_rows(load_run(folder), [PAIR], threshold=0.05, alpha=0.05)


# identical code whose new-side processes came out unequal: three of eight 12% slower, as two processes can be
PROCESS_LUCK = {0: 1.12, 3: 1.12, 6: 1.12}


def test_fresh_worker_rounds_are_the_samples(tmp_path):
    result = _run(tmp_path, PROCESS_LUCK, fresh=True)
    epoch = next(r for r in result.rows if r.quantity == "epoch")
    assert epoch.mode == MODE_BY_ROUND and epoch.n_base == 8
    assert not result.slower  # three unlucky processes are three samples of eight
    assert "the samples are the rounds, each in fresh worker processes" in result.notes


def test_a_slowdown_in_every_round_is_found_by_round(tmp_path):
    result = _run(tmp_path, dict.fromkeys(range(8), 1.10), fresh=True)
    assert {r.quantity for r in result.slower} >= {"epoch", "backward"}


def test_one_round_the_other_way_does_not_hide_a_slowdown_of_one_phase(tmp_path):
    # step 12% slower in 13 rounds of 14 and 14% faster in one: by its rank alone that round leaves the
    # signed-rank test at p 0.013 (0.034 after the correction), which ten gated rows would not pass
    step = {r: (0.86 if r == 5 else 1.12) for r in range(14)}
    result = _run(tmp_path, {}, fresh=True, rounds=14, step=step)
    assert [r.quantity for r in result.slower] == ["step"]
    row = next(r for r in result.rows if r.quantity == "step")
    assert row.n_base == 14 and row.p_adjusted < 0.01


def test_without_fresh_workers_the_epochs_stay_the_unit(tmp_path):
    result = _run(tmp_path, {}, fresh=False)
    epoch = next(r for r in result.rows if r.quantity == "epoch")
    assert epoch.mode == MODE and epoch.n_base == 32


def test_too_few_paired_epochs_are_warned_first_and_rounds_never(tmp_path):
    few = _run(tmp_path / "epochs", {}, fresh=False, rounds=1)
    assert "a slowdown of one row alone cannot reach adjusted p < 0.05" in few.notes[0]
    assert few.notes[1] == "the samples are the epochs of one process per side"
    by_round = _run(tmp_path / "rounds", {}, fresh=True, rounds=4)
    assert by_round.notes == ["the samples are the rounds, each in fresh worker processes"]


def test_fresh_workers_start_every_round_in_new_processes():
    from perfsuite.core.clock import FakeClock
    from perfsuite.core.workload import Workload
    from perfsuite.measure.runner import Runner
    from tests.test_sampling import FakeHandle

    events = []

    class Counted(FakeHandle):
        def start(self, workload, dataset):
            events.append(("start", self.name))
            super().start(workload, dataset)

        def stop(self, graceful):
            events.append(("stop", self.name))

    workload = Workload(epochs=2, warmup=1, repeats=3, threads=1)
    clock = FakeClock()
    runner = Runner(workload, None, [], sink=lambda name, record: None, fresh_workers=True)
    runner.handles = [Counted(name, lambda r, e: 1.0, clock, 1) for name in ("a", "b")]
    handles = runner.run()
    assert [h.processes for h in handles] == [3, 3] and all(h.status == "ok" for h in handles)
    # each new round: both stopped (together, in either order), then both started: never two processes of one worker
    assert [sorted(events[i : i + 2]) for i in range(0, len(events), 2)] == [
        [("start", "a"), ("start", "b")],
        *[[("stop", "a"), ("stop", "b")], [("start", "a"), ("start", "b")]] * 2,
        [("stop", "a"), ("stop", "b")],
    ]


def test_compare_of_two_fresh_worker_runs_compares_rounds(tmp_path):
    from perfsuite.analysis.compare import compare_runs

    impls = {"store": FAST, "tuned": FAST}
    runs = []
    for name in ("a", "b"):
        folder = make_run(tmp_path / name, impls, epochs=3, rounds=6, noise=0.02, seed=len(runs))
        runs.append(load_run(set_meta(folder, fresh_workers=True)))
    rows, _ = compare_runs(runs[0], runs[1], 0.05, 0.05)
    tuned = next(r for r in rows if r.impl == "tuned" and r.quantity == "epoch")
    assert tuned.mode == "calibrated by round" and (tuned.n_base, tuned.n_new) == (6, 6)
    raw, _ = compare_runs(runs[0], runs[1], 0.05, 0.05, raw=True)
    assert {r.mode for r in raw} == {"raw by round"}
