"""Which phase a sampled stack of a user's script was in, read from its ``perfsuite.record`` scopes.

A script marked with :mod:`perfsuite.record` has no frame per phase: a phase
is a ``with record.phase("forward"):`` block, or a function decorated with
``@record.phase("eval")``. py-spy writes each Python frame with the line it
was executing, so a sample is in a phase when one of its frames executes a
line inside such a block (or inside such a function). :func:`scopes_of`
reads those line ranges from the source with :mod:`ast`, the same way
:mod:`perfsuite.profile.stacks` reads the harness's call sites, so they
follow the script as it is. :class:`ScriptAttribution` applies them:

* a sample is inside an epoch when a frame executes a line of a ``with
  record.epoch():`` block; samples outside every epoch are dropped (imports,
  data loading, evaluation after training);
* walking from the outermost frame in, the first frame on a line of a phase
  block or in a decorated function names the phase; the frames below it are
  what ran in the phase;
* the frame of :meth:`perfsuite.core.recording.Recorder.batches` (the batch
  wrapper, with the data pipeline below it) is ``batching``;
* anything else inside an epoch is ``other``, as for the timers.

The scope call is recognised by its last name and its first argument, a
string: ``record.phase("x")``, ``perfsuite.record.phase("x")`` or a bare
``phase("x")`` imported from ``perfsuite.record``. Files are read once, when a
frame first names them (a relative name is looked up in the script's folder,
then its working folder);
a file that cannot be read or parsed has no scopes.
"""

import ast
from dataclasses import dataclass, field
from pathlib import Path

from perfsuite.core.interface import OTHER

RECORDING_FILE = ("perfsuite", "core", "recording.py")
"""The last parts of the path of the recorder's module, whose ``batches`` frame is ``batching``."""
BATCHES_FUNCTION = "batches"


@dataclass(frozen=True)
class Scopes:
    """The line ranges of one file's epoch blocks and phase blocks (``(first, last, phase)``)."""

    epochs: tuple = ()
    phases: tuple = ()

    def phase_at(self, line: int) -> str | None:
        """The phase whose block or decorated function holds ``line`` (the innermost), or ``None``."""
        found, width = None, None
        for first, last, name in self.phases:
            if first <= line <= last and (width is None or last - first < width):
                found, width = name, last - first
        return found

    def in_epoch(self, line: int) -> bool:
        """Whether ``line`` lies in a ``with record.epoch():`` block."""
        return any(first <= line <= last for first, last in self.epochs)


def _scope_call(node) -> tuple | None:
    """``("phase", name)`` / ``("epoch", None)`` when ``node`` is a call of ``phase("name")`` / ``epoch()``."""
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if called == "epoch" and not node.args:
        return "epoch", None
    if called == "phase" and node.args:
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return "phase", first.value
    return None


def scopes_of(source: str) -> Scopes:
    """The epoch and phase line ranges of a module's ``source``; :class:`SyntaxError` when it is not Python."""
    epochs, phases = [], []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.With | ast.AsyncWith):
            span = (node.body[0].lineno, node.end_lineno)
            for item in node.items:
                found = _scope_call(item.context_expr)
                if found and found[0] == "epoch":
                    epochs.append(span)
                elif found:
                    phases.append((*span, found[1]))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in node.decorator_list:
                found = _scope_call(decorator)
                if found and found[0] == "phase":
                    phases.append((node.body[0].lineno, node.end_lineno, found[1]))
    return Scopes(tuple(epochs), tuple(phases))


@dataclass
class ScriptAttribution:
    """Gives a sampled stack of a script its phase (see the module's documentation).

    ``roots`` are the folders a relative file name is looked up in, in order:
    py-spy names a file relative to the ``sys.path`` entry it was found
    under, the script's own folder for the script and the modules beside it.
    """

    roots: tuple = field(default_factory=lambda: (Path.cwd(),))
    _files: dict = field(default_factory=dict)

    def _path(self, file: str) -> Path:
        path = Path(file)
        if path.is_absolute():
            return path
        return next((root / path for root in self.roots if (root / path).is_file()), Path(self.roots[0]) / path)

    def scopes(self, file: str) -> Scopes:
        """The scopes of ``file`` as a frame names it (read once; none when it cannot be read or parsed)."""
        found = self._files.get(file)
        if found is None:
            path = self._path(file)
            try:
                source = path.read_text(encoding="utf-8", errors="replace")
                found = scopes_of(source) if "phase(" in source or "epoch(" in source else Scopes()
            except (OSError, SyntaxError, ValueError):
                found = Scopes()
            self._files[file] = found
        return found

    def locate(self, frames) -> tuple | None:
        """``(phase, index of the first frame that ran inside it)`` of one stack; ``None`` outside every epoch.

        From the outermost frame executing a line of an epoch block inward, the
        first frame on a line of a phase block (or in a decorated function), or
        the recorder's ``batches`` frame, names the phase.
        """
        located = [i for i, f in enumerate(frames) if f.line is not None and f.file]
        epoch = next((i for i in located if self.scopes(frames[i].file).in_epoch(frames[i].line)), None)
        if epoch is None:
            return None
        for index in (i for i in located if i >= epoch):
            frame = frames[index]
            if frame.function == BATCHES_FUNCTION and Path(frame.file).parts[-3:] == RECORDING_FILE:
                return "batching", index + 1
            phase = self.scopes(frame.file).phase_at(frame.line)
            if phase is not None:
                return phase, index + 1
        return OTHER, epoch + 1
