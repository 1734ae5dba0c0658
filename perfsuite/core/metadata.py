"""Machine and software facts saved with every run, as pyperf and pytest-benchmark do."""

import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from perfsuite.core.clock import clock_cost, monotonic

VERSION = "0.1.0"
"""perfsuite's version (the package's ``__version__``, recorded in every run's metadata)."""
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit(where: Path) -> dict:
    """The git commit (and whether the tree is dirty) of the checkout holding ``where``."""

    def git(*args):
        return subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True, timeout=10)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"commit": None, "dirty": None}
        status = git("status", "--porcelain", "--untracked-files=no")
        return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def _package_version(name: str):
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def software() -> dict:
    """Versions of Python, torch and its math libraries, torchvision and perfsuite."""
    import torch  # on first use: `import perfsuite` (its version) must not load torch

    return {
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "torch": torch.__version__,
        "torch_cuda_build": torch.version.cuda,
        "torchvision": _package_version("torchvision"),
        "numpy": _package_version("numpy"),
        "mkl": torch.backends.mkl.is_available(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "openmp": torch.backends.openmp.is_available(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "parallel_info": torch.__config__.parallel_info().strip().splitlines(),
        "perfsuite": VERSION,
        **git_commit(PACKAGE_DIR),
    }


def machine() -> dict:
    """CPU model, core counts, OS and host name."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "hostname": platform.node(),
    }


def collect(argv=None) -> dict:
    """All metadata of a run, taken at its start."""
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": list(sys.argv if argv is None else argv),
        "machine": machine(),
        "software": software(),
        "timer": {"clock": "time.perf_counter", "seconds_per_read": clock_cost(monotonic)},
    }
