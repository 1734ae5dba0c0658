"""``rust``: the article's loop as a Rust program (std only) over LibTorch, as tch-rs runs it.

tch-rs is two layers: ``torch-sys``, a C ABI of ``extern "C"`` functions over
LibTorch's C++ API, and safe Rust over it. The crates registry is not reachable
on this project's machines, so both layers are here, reduced to what the
article's loop calls: ``impls/rust/shim/tch_shim.cpp`` (the C ABI, built with
:mod:`torch.utils.cpp_extension` against the installed torch) and the crate in
``impls/rust/`` (``sys.rs`` declares the ABI, ``tensor.rs`` wraps it,
``trainer.rs`` is the article's ``Memory``/``Linear``/``get_batches`` loop with
the same store design as ``store`` and ``native``). The crate is a ``cdylib``
whose own C ABI this module calls through :mod:`ctypes`, which releases the GIL
for the whole epoch; the Rust loop times its phases with ``Instant``.

Both are built once into a folder of the build cache named after a hash of the
sources, the flags, the torch version and the Rust compiler's version; a later
setup loads the cached library (build seconds ≈ 0). A cached library that does
not load is removed and rebuilt, with a note in the run's metadata.
"""

import ctypes
import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from perfsuite.core.data import preprocess
from perfsuite.core.interface import EpochTiming, Implementation
from perfsuite.core.workload import CLASSES, INPUTS
from perfsuite.impls import toolchain

CRATE_DIR = Path(__file__).resolve().parent / "rust"
SHIM_SOURCE = CRATE_DIR / "shim" / "tch_shim.cpp"
CRATE_FILES = ("Cargo.toml", "build.rs", "src/lib.rs", "src/sys.rs", "src/tensor.rs", "src/trainer.rs")
SHIM_NAME = "perfsuite_tch"
LIBRARY = "libperfsuite_rust.so"
CFLAGS = ("-O3",)
PHASE_COUNT = 5


class BuildError(RuntimeError):
    """A build step failed; the message is the compiler's first error line."""


def sources(root: Path = CRATE_DIR) -> list:
    """Every file the build reads under ``root``: the shim and the crate."""
    return [root / "shim" / SHIM_SOURCE.name] + [root / name for name in CRATE_FILES]


def rustc_version() -> str:
    """``rustc --version`` (part of the cache key: a new compiler rebuilds)."""
    return subprocess.run(["rustc", "--version"], capture_output=True, text=True, check=True).stdout.strip()


