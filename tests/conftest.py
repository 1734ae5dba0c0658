"""Shared fixtures: real MNIST where it exists, a labelled synthetic set otherwise."""

import os
from pathlib import Path

import pytest

from perfsuite.core import data
from perfsuite.core.workload import Workload

REPO = Path(__file__).resolve().parent.parent


def mnist_root():
    """The MNIST root tests use: $PERFSUITE_DATA, else ../shared/data beside the checkout, else None."""
    for candidate in (os.environ.get("PERFSUITE_DATA"), REPO.parent / "shared" / "data"):
        if candidate and data.has_any_mnist_file(candidate):
            return str(candidate)
    return None


TEST_BUILD_CACHE = REPO / ".cache" / "test-build"
"""Where tests keep compiled builds (the native extension) across sessions; keyed by source hash."""


def _set_env(name: str, value):
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Keep generated data and build caches of the tests out of the user's cache.

    Generated data goes to a fresh folder per session (unless
    ``PERFSUITE_TEST_KEEP_CACHE`` is set). Compiled builds, which take tens of
    seconds and are keyed by the hash of their sources, persist across
    sessions in ``.cache/test-build`` of the checkout unless
    ``PERFSUITE_BUILD_CACHE`` already names a folder.
    """
    previous = {name: os.environ.get(name) for name in ("PERFSUITE_CACHE", "PERFSUITE_BUILD_CACHE")}
    if not os.environ.get("PERFSUITE_TEST_KEEP_CACHE"):
        os.environ["PERFSUITE_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    if not previous["PERFSUITE_BUILD_CACHE"]:
        os.environ["PERFSUITE_BUILD_CACHE"] = str(TEST_BUILD_CACHE)
    yield
    for name, value in previous.items():
        _set_env(name, value)


@pytest.fixture(scope="session")
def dataset():
    """Real MNIST when present (validated), else the synthetic MNIST-shaped set."""
    root = mnist_root()
    return data.resolve("mnist", root) if root else data.synthetic_dataset("tests: no MNIST found")


@pytest.fixture(scope="session")
def splits(dataset):
    return data.load(dataset)


@pytest.fixture
def small_workload():
    """One short epoch on a small subset: what tests train."""
    return Workload(epochs=1, warmup=0, repeats=1, subset=0.05, threads=1)
