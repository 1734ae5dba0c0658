"""The two sides of ``perfsuite ab``: a git revision checked out in a worktree, or a folder.

A side is a checkout of a project that registers implementations in its
``pyproject.toml`` (``[project.entry-points."perfsuite.impls"]``). Its
implementations run in worker processes of their own, with the current
perfsuite as harness: before a worker loads its class, :func:`activate`
puts the side's folder first on ``sys.path`` and points the package
``perfsuite.impls`` at the side's ``impls/`` folder, so the side's files are
imported, cross-imports (``from perfsuite.impls.store import …``) included.
"""

import importlib
import json
import shutil
import subprocess
import sys
import tempfile
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from perfsuite.core.errors import UsageError
from perfsuite.core.registry import GROUP

LABELS = ("base", "new")
BUILTINS = "perfsuite.impls"
"""The package of the built-in implementations, which :func:`activate` points at a side's ``impls/``."""


@dataclass(frozen=True)
class Side:
    """One side of an A/B: its label (``base``/``new``), what the user named, its folder and commit."""

    label: str
    given: str
    folder: Path
    revision: str | None = None
    commit: str | None = None

    def activate(self) -> None:
        """Make this process import the side's implementations (:func:`activate`)."""
        activate(self.folder)

    def registered(self) -> dict:
        """The side's registered implementations, ``{name: spec}``, with file specs made absolute."""
        return registered(self.folder)

    def to_dict(self) -> dict:
        """What ``meta.json``'s ``ab`` record says of this side."""
        return {
            "label": self.label,
            "given": self.given,
            "revision": self.revision,
            "commit": self.commit,
            "folder": str(self.folder),
        }


def activate(folder) -> None:
    """Import implementations from ``folder``: first on ``sys.path``; ``perfsuite.impls`` is its ``impls/``."""
    folder = Path(folder).resolve()
    sys.path.insert(0, str(folder))
    impls = folder / "impls"
    if impls.is_dir():
        package = importlib.import_module(BUILTINS)  # by name, as the registry loads implementations
        for name in [m for m in sys.modules if m.startswith(BUILTINS + ".")]:
            del sys.modules[name]
        package.__path__[:] = [str(impls)]


def _absolute(spec: str, folder: Path) -> str:
    """``spec`` with a ``file.py:Class`` path made relative to ``folder``; ``module:Class`` unchanged."""
    where, _, attr = spec.strip().rpartition(":")
    if where.endswith(".py") or "/" in where or "\\" in where:
        return f"{folder / where}:{attr}"
    return spec.strip()


def registered(folder: Path) -> dict:
    """``{name: spec}`` of the ``perfsuite.impls`` entry points in ``folder/pyproject.toml`` (empty without one)."""
    import tomllib  # Python 3.11+: only ``perfsuite ab`` needs it, so workers import this module on 3.10 too

    path = Path(folder) / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        project = tomllib.loads(path.read_text()).get("project", {})
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from exc
    points = project.get("entry-points", {}).get(GROUP, {})
    return {name: _absolute(spec, Path(folder)) for name, spec in points.items()}


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)


def repository(cwd: Path) -> Path | None:
    """The top folder of the git checkout holding ``cwd``, or ``None``."""
    found = _git(cwd, "rev-parse", "--show-toplevel")
    return Path(found.stdout.strip()) if found.returncode == 0 else None


