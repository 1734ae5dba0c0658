"""The compiled implementations: ``torchscript``, ``compiled`` (torch.compile) and ``native`` (C++).

Each trains one epoch of a small subset in-process and must match ``store``
within ``perfsuite check``'s tolerances. The native extension is built once
per session (and reused across sessions through the test build cache); the
availability tests point ``CXX`` at a compiler that does not exist.
"""

import json
import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from perfsuite.analysis.check import compare
from perfsuite.cli.main import main
from perfsuite.core.interface import PHASES
from perfsuite.core.phases import time_epoch
from perfsuite.core.workload import Workload
from perfsuite.impls import compiled, native, toolchain
from perfsuite.impls.torchscript import TorchScript
from perfsuite.measure.worker import WorkerState
from tests.conftest import REPO, mnist_root

needs_compiler = pytest.mark.skipif(
    compiled.Compiled.unavailable_reason() is not None, reason=str(compiled.Compiled.unavailable_reason())
)
needs_native_tools = pytest.mark.skipif(
    native.Native.unavailable_reason() is not None, reason=str(native.Native.unavailable_reason())
)


@pytest.fixture(scope="module")
def workload():
    """One epoch of 5% of the training split: 24 steps, the last one partial (56 samples)."""
    return Workload(epochs=1, warmup=0, repeats=1, subset=0.05, threads=1)


def train_one_epoch(spec, workload, dataset):
    """Set up ``spec`` in this process, train epoch 0; returns (state, setup answer, epoch record)."""
    state = WorkerState(spec, workload, dataset)
    answer = state.setup(0)
    return state, answer, state.epoch(0, 0)


@pytest.fixture(scope="module")
def store_trained(workload, dataset):
    """The reference after epoch 0: (worker state, epoch record)."""
    state, _, record = train_one_epoch("store", workload, dataset)
    return state, record


@pytest.fixture(scope="module")
def store_record(store_trained):
    return store_trained[1]


@pytest.fixture(scope="session")
def native_build():
    """The native extension, built (or found in the build cache) once per session."""
    reason = native.Native.unavailable_reason()
    if reason:
        pytest.skip(reason)
    return native.load_extension()


def assert_matches_store(name, record, store_record):
    verdict = compare(name, record, store_record)
    assert verdict.ok, verdict.problem
    return verdict


def test_torchscript_matches_store_without_warning_flood(workload, dataset, store_record):
    filters = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, answer, record = train_one_epoch("torchscript", workload, dataset)
    assert_matches_store("torchscript", record, store_record)
    assert not [w for w in caught if "jit" in str(w.message).lower()], [str(w.message) for w in caught]
    assert warnings.filters == filters
    info = answer["info"]
    assert info["torch_jit_script_deprecated"] == bool(info["deprecation"])
    assert info["deprecation"] in info["scripting_warnings"] or not info["deprecation"]


def test_torchscript_records_the_deprecation_it_sees():
    impl = TorchScript()
    impl.warnings = ["FutureWarning: `torch.jit.script` is deprecated. Please switch to `torch.compile`."]
    assert impl.info()["torch_jit_script_deprecated"] is True
    impl.warnings = ["UserWarning: something else"]
    info = impl.info()
    assert info["torch_jit_script_deprecated"] is False and info["deprecation"] == ""


@needs_compiler
def test_compiled_matches_store_and_compiles_only_in_setup(workload, dataset, store_record):
    from torch._dynamo.utils import counters

    state = WorkerState("compiled", workload, dataset)
    answer = state.setup(0)
    graphs = counters["stats"]["unique_graphs"]
    record = state.epoch(0, 0)
    assert counters["stats"]["unique_graphs"] == graphs, "a graph was compiled during the epoch"
    assert record.facts == {"graphs_compiled": 0}
    assert_matches_store("compiled", record, store_record)
    assert answer["metrics"]["compile_seconds"] > 0
    assert answer["info"]["batch_shapes"] == [128, 3000 % 128]
    assert answer["metrics"]["compile_seconds"] <= answer["setup_seconds"]


def test_batch_sizes_of_an_epoch():
    assert compiled.batch_sizes(60000, 128) == [128, 96]
    assert compiled.batch_sizes(1280, 128) == [128]
    assert compiled.batch_sizes(50, 128) == [50]


@needs_native_tools
def test_native_matches_store(native_build, workload, dataset, store_record):
    _, answer, record = train_one_epoch("native", workload, dataset)
    verdict = assert_matches_store("native", record, store_record)
    assert verdict.max_rel_loss_diff < 1e-6
    assert answer["metrics"]["build_cached"] is True


