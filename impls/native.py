"""``native``: the article's Rust/tch-rs loop translated to C++ on the LibTorch inside the torch wheel.

The C++ source (``impls/native/trainer.cpp``) keeps the article's design: a
``Memory`` store of parameters, ``Linear`` layers holding parameter addresses
by name, ``get_batches`` by ``index_select`` + ``narrow``, cross entropy as
``log_softmax`` + ``nll_loss`` (or MSE), SGD with persistent EMA momentum. It
is built with :func:`torch.utils.cpp_extension.load` into a folder of the
build cache named after the source's hash and the torch version, so it is
rebuilt only when either changes; the build (or cache lookup) time is
returned from :meth:`Native.setup` as ``build_seconds``.

The whole epoch runs in C++ with the GIL released and times its own phases
(``train_epoch`` is the fused path of the interface). The epoch's sample
order is the harness's permutation; the time to draw it is charged to the
first step's batching, as the Python loops charge their shuffling.
"""

import hashlib
import os
import time
from pathlib import Path

import torch

from perfsuite.core.data import preprocess
from perfsuite.core.interface import EpochTiming, Implementation
from perfsuite.impls import toolchain

SOURCE_DIR = Path(__file__).resolve().parent / "native"
SOURCES = ("trainer.cpp",)
MODULE_NAME = "perfsuite_native"
CFLAGS = ("-O3", "-fno-optimize-sibling-calls")
"""``-fno-optimize-sibling-calls``: a phase function's call is never a tail call, so its frame (``phase_forward``…)
stays on the stack under everything the phase runs, and ``py-spy --native`` samples name the phase."""


def source_paths() -> list:
    """The C++ sources of the extension."""
    return [SOURCE_DIR / name for name in SOURCES]


def source_digest(paths=None) -> str:
    """A short hash of the sources, the build flags and the torch version: the build's cache key."""
    digest = hashlib.sha256()
    for path in paths or source_paths():
        digest.update(Path(path).name.encode() + b"\0" + Path(path).read_bytes() + b"\0")
    digest.update(" ".join(CFLAGS).encode() + b"\0" + torch.__version__.encode())
    return digest.hexdigest()[:16]


def build_dir(paths=None) -> Path:
    """The folder the extension is built in: one per source digest under the build cache."""
    return toolchain.build_cache_dir() / "native" / f"{MODULE_NAME}-{source_digest(paths)}"


def _library(folder: Path):
    """The built shared library in ``folder``, or ``None``."""
    found = sorted(folder.glob(f"{MODULE_NAME}*.so"))
    return found[0] if found else None


def load_extension() -> tuple:
    """Build (or find in the cache) and import the extension.

    Returns ``(module, seconds, rebuilt)``: the module, the wall seconds the
    build or cache lookup took, and whether the library was (re)compiled.
    """
    cpp_extension = toolchain.quiet_cpp_extension()
    folder = build_dir()
    folder.mkdir(parents=True, exist_ok=True)
    before = _library(folder)
    stamp = before.stat().st_mtime_ns if before else None
    toolchain.ensure_compiler_env()
    start = time.perf_counter()
    module = cpp_extension.load(
        name=MODULE_NAME,
        sources=[str(p) for p in source_paths()],
        build_directory=str(folder),
        extra_cflags=list(CFLAGS),
        verbose=False,
    )
    seconds = time.perf_counter() - start
    after = _library(folder)
    rebuilt = stamp is None or after is None or after.stat().st_mtime_ns != stamp
    return module, seconds, rebuilt


class Native(Implementation):
    """The article's training loop in C++ on LibTorch, phases timed in C++."""

    name = "native"
    description = "article's tch-rs loop in C++ on the wheel's LibTorch (cpp_extension, GIL released)"

    @classmethod
    def unavailable_reason(cls):
        """Names what is missing to build the extension: C++ compiler, ninja or Python headers."""
        found = toolchain.reasons(*toolchain.missing_for_extension())
        return f"cannot build the C++ extension: {found}" if found else None

    def setup(self, ctx):
        self.module, seconds, rebuilt = load_extension()
        self.build = {"build_seconds": seconds, "build_cached": not rebuilt, "build_dir": str(build_dir())}
        self.permutation = ctx.permutation
        wl = ctx.workload
        p = ctx.params
        x = preprocess(ctx.train.images[: ctx.n_train])
        y = ctx.train.labels[: ctx.n_train].contiguous()
        self.trainer = self.module.Trainer(
            x, y, p["w1"], p["b1"], p["w2"], p["b2"], wl.batch_size, wl.lr, wl.momentum, wl.loss
        )
        return {"build_seconds": seconds, "build_cached": not rebuilt}

    def train_epoch(self, epoch, clock):
        """One epoch in C++ (GIL released): steps x 5 phase seconds and per-step losses."""
        start = clock()
        indices = self.permutation(epoch)
        shuffle = clock() - start
        phases, losses = self.trainer.train_epoch(indices)
        if len(phases):
            phases[0, 0] += shuffle
        return EpochTiming(phases.numpy(), losses, {"permutation_seconds": shuffle})

    def predict(self, x):
        """Logits for preprocessed inputs, computed by the C++ model."""
        return self.trainer.predict(x)

    def info(self):
        """Build facts for the run's metadata."""
        return {"torch": torch.__version__, "cxx": os.environ.get("CXX") or "c++", **self.build}