def commit_of(cwd: Path, revision: str) -> str | None:
    """The commit ``revision`` names in the repository at ``cwd``, or ``None``."""
    found = _git(cwd, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    return found.stdout.strip() if found.returncode == 0 else None


def _worktree(stack: ExitStack, repo: Path, commit: str, where: Path) -> None:
    """Check ``commit`` out at ``where`` (detached) and remove that worktree when ``stack`` closes."""
    added = _git(repo, "worktree", "add", "--detach", str(where), commit)
    if added.returncode != 0:
        raise UsageError(f"git worktree add {commit[:10]} failed: {added.stderr.strip().splitlines()[-1]}")
    stack.callback(_git, repo, "worktree", "prune")
    stack.callback(_git, repo, "worktree", "remove", "--force", str(where))


def _side(stack: ExitStack, label: str, given: str, cwd: Path, scratch: Path) -> Side:
    repo = repository(cwd)
    commit = commit_of(cwd, given) if repo else None
    if commit:
        where = scratch / label
        _worktree(stack, repo, commit, where)
        return Side(label, given, where, revision=given, commit=commit)
    folder = Path(given)
    if folder.is_dir():
        return Side(label, given, folder.resolve())
    raise UsageError(f"{label.upper()} {given}: not a git revision of {repo or cwd} nor a folder")


@contextmanager
def checked_out(base: str, new: str, cwd: Path | None = None):
    """``(base_side, new_side)``; git revisions are checked out in temporary worktrees, removed on leaving."""
    cwd = Path(cwd or Path.cwd())
    with ExitStack() as stack:
        scratch = Path(tempfile.mkdtemp(prefix="perfsuite-ab-"))
        stack.callback(shutil.rmtree, scratch, True)
        yield tuple(_side(stack, label, given, cwd, scratch) for label, given in zip(LABELS, (base, new), strict=True))


def display(name: str, side: Side) -> str:
    """The name a side's implementation has in the run folder: ``store@base``."""
    return f"{name}@{side.label}"


def _describe(side: Side) -> str:
    return f"{side.label.upper()} ({side.given})"


def choose(sides: tuple, requested: list | None) -> list:
    """The implementation names both sides measure: ``requested``, or every one both register.

    A side that registers none of them, or lacks one, is a one-line usage error.
    """
    found = [s.registered() for s in sides]
    if requested is None:
        common = [n for n in sorted(found[0]) if n in found[1]]
        if not common:
            raise UsageError(f"{_describe(sides[0])} and {_describe(sides[1])} register no implementation in common")
        return common
    for side, names in zip(sides, found, strict=True):
        missing = [n for n in requested if n not in names]
        if len(missing) == len(requested):
            raise UsageError(f"{_describe(side)} registers none of {', '.join(requested)}")
        if missing:
            known = ", ".join(sorted(names))
            raise UsageError(f"{_describe(side)} does not register {', '.join(missing)} (it registers {known})")
    return list(requested)


SUPPORT_PROBE = """
import json, sys
from perfsuite.core import registry
from perfsuite.core.interface import support_problem
from perfsuite.measure import sides
sides.activate(sys.argv[1])
problems = {}
for name, spec in zip(sys.argv[3::2], sys.argv[4::2]):
    try:
        problems[name] = support_problem(registry.load_class(spec), sys.argv[2])
    except Exception:
        problems[name] = None  # not loadable here: its worker reports why, in one line
print(json.dumps(problems))
"""
"""Run in a process of its own per side: which of the side's classes cannot train the workload."""


def unsupported(sides: tuple, names: list, workload_name: str) -> dict:
    """``{name: reason}`` of the implementations that a side says cannot train ``workload_name``.

    Each side's classes are imported in a short process of its own (the
    side's ``perfsuite.impls`` cannot share this one), both sides at once.
    A class that cannot even be loaded is left to its worker, which says why.
    """
    probes = []
    for side in sides:
        specs = side.registered()
        argv = [str(side.folder), workload_name, *[w for n in names for w in (n, specs[n])]]
        command = [sys.executable, "-c", SUPPORT_PROBE, *argv]
        probes.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
    found = {}
    for side, probe in zip(sides, probes, strict=True):
        out, _ = probe.communicate()
        try:
            problems = json.loads(out.strip().splitlines()[-1]) if probe.returncode == 0 and out.strip() else {}
        except ValueError:
            problems = {}
        for name, problem in problems.items():
            if problem and name not in found:
                found[name] = f"{_describe(side)}: {name} {problem}"
    return found


def check_runnable(cls: type) -> None:
    """Raise when a side's class cannot run in one ab worker: multi-rank, or unavailable here."""
    if getattr(cls, "distributed", False):
        raise UsageError(f"{cls.__name__} is multi-rank; perfsuite ab measures single-process implementations")
    check = getattr(cls, "unavailable_reason", None)
    reason = check() if callable(check) else None
    if reason:
        raise UsageError(f"{cls.__name__} cannot run here: {reason}")
