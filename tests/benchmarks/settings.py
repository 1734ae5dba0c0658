"""What the benchmark suite measures, resolved from the ``--bench-*`` options.

With benchmarks enabled (``--benchmark-enable``, as ``tox -e bench`` passes)
the default is the full MNIST training split, 1 warm-up + 5 measured epochs
(the same protocol as one round of ``perfsuite run``) and 200 rounds per
phase micro-benchmark. With ``--benchmark-disable`` (the default of the
ordinary test run, see ``addopts`` in pyproject.toml) pytest-benchmark calls
every benchmarked function exactly once, and the default subset drops to
:data:`DISABLED_SUBSET` of the training split, so the benchmarks run as fast
smoke tests and cannot rot.
"""

from dataclasses import dataclass

from perfsuite.core import registry
from perfsuite.core.workload import Workload, default_threads

ENABLED_SUBSET = 1.0
DISABLED_SUBSET = 0.02
FIRST_BATCH_SHARE = 10
"""``first_batch`` (iterator creation and a per-epoch shuffle) runs ``micro_rounds // 10`` rounds."""


def benchmarks_disabled(config) -> bool:
    """Whether pytest-benchmark runs each benchmark once, untimed (``--benchmark-disable``)."""
    return bool(config.getoption("benchmark_disable")) and not config.getoption("benchmark_enable")


@dataclass(frozen=True)
class BenchSettings:
    """The resolved options of one pytest session."""

    disabled: bool
    subset: float
    rounds: int
    warmup: int
    micro_rounds: int
    threads: int
    impls: tuple

    @property
    def epoch_warmup(self) -> int:
        """Warm-up rounds pytest-benchmark actually runs (none when disabled: it calls once)."""
        return 0 if self.disabled else self.warmup

    @property
    def micro_warmup(self) -> int:
        """Warm-up rounds of a phase micro-benchmark: a twentieth of its rounds, at least 1."""
        return max(1, self.micro_rounds // 20)

    @property
    def first_batch_rounds(self) -> int:
        """Rounds of the ``first_batch`` micro-benchmark (each may reorder the whole training set)."""
        return max(3, self.micro_rounds // FIRST_BATCH_SHARE)

    def workload(self) -> Workload:
        """The article's workload with this session's subset, threads and epoch counts."""
        return Workload(subset=self.subset, threads=self.threads, epochs=self.rounds, warmup=self.warmup)


def _option(config, name: str, default=None):
    value = config.getoption(name, default=None)
    return default if value is None else value


def impl_specs(config) -> tuple:
    """The implementations to benchmark: ``--bench-impls``, else every registered name (sorted)."""
    text: str | None = _option(config, "bench_impls")
    if text:
        return tuple(registry.parse_list(text))
    return tuple(sorted(registry.builtin()))


def from_config(config) -> BenchSettings:
    """Resolve the ``--bench-*`` options (defined in the root ``conftest.py``) of a session."""
    disabled = benchmarks_disabled(config)
    return BenchSettings(
        disabled=disabled,
        subset=_option(config, "bench_subset", DISABLED_SUBSET if disabled else ENABLED_SUBSET),
        rounds=_option(config, "bench_rounds", 5),
        warmup=_option(config, "bench_warmup", 1),
        micro_rounds=_option(config, "bench_micro_rounds", 200),
        threads=_option(config, "bench_threads", default_threads()),
        impls=impl_specs(config),
    )
