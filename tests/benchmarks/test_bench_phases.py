"""Micro-benchmarks of each phase of every staged implementation on a fixed batch and fixed parameters.

What each case times, and what its setup does outside the timed region, is
described in :mod:`tests.benchmarks.support`. Fused implementations (a whole
epoch in ``train_epoch``) have no stages to time and skip with that reason.
"""

import pytest

from tests.benchmarks.support import HARNESS_PHASE, STATEFUL_PHASES, common_info, workload_key


def test_phase(benchmark, phase_cases, impl, phase, bench_settings, dataset):
    """pytest-benchmark statistics of one call of one phase."""
    state = phase_cases.state
    if phase in STATEFUL_PHASES and not phase_cases.snapshot.pairs:
        pytest.skip(
            f"{impl.name}: no tensor a training step changes is reachable from the implementation, "
            f"so {phase} cannot run on fixed parameters"
        )
    case = phase_cases.case(
        phase, bench_settings.micro_rounds, bench_settings.first_batch_rounds, bench_settings.micro_warmup
    )
    benchmark.group = f"{workload_key(state.workload, dataset, state.n_train)} · {phase}"
    benchmark.extra_info.update(common_info(state, impl.name, "phase"))
    benchmark.extra_info.update(
        {
            "phase": phase,
            "harness_phase": HARNESS_PHASE.get(phase, phase),
            "measures": case.what,
            "batch_size": phase_cases.batch_size,
            "state_tensors": phase_cases.snapshot.shapes,
        }
    )

    benchmark.pedantic(
        case.target, setup=case.setup, rounds=case.rounds, warmup_rounds=case.warmup_rounds, iterations=1
    )
