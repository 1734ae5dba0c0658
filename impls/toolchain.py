"""Which build tools the compiled implementations need, and whether this machine has them.

``compiled`` (torch.compile, Inductor on CPU) compiles generated C++ with the
compiler Inductor picks: ``$CXX`` if set, else ``g++`` (``clang++`` on macOS).
``native`` builds a LibTorch extension with :mod:`torch.utils.cpp_extension`,
which runs ``ninja`` and ``$CXX`` (default ``c++``) and needs Python's headers;
``rust`` builds such a library too (its C ABI shim) and a crate with ``cargo``.
The checks here only look for the programs and files; they never build.
"""

import logging
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from perfsuite.core.data import cache_dir

BUILD_CACHE_ENV = "PERFSUITE_BUILD_CACHE"


def build_cache_dir() -> Path:
    """Where compiled builds are cached: ``$PERFSUITE_BUILD_CACHE``, else ``<cache_dir>/build``."""
    env = os.environ.get(BUILD_CACHE_ENV)
    return Path(env) if env else cache_dir() / "build"


def _program(command: str) -> str | None:
    """The full path of the program a command line starts with, or ``None``."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    return shutil.which(words[0]) if words else None


def missing_compiler(defaults: tuple) -> str | None:
    """Why no C++ compiler is usable (``$CXX`` wins over ``defaults``), or ``None``.

    Returns the reason as one phrase, e.g. ``"C++ compiler CXX=/nonexistent not found"``.
    """
    cxx = os.environ.get("CXX")
    if cxx:
        return None if _program(cxx) else f"C++ compiler CXX={cxx} not found"
    if any(_program(name) for name in defaults):
        return None
    return f"no C++ compiler ({' or '.join(defaults)}) on PATH and CXX is not set"


def missing_ninja() -> str | None:
    """Why ninja cannot run (torch.utils.cpp_extension needs it), or ``None``."""
    path = shutil.which("ninja")
    if path is None:
        return "ninja not found (pip install ninja)"
    try:
        subprocess.run([path, "--version"], capture_output=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"ninja at {path} does not run ({type(exc).__name__})"
    return None


def missing_rust() -> str | None:
    """Why the Rust toolchain (``cargo`` and ``rustc``) cannot run, or ``None``."""
    for program in ("cargo", "rustc"):
        path = shutil.which(program)
        if path is None:
            return f"{program} not found (apt-get install rustc cargo)"
        try:
            subprocess.run([path, "--version"], capture_output=True, check=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as exc:
            return f"{program} at {path} does not run ({type(exc).__name__})"
    return None


def missing_python_headers() -> str | None:
    """Why a Python extension cannot be compiled for lack of ``Python.h``, or ``None``."""
    include = sysconfig.get_paths().get("include", "")
    return None if (Path(include) / "Python.h").is_file() else f"Python headers (Python.h) not found in {include}"


def inductor_compiler_defaults() -> tuple:
    """The compiler Inductor tries when ``CXX`` is not set."""
    return ("clang++",) if sys.platform == "darwin" else ("g++",)


def extension_compiler_defaults() -> tuple:
    """The compilers a cpp_extension build can use when ``CXX`` is not set (it runs ``c++``)."""
    return ("c++", "g++")


def missing_for_extension() -> tuple:
    """Why a cpp_extension build cannot run, one reason (or ``None``) each: compiler, ninja, Python headers."""
    return missing_compiler(extension_compiler_defaults()), missing_ninja(), missing_python_headers()


def ensure_compiler_env() -> None:
    """cpp_extension runs ``$CXX`` or ``c++``; point ``CXX`` at ``g++`` when only that exists."""
    if not os.environ.get("CXX") and shutil.which("c++") is None and shutil.which("g++"):
        os.environ["CXX"] = "g++"


def reasons(*found: str | None) -> str | None:
    """Join the non-empty reasons into one line (``None`` when there are none)."""
    text = "; ".join(r for r in found if r)
    return text or None


def quiet_cpp_extension():
    """``torch.utils.cpp_extension``, imported without its CUDA_HOME warning.

    A CUDA build of torch warns at that import when no CUDA runtime exists;
    everything built here is CPU-only, so the warning is noise. The logger's
    level is raised only for the import and restored afterwards.
    """
    logger = logging.getLogger("torch.utils.cpp_extension")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        from torch.utils import cpp_extension  # its import logs warnings this context silences
    finally:
        logger.setLevel(previous)
    return cpp_extension
