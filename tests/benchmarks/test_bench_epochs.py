"""One epoch per round of every registered, available implementation, through the harness.

Each pytest-benchmark round is one full epoch run by
:func:`perfsuite.core.phases.time_epoch`, the timer ``perfsuite run`` uses, so
``extra_info["harness"]`` carries the harness's own breakdown of the same
epochs (per-phase medians across the measured rounds). The epochs follow one
another as in a round of ``perfsuite run``: warm-up epochs first (excluded
from both statistics), then the measured ones, each with its own permutation.
"""

from perfsuite.measure.worker import accuracy
from tests.benchmarks.conftest import new_state
from tests.benchmarks.support import EpochRunner, common_info, workload_key


def test_epoch(benchmark, impl, bench_settings, dataset):
    """pytest-benchmark statistics of whole epochs, with the harness's phase breakdown beside them."""
    state, setup_record = new_state(impl, bench_settings, dataset)
    runner = EpochRunner(state)
    benchmark.group = f"{workload_key(state.workload, dataset, state.n_train)} · epoch"
    benchmark.extra_info.update(common_info(state, impl.name, "epoch"))
    benchmark.extra_info["setup_seconds"] = setup_record["setup_seconds"]
    benchmark.extra_info["setup_metrics"] = setup_record["metrics"]

    benchmark.pedantic(
        runner.run_epoch, rounds=bench_settings.rounds, warmup_rounds=bench_settings.epoch_warmup, iterations=1
    )

    benchmark.extra_info["harness"] = runner.breakdown(bench_settings.epoch_warmup)
    benchmark.extra_info["test_accuracy"] = accuracy(state.impl, state.eval_test, state.test.labels)
    assert runner.measurements, "no epoch ran"
    assert len(runner.measurements[-1].phases) == state.workload.steps(state.n_train)
