"""The benchmark suite's machinery: settings, state snapshots, steady-state batching, fixed parameters."""

import subprocess
import sys

import pytest
import torch

from perfsuite.core.workload import Workload
from perfsuite.measure.worker import WorkerState
from tests.benchmarks import settings
from tests.benchmarks.support import MICRO_PHASES, EpochRunner, PhaseCases, StateSnapshot, _LiveIterator
from tests.conftest import REPO


class FakeConfig:
    """Just enough of ``pytest.Config`` for :func:`settings.from_config`."""

    def __init__(self, **options):
        self.options = {"benchmark_disable": False, "benchmark_enable": False, **options}

    def getoption(self, name, default=None):
        return self.options.get(name, default)


@pytest.mark.parametrize(
    "options, subset",
    [
        ({"benchmark_disable": True}, settings.DISABLED_SUBSET),
        ({}, settings.ENABLED_SUBSET),
        ({"benchmark_disable": True, "benchmark_enable": True}, settings.ENABLED_SUBSET),
        ({"benchmark_disable": True, "bench_subset": 0.5}, 0.5),
    ],
)
def test_subset_follows_whether_benchmarks_are_disabled(options, subset):
    resolved = settings.from_config(FakeConfig(**options))
    assert resolved.subset == subset
    assert resolved.workload().subset == subset


def test_settings_defaults_and_registry():
    resolved = settings.from_config(FakeConfig(benchmark_disable=True))
    assert resolved.epoch_warmup == 0 and resolved.rounds == 5 and resolved.micro_rounds == 200
    assert {"idiomatic", "store"} <= set(resolved.impls)
    assert settings.from_config(FakeConfig(bench_impls="store, idiomatic")).impls == ("store", "idiomatic")
    assert settings.from_config(FakeConfig(bench_micro_rounds=50)).first_batch_rounds == 5


def test_bad_bench_option_is_a_usage_error():
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--bench-subset", "1.5", "--collect-only", "-q", "tests/benchmarks"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 4
    assert "--bench-subset: 1.5: must be a fraction in (0, 1]" in done.stderr


class Toy:
    """A tiny staged loop with an optimizer, a data tensor and a plain attribute chain."""

    def __init__(self):
        self.data = torch.randn(8, 3)
        self.layer = torch.nn.Linear(3, 2)
        self.optimizer = torch.optim.SGD(self.layer.parameters(), lr=0.1, momentum=0.9)
        self.extra = {"nested": [self.data]}

    def train_step(self):
        self.layer(self.data).square().mean().backward()
        self.optimizer.step()
        self.optimizer.zero_grad()


def _weights_after_a_step(toy, snapshot):
    snapshot.restore()
    toy.train_step()
    return [p.detach().clone() for p in toy.layer.parameters()]


def test_snapshot_finds_what_a_step_changes_and_restores_it():
    toy = Toy()
    data = toy.data.clone()
    snapshot = StateSnapshot.capture(toy, toy.train_step)
    assert len(snapshot.pairs) == 4, "two parameters and the two momentum buffers SGD creates at its first step"
    assert all(t is not toy.data for t, _ in snapshot.pairs)
    first = _weights_after_a_step(toy, snapshot)
    for _ in range(3):
        toy.train_step()
    assert all(torch.equal(a, b) for a, b in zip(first, _weights_after_a_step(toy, snapshot), strict=True))
    snapshot.restore()
    assert all(torch.equal(t, value) for t, value in snapshot.pairs)
    assert torch.equal(data, toy.data)


class Counting:
    """Batches that say which position of the epoch they come from."""

    def __init__(self, steps):
        self.steps = steps

    def batches(self, epoch):
        return ((torch.tensor([i]), torch.tensor([i])) for i in range(self.steps))


@pytest.mark.parametrize("steps, allowed", [(6, {1, 2, 3, 4}), (3, {1}), (2, {1})])
def test_batching_times_neither_the_first_nor_the_last_batch(steps, allowed):
    live = _LiveIterator(Counting(steps), steps)
    seen = []
    for _ in range(12):
        live.ready()
        seen.append(int(live.next_batch()[0]))
    assert set(seen) == allowed


@pytest.fixture(scope="module")
def store_cases(dataset):
    threads = torch.get_num_threads()
    state = WorkerState("store", Workload(subset=0.01, threads=1), dataset)
    state.setup(0)
    yield PhaseCases(state)
    torch.set_num_threads(threads)


def _store_params(cases):
    return [t.detach().clone() for t in cases.impl.mem.values]


def test_phase_cases_keep_parameters_fixed(store_cases):
    initial = _store_params(store_cases)
    for phase in MICRO_PHASES:
        case = store_cases.case(phase, rounds=3, first_batch_rounds=3, warmup=1)
        for _ in range(3):
            made = case.setup() if case.setup else None
            args, kwargs = made if made else ((), {})
            case.target(*args, **kwargs)
        store_cases.snapshot.restore()
        assert all(torch.equal(a, b) for a, b in zip(initial, _store_params(store_cases), strict=True)), phase


def test_step_case_starts_every_round_from_the_same_parameters(store_cases):
    case = store_cases.case("step", rounds=3, first_batch_rounds=3, warmup=1)
    after = []
    for _ in range(3):
        case.setup()
        case.target()
        after.append(_store_params(store_cases))
    assert all(torch.equal(a, b) for a, b in zip(after[0], after[2], strict=True))


def test_epoch_runner_breakdown_leaves_out_warmup(dataset):
    threads = torch.get_num_threads()
    try:
        state = WorkerState("store", Workload(subset=0.01, threads=1), dataset)
        state.setup(0)
        runner = EpochRunner(state)
        for _ in range(3):
            runner.run_epoch()
    finally:
        torch.set_num_threads(threads)
    breakdown = runner.breakdown(warmup=1)
    assert breakdown["epochs"] == 2 and breakdown["warmup_epochs"] == 1
    assert breakdown["walls"] == [m.wall for m in runner.measurements[1:]]
    assert set(breakdown["phase_medians"]) == {"batching", "forward", "loss", "backward", "step", "other"}
