"""Command-line options of perfsuite's pytest-benchmark suite (``tests/benchmarks``).

They live in the root ``conftest.py`` so that every ``pytest`` invocation
knows them (pytest only reads ``pytest_addoption`` from conftest files it
loads at start-up, which ``tests/benchmarks/conftest.py`` is not when pytest
runs from the repository root). Their meaning and defaults are resolved in
``tests/benchmarks/settings.py``.
"""

import argparse


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text}: must be a fraction in (0, 1]")
    return value


def _count(minimum: int):
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text}: must be a whole number of at least {minimum}")
        return value

    parse.__name__ = f"whole number >= {minimum}"
    return parse


def pytest_addoption(parser):
    """Register the ``--bench-*`` options."""
    group = parser.getgroup("perfsuite benchmarks", "perfsuite pytest-benchmark suite (tests/benchmarks)")
    group.addoption(
        "--bench-subset",
        type=_fraction,
        default=None,
        metavar="FRACTION",
        help="fraction of the MNIST training split the benchmarks train on "
        "(default: 1.0 with benchmarks enabled, 0.02 with --benchmark-disable)",
    )
    group.addoption(
        "--bench-rounds",
        type=_count(1),
        default=5,
        metavar="N",
        help="measured epochs (pytest-benchmark rounds) per implementation (default 5)",
    )
    group.addoption(
        "--bench-warmup",
        type=_count(0),
        default=1,
        metavar="N",
        help="warm-up epochs before the measured ones, not in the statistics (default 1)",
    )
    group.addoption(
        "--bench-micro-rounds",
        type=_count(1),
        default=200,
        metavar="N",
        help="rounds of each phase micro-benchmark (default 200; first_batch uses a tenth, at least 3)",
    )
    group.addoption(
        "--bench-threads",
        type=_count(1),
        default=None,
        metavar="N",
        help="torch threads while benchmarking (default: the usable CPUs)",
    )
    group.addoption(
        "--bench-impls",
        default=None,
        metavar="LIST",
        help="implementations to benchmark: names, package.module:Class or path/to/file.py:Class, "
        "comma-separated (default: every registered one)",
    )