def source_digest(root: Path = CRATE_DIR, compiler: str | None = None) -> str:
    """A short hash of the sources under ``root``, the flags, the torch version and the Rust compiler."""
    digest = hashlib.sha256()
    for path in sources(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(" ".join(CFLAGS).encode() + b"\0" + torch.__version__.encode() + b"\0")
    digest.update((compiler or rustc_version()).encode())
    return digest.hexdigest()[:16]


def build_dir(compiler: str | None = None) -> Path:
    """The folder of this build: ``<build cache>/rust/perfsuite_rust-<digest>``."""
    return toolchain.build_cache_dir() / "rust" / f"perfsuite_rust-{source_digest(compiler=compiler)}"


def library_path(folder: Path) -> Path:
    """Where the crate's library lands inside a build folder."""
    return folder / "target" / "release" / LIBRARY


def first_error(output: str) -> str:
    """The first line of compiler output that names an error (else its last non-empty line)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if "error" in line.lower() and not line.lower().startswith("warning"):
            return line
    return lines[-1] if lines else "no output"


def _build_shim(folder: Path) -> Path:
    """Compile the C ABI shim into ``folder/shim`` with cpp_extension; returns the library's folder."""
    cpp_extension = toolchain.quiet_cpp_extension()
    shim = folder / "shim"
    shim.mkdir(parents=True, exist_ok=True)
    toolchain.ensure_compiler_env()
    try:
        cpp_extension.load(
            name=SHIM_NAME,
            sources=[str(SHIM_SOURCE)],
            build_directory=str(shim),
            extra_cflags=list(CFLAGS),
            is_python_module=False,
            verbose=False,
        )
    except RuntimeError as exc:
        output = str(exc).partition(":")[2] or str(exc)
        raise BuildError(f"the C ABI shim did not build: {first_error(output)}") from exc
    return shim


def _build_crate(folder: Path, shim: Path) -> None:
    """``cargo build --release --offline`` of a copy of the crate in ``folder`` (Cargo.lock lands there)."""
    crate = folder / "crate"
    for name in CRATE_FILES:
        (crate / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(CRATE_DIR / name, crate / name)
    env = os.environ | {"PERFSUITE_TCH_SHIM_DIR": str(shim), "CARGO_TARGET_DIR": str(folder / "target")}
    command = ["cargo", "build", "--release", "--offline", "--quiet", "--manifest-path", str(crate / "Cargo.toml")]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BuildError(f"cargo build failed: {first_error(done.stderr or done.stdout)}")


@contextmanager
def _locked(folder: Path):
    """Hold an exclusive lock beside ``folder``, so concurrent workers build it once."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _load(path: Path) -> ctypes.CDLL:
    """Load the crate's library (the shim comes with it through the rpath) and declare its functions."""
    lib = ctypes.CDLL(str(path))
    ptr, i64, f64 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_double
    lib.psr_last_error.restype = ctypes.c_char_p
    lib.psr_trainer_new.restype = ptr
    lib.psr_trainer_new.argtypes = [ptr, ptr, i64, i64, ptr, ptr, ptr, ptr, i64, i64, i64, f64, f64, ctypes.c_int]
    lib.psr_train_epoch.restype = i64
    lib.psr_train_epoch.argtypes = [ptr, ptr, i64, ptr, ptr, i64]
    lib.psr_predict.restype = ctypes.c_int
    lib.psr_predict.argtypes = [ptr, ptr, i64, i64, ptr, i64]
    lib.psr_trainer_free.restype = None
    lib.psr_trainer_free.argtypes = [ptr]
    return lib


@dataclass
class Build:
    """A loaded build: the library, where it is, what compiled it, and what loading it cost."""

    lib: ctypes.CDLL
    folder: Path
    compiler: str
    seconds: float
    rebuilt: bool
    note: str | None = None

    def facts(self) -> dict:
        """What the run's metadata records about the build."""
        found = {"build_seconds": self.seconds, "build_cached": not self.rebuilt, "build_dir": str(self.folder)}
        return found | {"rustc": self.compiler} | ({"build_note": self.note} if self.note else {})


def load_library() -> Build:
    """Build (or find in the cache) and load the Rust library.

    A cached library that does not load is removed and rebuilt; the
    :class:`Build`'s ``note`` says so. ``seconds`` is the wall time of the
    build or of the cache lookup.
    """
    start = time.perf_counter()
    compiler = rustc_version()
    folder = build_dir(compiler)
    note = None
    with _locked(folder):
        path = library_path(folder)
        if path.is_file():
            try:
                return Build(_load(path), folder, compiler, time.perf_counter() - start, False)
            except OSError as exc:
                note = f"the cached build in {folder} did not load ({first_error(str(exc))}); rebuilt"
                shutil.rmtree(folder)
        _build_crate(folder, _build_shim(folder))
        return Build(_load(path), folder, compiler, time.perf_counter() - start, True, note)


class Rust(Implementation):
    """The article's training loop in std-only Rust over a C ABI shim of LibTorch, phases timed in Rust."""

    name = "rust"
    description = "article's tch-rs loop in std-only Rust over a C ABI shim of LibTorch (cargo, GIL released)"

    @classmethod
    def unavailable_reason(cls):
        """Names what is missing: the Rust toolchain, or what the shim's C++ build needs."""
        found = toolchain.reasons(toolchain.missing_rust(), *toolchain.missing_for_extension())
        return f"cannot build the Rust loop: {found}" if found else None

    def setup(self, ctx):
        build = load_library()
        self.lib, self.build = build.lib, build.facts()
        self.permutation = ctx.permutation
        wl, p = ctx.workload, ctx.params
        x = preprocess(ctx.train.images[: ctx.n_train]).contiguous()
        y = ctx.train.labels[: ctx.n_train].to(torch.int64).contiguous()
        w1, b1, w2, b2 = (p[k].detach().contiguous() for k in ("w1", "b1", "w2", "b2"))
        self.hidden, self.rows = w1.shape[0], len(x)
        self.steps = -(-self.rows // wl.batch_size)
        handle = self.lib.psr_trainer_new(
            *map(torch.Tensor.data_ptr, (x, y)),
            self.rows,
            INPUTS,
            *map(torch.Tensor.data_ptr, (w1, b1, w2, b2)),
            self.hidden,
            CLASSES,
            wl.batch_size,
            wl.lr,
            wl.momentum,
            int(wl.loss == "mse"),
        )
        self.trainer = self._checked(handle, "psr_trainer_new")
        return {"build_seconds": build.seconds, "build_cached": not build.rebuilt}

    def _checked(self, result, call: str):
        """``result``, or a RuntimeError with the library's message when ``result`` says the call failed."""
        if result is None or result == -1:
            message = (self.lib.psr_last_error() or b"no message").decode(errors="replace")
            raise RuntimeError(f"rust {call}: {message}")
        return result

    def train_epoch(self, epoch, clock):
        """One epoch in Rust (GIL released by ctypes): steps x 5 phase seconds and per-step losses."""
        start = clock()
        indices = self.permutation(epoch).to(torch.int64).contiguous()
        shuffle = clock() - start
        phases = np.zeros((self.steps, PHASE_COUNT))
        losses = np.zeros(self.steps)
        steps = self.lib.psr_train_epoch(
            self.trainer, indices.data_ptr(), len(indices), phases.ctypes.data, losses.ctypes.data, self.steps
        )
        steps = self._checked(steps, "psr_train_epoch")
        phases, losses = phases[:steps], losses[:steps]
        if steps:
            phases[0, 0] += shuffle
        return EpochTiming(phases, torch.from_numpy(losses).to(torch.float32), {"permutation_seconds": shuffle})

    def predict(self, x):
        """Logits for preprocessed inputs, computed by the Rust model."""
        x = x.to(torch.float32).contiguous()
        out = torch.empty((len(x), CLASSES), dtype=torch.float32)
        status = self.lib.psr_predict(self.trainer, x.data_ptr(), len(x), x.shape[1], out.data_ptr(), CLASSES)
        self._checked(status, "psr_predict")
        return out

    def info(self):
        """Build facts for the run's metadata."""
        return {"torch": torch.__version__, "cxx": os.environ.get("CXX") or "c++", **self.build}

    def __del__(self):
        trainer, lib = getattr(self, "trainer", None), getattr(self, "lib", None)
        if trainer and lib:
            lib.psr_trainer_free(trainer)