@needs_native_tools
def test_native_fused_records(native_build, workload, dataset):
    assert_fused_epoch("native", workload, dataset)


def assert_fused_epoch(spec, workload, dataset):
    """One epoch of a fused implementation: a row of five non-negative phases per step, within the wall."""
    state = WorkerState(spec, workload, dataset)
    state.setup(0)
    m = time_epoch(state.impl, 0)
    steps = workload.steps(state.n_train)
    assert m.phases.shape == (steps, len(PHASES))
    assert (m.phases >= 0).all() and np.isfinite(m.phases).all()
    assert m.phases.sum() <= m.wall
    assert (m.phases[:, PHASES.index("forward")] > 0).all()
    assert m.losses.shape == (steps,) and np.isfinite(m.losses).all()
    assert "permutation_seconds" in m.extra


@needs_native_tools
def test_native_build_is_cached_across_processes(native_build):
    library = native._library(native.build_dir())
    stamp = library.stat().st_mtime_ns
    code = "import json; from impls import native; _, s, r = native.load_extension(); print(json.dumps([s, r]))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=dict(os.environ), timeout=300
    )
    assert done.returncode == 0, done.stderr
    seconds, rebuilt = json.loads(done.stdout.strip().splitlines()[-1])
    assert rebuilt is False and seconds < 10
    assert library.stat().st_mtime_ns == stamp


def test_native_build_dir_follows_the_source(tmp_path):
    source = tmp_path / "trainer.cpp"
    shutil.copy(native.source_paths()[0], source)
    assert native.build_dir([source]) == native.build_dir()
    source.write_text(source.read_text() + "\n// changed\n")
    assert native.build_dir([source]) != native.build_dir()
    assert native.build_dir().parent == toolchain.build_cache_dir() / "native"


def test_missing_compiler_is_named(monkeypatch):
    monkeypatch.setenv("CXX", "/nonexistent/g++")
    for cls in (compiled.Compiled, native.Native):
        reason = cls.unavailable_reason()
        assert reason and "CXX=/nonexistent/g++ not found" in reason, (cls, reason)


def test_missing_ninja_and_default_compiler_are_named(monkeypatch, tmp_path):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    reason = native.Native.unavailable_reason()
    assert "ninja not found" in reason and "c++" in reason
    assert "g++" in compiled.Compiled.unavailable_reason()


def data_args():
    root = mnist_root()
    return ["--data-dir", root] if root else ["--dataset", "synthetic"]


def test_list_and_run_skip_what_cannot_build(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("CXX", "/nonexistent")
    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    assert "CXX=/nonexistent" in listed
    out = tmp_path / "run"
    status = main(
        [
            "run",
            "--impls",
            "store,compiled,native",
            "--subset",
            "0.01",
            "--epochs",
            "1",
            "--warmup",
            "0",
            "--threads",
            "1",
            "--quiet",
            "--out",
            str(out),
            *data_args(),
        ]
    )
    assert status == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "skipped" in line]
    assert any(line.startswith("perfsuite: native skipped: ") and "CXX=/nonexistent" in line for line in notes), notes
    assert any(line.startswith("perfsuite: compiled skipped: ") for line in notes), notes
    assert set(pd.read_csv(out / "epochs.csv")["impl"]) == {"store"}
    statuses = {k: v["status"] for k, v in json.loads((out / "meta.json").read_text())["implementations"].items()}
    assert statuses == {"store": "ok", "compiled": "unavailable", "native": "unavailable"}


@needs_native_tools
def test_native_predict_and_accuracy_match_store(native_build, workload, dataset, store_trained):
    store_state, _ = store_trained
    state, _, _ = train_one_epoch("native", workload, dataset)
    x, y = state.eval_test, state.test.labels
    logits = state.impl.predict(x)
    expected = store_state.impl.predict(x)
    assert logits.shape == (len(x), 10) and logits.dtype == torch.float32
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)
    ours = native_build[0].accuracy(y, logits)
    assert ours == pytest.approx((expected.argmax(1) == y).double().mean().item())


def test_compiled_counts_a_graph_compiled_inside_an_epoch(workload, dataset):
    """A new batch shape mid-run compiles a graph: the epoch's facts and the next epoch's say how many."""
    state = WorkerState("compiled", workload, dataset)
    state.setup(0)
    impl = state.impl
    assert impl.epoch_facts() == {"graphs_compiled": 0}
    impl.forward(impl.x[:7])
    assert impl.epoch_facts()["graphs_compiled"] >= 1
    assert impl.epoch_facts() == {"graphs_compiled": 0}
