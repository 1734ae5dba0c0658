"""``rust``: the article's loop in std-only Rust over a C ABI shim of LibTorch.

The library is built once per session (and reused across sessions through the
test build cache, keyed by the sources' hash); one epoch of a small subset must
match ``store`` within ``perfsuite check``'s tolerances. Cache reuse, a corrupt
cached build, a compile error and a missing toolchain each get a test; the
end-to-end run of store, native and rust checks the host-language section.
"""

import json
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pytest
import torch

from perfsuite.analysis.check import compare
from perfsuite.cli.main import main
from perfsuite.core.workload import Workload
from perfsuite.impls import rust
from perfsuite.measure.worker import WorkerState
from tests.conftest import REPO
from tests.test_impls_compiled import assert_fused_epoch, data_args

REASON = rust.Rust.unavailable_reason()
needs_rust = pytest.mark.skipif(REASON is not None, reason=str(REASON))


@pytest.fixture(scope="module")
def workload():
    """One epoch of 5% of the training split: 24 steps, the last one partial."""
    return Workload(epochs=1, warmup=0, repeats=1, subset=0.05, threads=1)


@pytest.fixture(scope="session")
def rust_build():
    """The Rust library, built (or found in the build cache) once per session."""
    if REASON:
        pytest.skip(REASON)
    return rust.load_library()


def trained(spec, workload, dataset):
    state = WorkerState(spec, workload, dataset)
    state.setup(0)
    return state, state.epoch(0, 0)


@needs_rust
def test_rust_matches_store_and_predicts_the_same(rust_build, workload, dataset):
    store_state, store_record = trained("store", workload, dataset)
    state, record = trained("rust", workload, dataset)
    verdict = compare("rust", record, store_record)
    assert verdict.ok, verdict.problem
    x = store_state.eval_test
    logits = state.impl.predict(x)
    assert logits.shape == (len(x), 10) and logits.dtype == torch.float32
    torch.testing.assert_close(logits, store_state.impl.predict(x), rtol=1e-5, atol=1e-5)
    info = state.impl.info()
    assert info["rustc"].startswith("rustc ") and "build_seconds" in info


@needs_rust
def test_rust_epoch_is_timed_in_rust(rust_build, workload, dataset):
    assert_fused_epoch("rust", workload, dataset)


@needs_rust
def test_the_epoch_runs_without_the_gil(rust_build, workload, dataset):
    """A Python thread counts while the library's epoch call runs: ctypes released the GIL for it.

    The switch interval is raised to a second, so a call holding the GIL would
    keep the counting thread still for the whole call (no torch op, which would
    release the GIL itself, runs between the two readings).
    """
    state = WorkerState("rust", workload, dataset)
    state.setup(0)
    impl = state.impl
    order = torch.arange(impl.rows, dtype=torch.int64)
    phases, losses = np.zeros((impl.steps, 5)), np.zeros(impl.steps)
    counted, done = [0], threading.Event()

    def count():
        while not done.is_set():
            counted[0] += 1

    interval = sys.getswitchinterval()
    thread = threading.Thread(target=count)
    try:
        sys.setswitchinterval(1.0)
        thread.start()
        before = counted[0]
        steps = impl.lib.psr_train_epoch(
            impl.trainer, order.data_ptr(), impl.rows, phases.ctypes.data, losses.ctypes.data, impl.steps
        )
        during = counted[0] - before
    finally:
        done.set()
        thread.join()
        sys.setswitchinterval(interval)
    assert steps == impl.steps and during > 100, f"the counting thread ran {during} times during the epoch"


@needs_rust
def test_rust_build_is_cached_across_processes(rust_build):
    library = rust.library_path(rust.build_dir())
    stamp = library.stat().st_mtime_ns
    code = "import json; from perfsuite.impls import rust; b = rust.load_library(); "
    code += "print(json.dumps([b.rebuilt, b.note]))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=dict(os.environ), timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [False, None]
    assert library.stat().st_mtime_ns == stamp


