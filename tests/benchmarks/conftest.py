"""Fixtures of the pytest-benchmark suite: settings, implementations from the registry, set-up states.

Tests asking for ``impl_spec`` are parametrized with every registered
implementation (entry-point group ``perfsuite.impls``), or the
``--bench-impls`` list, so a new implementation is benchmarked without
editing a test. Tests asking for ``impl_spec`` and ``phase`` get every
(implementation, phase) pair, implementation by implementation, so one
set-up instance serves all phases of an implementation (a compiled build or
a torch.compile happens once per implementation, not once per phase).
"""

import pytest
import torch

from perfsuite.core import registry
from perfsuite.core.interface import is_fused
from perfsuite.measure.worker import WorkerState
from tests.benchmarks import settings as settings_mod
from tests.benchmarks.support import MICRO_PHASES, PhaseCases


def pytest_generate_tests(metafunc):
    """Parametrize ``impl_spec`` (and ``impl_spec`` x ``phase``) from the registry."""
    if "impl_spec" not in metafunc.fixturenames:
        return
    specs = settings_mod.impl_specs(metafunc.config)
    if "phase" in metafunc.fixturenames:
        pairs = [(spec, phase) for spec in specs for phase in MICRO_PHASES]
        metafunc.parametrize(("impl_spec", "phase"), pairs, ids=[f"{s}-{p}" for s, p in pairs])
    else:
        metafunc.parametrize("impl_spec", specs, ids=list(specs))


@pytest.fixture(scope="session")
def bench_settings(request) -> settings_mod.BenchSettings:
    """The session's resolved ``--bench-*`` options."""
    return settings_mod.from_config(request.config)


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Benchmarks run in the pytest process: give the thread count back to the other tests."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def impl(impl_spec) -> registry.ImplSpec:
    """The resolved implementation; skipped, with its reason, when it cannot run on this machine."""
    (resolved,) = registry.resolve([impl_spec])
    reason = resolved.unavailable_reason
    if reason:
        pytest.skip(f"{resolved.name} is unavailable here: {reason}")
    if getattr(resolved.cls, "distributed", False):
        pytest.skip(
            f"{resolved.name} runs on several ranks launched by torchrun; "
            "the in-process benchmarks cannot run it (measure it with perfsuite run)"
        )
    return resolved


def new_state(impl: registry.ImplSpec, bench_settings, dataset) -> tuple:
    """``(state, setup_record)``: a worker state of ``impl`` set up for round 0, as a ``perfsuite run`` worker does."""
    state = WorkerState(impl.spec, bench_settings.workload(), dataset)
    return state, state.setup(0)


class _PreparedCache:
    """Keeps the :class:`PhaseCases` of one implementation at a time (a full-MNIST state is large)."""

    def __init__(self):
        self.key = None
        self.cases = None

    def get(self, impl: registry.ImplSpec, bench_settings, dataset) -> PhaseCases:
        if self.key != impl.spec:
            self.key = self.cases = None
            self.cases = PhaseCases(new_state(impl, bench_settings, dataset)[0])
            self.key = impl.spec
        return self.cases


@pytest.fixture(scope="session")
def _prepared_cache():
    return _PreparedCache()


@pytest.fixture
def phase_cases(impl, bench_settings, dataset, _prepared_cache) -> PhaseCases:
    """The phase micro-benchmarks of a staged implementation (fused ones skip: they have no stages)."""
    if is_fused(impl.cls):
        pytest.skip(f"{impl.name} is fused (train_epoch runs and times the whole epoch itself): no staged phases")
    torch.set_num_threads(bench_settings.threads)
    return _prepared_cache.get(impl, bench_settings, dataset)
