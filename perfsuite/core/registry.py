"""Finding implementations: entry points, ``module:Class`` and ``file.py:Class``.

Built-in implementations register in the ``perfsuite.impls`` entry-point
group (see pyproject.toml); a third-party package can add its own the same
way. A user's own class runs without touching the suite by naming it as
``package.module:Class`` or ``path/to/file.py:Class``.
"""

import hashlib
import importlib
import importlib.util
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from perfsuite.core.errors import UsageError
from perfsuite.core.interface import interface_problems, support_problem
from perfsuite.core.workload import DEFAULT_WORKLOAD

GROUP = "perfsuite.impls"
OLD_PACKAGE = "impls"
"""Where the built-in implementations lived before they moved under ``perfsuite``; specs naming it still work."""


@dataclass(frozen=True)
class ImplSpec:
    """A resolved implementation: its display name, how it was named, its class, the workload it is to train."""

    name: str
    spec: str
    cls: type
    workload: str = DEFAULT_WORKLOAD

    @property
    def unavailable_reason(self) -> str | None:
        """Why it cannot run here, or ``None``: a workload it does not train, else what the class says."""
        unsupported = support_problem(self.cls, self.workload)
        if unsupported:
            return unsupported
        check = getattr(self.cls, "unavailable_reason", None)
        return check() if callable(check) else None


def builtin() -> dict:
    """Entry points of the ``perfsuite.impls`` group, by name."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def _load_file(path_text: str, attr: str, spec: str, option: str = "--impls"):
    path = Path(path_text)
    if not path.is_file():
        raise UsageError(f"{option} {spec}: file {path} does not exist")
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    module_name = f"perfsuite_user_{path.stem}_{digest}"
    module = sys.modules.get(module_name)
    if module is None:
        loader_spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[module_name] = module
        try:
            loader_spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[module_name]
            raise UsageError(f"{option} {spec}: importing {path} failed: {type(exc).__name__}: {exc}") from exc
    return _attribute(module, attr, spec, option)


def installed_module(module_name: str) -> str:
    """``module_name`` as installed: the built-ins' old top-level ``impls.…`` is now ``perfsuite.impls.…``."""
    if module_name == OLD_PACKAGE or module_name.startswith(OLD_PACKAGE + "."):
        return "perfsuite." + module_name
    return module_name


def _load_module(module_name: str, attr: str, spec: str, option: str = "--impls"):
    module_name = installed_module(module_name)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise UsageError(f"{option} {spec}: cannot import module {module_name}: {type(exc).__name__}: {exc}") from exc
    return _attribute(module, attr, spec, option)


def _attribute(module, attr: str, spec: str, option: str = "--impls"):
    if not attr.isidentifier():
        raise UsageError(f"{option} {spec}: {attr!r} is not a class name")
    try:
        return getattr(module, attr)
    except AttributeError:
        raise UsageError(f"{option} {spec}: {module.__name__} has no class {attr}") from None


def load_object(spec: str, option: str):
    """The class ``module:Class`` or ``path/to/file.py:Class`` names (errors name ``option``)."""
    where, _, attr = spec.strip().rpartition(":")
    if not where or not attr:
        raise UsageError(f"{option} {spec}: expected a name, module:Class or path/to/file.py:Class")
    if where.endswith(".py") or "/" in where or "\\" in where:
        return _load_file(where, attr, spec, option)
    return _load_module(where, attr, spec, option)


def load_class(spec: str) -> type:
    """The class that ``spec`` names: a registered name, ``module:Class`` or ``file.py:Class``."""
    spec = spec.strip()
    if ":" not in spec:
        points = builtin()
        if spec not in points:
            known = ", ".join(sorted(points)) or "none installed"
            raise UsageError(
                f"--impls {spec}: unknown implementation (known: {known}; or give module:Class or file.py:Class)"
            )
        try:
            cls = points[spec].load()
        except Exception as exc:
            raise UsageError(f"--impls {spec}: its entry point failed to load: {type(exc).__name__}: {exc}") from exc
    else:
        cls = load_object(spec, "--impls")
    problems = interface_problems(cls)
    if problems:
        raise UsageError(f"--impls {spec}: not a perfsuite implementation ({'; '.join(problems)})")
    return cls


def display_name(spec: str, cls: type) -> str:
    """The name results use: the registered name, else the class's ``name``, else its class name."""
    if ":" not in spec:
        return spec.strip()
    return getattr(cls, "name", "") or cls.__name__


def resolve(specs, workload: str = DEFAULT_WORKLOAD) -> list:
    """Resolve a list of specs into :class:`ImplSpec` objects with distinct names, to train ``workload``.

    ``workload`` is the name of the workload definition (``mnist-mlp``, ``mnist-cnn``, …); an
    implementation that does not train it is unavailable (:attr:`ImplSpec.unavailable_reason`).
    """
    resolved = []
    for spec in specs:
        cls = load_class(spec)
        resolved.append(ImplSpec(display_name(spec, cls), spec.strip(), cls, workload))
    names = [r.name for r in resolved]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UsageError(f"--impls: implementation {', '.join(duplicates)} named more than once")
    return resolved


def require_workload(impls: list) -> None:
    """A one-line usage error when an implementation named explicitly does not train the run's workload."""
    for spec in impls:
        problem = support_problem(spec.cls, spec.workload)
        if problem:
            raise UsageError(f"--impls {spec.name}: {problem}; perfsuite list shows which implementation trains which")


def parse_list(text: str) -> list:
    """Split an ``--impls`` value on commas (``file.py:Class`` may contain no comma)."""
    specs = [s.strip() for s in text.split(",") if s.strip()]
    if not specs:
        raise UsageError("--impls: give at least one implementation")
    return specs