@needs_rust
def test_a_corrupt_cached_build_is_rebuilt_with_a_note(rust_build, tmp_path, monkeypatch):
    good = rust.build_dir()
    monkeypatch.setenv("PERFSUITE_BUILD_CACHE", str(tmp_path))
    folder = rust.build_dir()
    shutil.copytree(good, folder, ignore=shutil.ignore_patterns("*.lock"))
    rust.library_path(folder).write_bytes(b"not an ELF file")

    def rebuild_from_the_good_copy(where, shim):
        assert not rust.library_path(where).exists(), "the corrupt build was not removed first"
        shutil.copytree(good / "target", where / "target", dirs_exist_ok=True)

    monkeypatch.setattr(rust, "_build_shim", lambda where: where / "shim")
    monkeypatch.setattr(rust, "_build_crate", rebuild_from_the_good_copy)
    build = rust.load_library()
    note = build.note
    assert build.rebuilt is True and build.lib.psr_last_error() is None and build.facts()["build_note"] == note
    assert note.startswith(f"the cached build in {folder} did not load (") and note.endswith("; rebuilt"), note
    assert "\n" not in note


@needs_rust
def test_a_compile_error_is_its_first_line(rust_build, tmp_path, monkeypatch):
    crate = tmp_path / "crate-source"
    shutil.copytree(rust.CRATE_DIR, crate)
    trainer = crate / "src" / "trainer.rs"
    trainer.write_text(trainer.read_text().replace("pub const PHASES: usize = 5;", "pub const PHASES: usize = ;"))
    monkeypatch.setattr(rust, "CRATE_DIR", crate)
    with pytest.raises(rust.BuildError) as caught:
        rust._build_crate(tmp_path / "build", rust.build_dir() / "shim")
    message = str(caught.value)
    assert message.startswith("cargo build failed: error") and "\n" not in message, message


def test_first_error_line():
    output = "warning: unused\n  --> src/x.rs:1\nerror[E0425]: cannot find value `y`\nerror: aborting\n"
    assert rust.first_error(output) == "error[E0425]: cannot find value `y`"
    assert rust.first_error("ld: something odd\n\n") == "ld: something odd"
    assert rust.first_error("") == "no output"


def test_a_missing_toolchain_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    reason = rust.Rust.unavailable_reason()
    assert reason.startswith("cannot build the Rust loop: cargo not found (apt-get install rustc cargo)"), reason


def test_the_build_folder_follows_the_sources_and_the_compiler(tmp_path):
    copy = tmp_path / "rust"
    shutil.copytree(rust.CRATE_DIR, copy)
    assert rust.source_digest(copy, "rustc 1") == rust.source_digest(rust.CRATE_DIR, "rustc 1")
    assert rust.source_digest(copy, "rustc 2") != rust.source_digest(copy, "rustc 1")
    lib = copy / "src" / "lib.rs"
    lib.write_text(lib.read_text() + "\n")
    assert rust.source_digest(copy, "rustc 1") != rust.source_digest(rust.CRATE_DIR, "rustc 1")


@needs_rust
@pytest.mark.slow
def test_run_store_native_rust_reports_the_host_language(rust_build, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["run", "--impls", "store,native,rust", "--subset", "0.02", "--epochs", "3", "--warmup", "1"]
    status = main([*args, "--threads", "1", "--no-roofline", "--quiet", "--out", str(out), *data_args()])
    assert status == 0, capsys.readouterr().err
    assert set(pd.read_csv(out / "epochs.csv")["impl"]) == {"store", "native", "rust"}
    host = json.loads((out / "summary.json").read_text())["host_language"]
    quantities = {(r["impl"], r["quantity"]) for r in host["rows"] if r["pairs"] == 3}
    assert {("rust", "epoch"), ("rust", "forward"), ("native", "step")} <= quantities
    assert host["sentence"].startswith("At equal design the epoch takes ")
    assert "with a Rust host loop" in host["sentence"] and "with a C++ host loop" in host["sentence"]
    page = (out / "index.html").read_text()
    assert "The host language at equal design" in page and "Rust (rust) ÷ Python" in page
    assert "perfsuite: host language: At equal design" in capsys.readouterr().err
