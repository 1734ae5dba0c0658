"""Collapsed stacks (py-spy ``--format raw``) turned into samples per phase.

A collapsed-stack file has one line per distinct stack: frames from the
outermost to the innermost joined by ``;``, a space, then how many samples
had that stack::

    <module> (run.py:3);time_epoch (perfsuite/core/phases.py:96);time_staged_epoch (perfsuite/core/phases.py:71);\
forward (perfsuite/core/phases.py:62);forward (impls/store.py:140) 57

(one line, cut here at the backslash for width)

py-spy writes a Python frame as ``function (file:line)`` and, with
``--native``, a C/C++ frame as ``symbol (library.so)``; symbols may contain
spaces, commas and parentheses of their own, so only the last parenthesised
group is read as the location.

How a sample is attributed (:class:`Attribution`):

* It counts only inside an epoch: the stack must hold the harness's
  ``time_epoch`` frame (at its call of the epoch, when line numbers are
  known). Everything else (waiting for the parent, setup) is *outside*.
* Staged implementations: the phase is decided where the harness frame
  ``time_staged_epoch`` is, by the line it is executing, i.e. the call it is
  in: ``next(iterator)`` / ``batching(impl, epoch)`` is ``batching``,
  ``forward(impl, x)`` (the harness's phase frame, :func:`perfsuite.core.phases.forward`)
  is ``forward`` and so on. The map from line to phase is
  read from the harness's own source with :mod:`ast`
  (:func:`harness_call_sites`), so it follows edits of the harness. Nested
  frames with the same names (``nn.Module.forward``, ``Optimizer.step``) never
  matter: only the harness frame's call site does. Stacks without line numbers
  fall back to the name of the frame called directly from the harness.
* Fused implementations (their own loop): the outermost frame named
  ``phase_<phase>`` (the native and rust loops' non-inlined C++ and Rust
  functions, visible with ``--native``) names the phase.
* Anything else inside an epoch is ``other``, as for the timers.

py-spy qualifies Python names (``Store.forward``, ``f.<locals>.g``); names are
compared without that qualification.
"""

import ast
import inspect
import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from perfsuite.core import phases
from perfsuite.core.errors import UsageError
from perfsuite.core.interface import OTHER, PHASES

HARNESS_FUNCTION = "time_staged_epoch"
EPOCH_FUNCTION = "time_epoch"
HARNESS_CALLS = {
    "batching": "batching",
    "batches": "batching",
    "next": "batching",
    "iter": "batching",
    "forward": "forward",
    "loss": "loss",
    "backward": "backward",
    "step": "step",
}
"""Names the harness calls, by the phase the call belongs to."""
EPOCH_CALLS = {"time_staged_epoch": "epoch", "train_epoch": "epoch"}
"""Calls of ``time_epoch`` that lie inside the epoch's wall-clock window."""
METHOD_PHASES = {
    "batching": "batching",
    "batches": "batching",
    "forward": "forward",
    "loss": "loss",
    "backward": "backward",
    "step": "step",
}
NATIVE_PHASE = re.compile(r"(?:^|[\s:*&])phase_(" + "|".join(PHASES) + r")(?=$|[\s(<\[]|::h[0-9a-f]{16}$)")
"""A fused loop's phase function: a C++ ``phase_<phase>`` or a Rust ``crate::module::phase_<phase>`` (with or
without the symbol's ``::h<hash>`` suffix)."""
_FRAME = re.compile(r"^(?P<name>.*?)(?: \((?P<location>[^()]*)\))?$")
_LINE = re.compile(r"^(?P<file>.*):(?P<line>\d+)$")


@dataclass(frozen=True)
class Frame:
    """One frame of a collapsed stack: function or symbol name, file and line when known."""

    name: str
    file: str = ""
    line: int | None = None

    @property
    def function(self) -> str:
        """The name without its qualification (py-spy writes ``Store.forward`` for a method)."""
        return self.name.rsplit(".", 1)[-1]


def parse_frame(text: str) -> Frame:
    """Split ``name (file:line)`` or ``symbol (library)`` into a :class:`Frame`."""
    match = _FRAME.match(text.strip())
    name, location = match.group("name"), match.group("location") or ""
    located = _LINE.match(location)
    if located:
        return Frame(name, located.group("file"), int(located.group("line")))
    return Frame(name, location)


def parse_collapsed(lines: Iterable[str], source: str = "<stacks>") -> list:
    """``(frames, count)`` pairs of collapsed-stack lines (blank lines skipped).

    Raises :class:`~perfsuite.core.errors.UsageError` naming ``source`` and the line
    when a line has no positive sample count.
    """
    stacks = []
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\n")
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit() or int(count) <= 0:
            raise UsageError(f"{source}:{number}: not a collapsed stack ('frame;frame;... count'): {line[:80]!r}")
        stacks.append((tuple(parse_frame(f) for f in stack.split(";")), int(count)))
    return stacks


def read_collapsed(path) -> list:
    """Read a collapsed-stack file (see :func:`parse_collapsed`)."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return parse_collapsed(fh, str(path))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror})") from exc


def _label(node, labels: dict, assigned: dict):
    if isinstance(node, ast.Call):
        callee = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        return labels.get(callee)
    if isinstance(node, ast.Assign):
        names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        return next((assigned[n] for n in names if n in assigned), None)
    return None


def call_sites(func, labels: dict, assigned: dict | None = None) -> dict:
    """Source lines of ``func`` holding a call of a name in ``labels``, mapped to that name's label.

    A call ``a.b.name(...)`` or ``name(...)`` counts, and so does an assignment
    to a variable named in ``assigned`` (e.g. releasing an iterator); an
    expression spread over several lines maps each of them.
    """
    lines, first = inspect.getsourcelines(func)
    tree = ast.parse(textwrap.dedent("".join(lines)))
    found = {}
    for node in ast.walk(tree):
        label = _label(node, labels, assigned or {})
        if label is not None:
            for line in range(node.lineno, (node.end_lineno or node.lineno) + 1):
                found.setdefault(first - 1 + line, label)
    return found


def harness_call_sites() -> dict:
    """Line of :func:`perfsuite.core.phases.time_staged_epoch` -> the phase whose call is on it.

    Releasing the batch iterator (``iterator = None``) is ``batching`` too, as
    the timer charges it.
    """
    return call_sites(phases.time_staged_epoch, HARNESS_CALLS, {"iterator": "batching"})


def epoch_call_sites() -> dict:
    """Lines of :func:`perfsuite.core.phases.time_epoch` inside the epoch's wall-clock window."""
    return call_sites(phases.time_epoch, EPOCH_CALLS)


@dataclass
class Attribution:
    """The rules that give a stack its phase (see the module's documentation)."""

    harness_lines: dict = field(default_factory=harness_call_sites)
    epoch_lines: dict = field(default_factory=epoch_call_sites)

    def phase_of(self, frames) -> str | None:
        """The phase (or ``other``) of one stack, ``None`` when it lies outside every epoch."""
        found = self.locate(frames)
        return None if found is None else found[0]

    def locate(self, frames) -> tuple | None:
        """``(phase, index of the first frame that ran inside the phase)`` of one stack; ``None`` outside epochs.

        The frames from that index on are what the phase ran: below the
        harness's own phase frame (``forward``…) of a staged loop, below the
        ``phase_<phase>`` frame of a fused one, below the epoch frame for ``other``.
        """
        start = self._epoch_frame(frames)
        if start is None:
            return None
        inner = start + 1
        harness = _last_index(frames[inner:], HARNESS_FUNCTION)
        if harness is not None:
            at = inner + harness
            phase = self._staged_phase(frames[at], frames[at + 1 : at + 2])
            if phase == OTHER:
                return OTHER, inner
            own_frame = at + 1 < len(frames) and frames[at + 1].name == phase
            return phase, at + 2 if own_frame else at + 1
        for index in range(inner, len(frames)):
            match = NATIVE_PHASE.search(frames[index].name)
            if match:
                return match.group(1), index + 1
        return OTHER, inner

    def _epoch_frame(self, frames) -> int | None:
        for index, frame in enumerate(frames):
            if frame.function == EPOCH_FUNCTION and (frame.line is None or frame.line in self.epoch_lines):
                return index
        return None

    def _staged_phase(self, harness: Frame, callee) -> str:
        if harness.line is not None:
            return self.harness_lines.get(harness.line, OTHER)
        if callee:
            return METHOD_PHASES.get(callee[0].function, OTHER)
        return OTHER

    @classmethod
    def from_dict(cls, payload: dict) -> "Attribution":
        """The rules :meth:`to_dict` described (e.g. as a worker process saw its harness)."""
        return cls(
            {int(k): v for k, v in payload["harness_lines"].items()},
            {int(line): "epoch" for line in payload["epoch_lines"]},
        )

    def to_dict(self) -> dict:
        """The line maps, for the record of how shares were computed."""
        return {
            "harness_lines": {str(k): v for k, v in sorted(self.harness_lines.items())},
            "epoch_lines": sorted(self.epoch_lines),
        }


def _last_index(frames, name: str) -> int | None:
    for index in range(len(frames) - 1, -1, -1):
        if frames[index].function == name:
            return index
    return None


@dataclass
class SampleCounts:
    """Samples per phase (``PHASES`` and ``other``) inside epochs, and how many fell outside."""

    counts: dict
    outside: int = 0

    @property
    def inside(self) -> int:
        """Samples inside measured epochs."""
        return sum(self.counts.values())

    def shares(self) -> dict:
        """Fraction of the in-epoch samples per phase and ``other`` (empty with no samples)."""
        total = self.inside
        return {name: n / total for name, n in self.counts.items()} if total else {}


def count_samples(stacks, attribution: Attribution | None = None) -> SampleCounts:
    """Attribute every ``(frames, count)`` of ``stacks`` to a phase and add up the samples."""
    attribution = attribution or Attribution()
    counts = dict.fromkeys(PHASES + (OTHER,), 0)
    outside = 0
    for frames, count in stacks:
        phase = attribution.phase_of(frames)
        if phase is None:
            outside += count
        else:
            counts[phase] += count
    return SampleCounts(counts, outside)


def top_frames(stacks, attribution: Attribution | None = None, top: int = 10) -> dict:
    """Per phase, the innermost frames holding the most samples (self samples), as ``[frame, share of phase]``.

    With ``--native`` the innermost frame is C/C++ code, so this answers
    *what* a phase spends its time in (e.g. which kernels under ``batching``).
    """
    attribution = attribution or Attribution()
    per_phase = {}
    for frames, count in stacks:
        phase = attribution.phase_of(frames)
        if phase is not None:
            leaf = frames[-1]
            label = f"{leaf.name} ({leaf.file})" if leaf.file else leaf.name
            bucket = per_phase.setdefault(phase, {})
            bucket[label] = bucket.get(label, 0) + count
    found = {}
    for phase, counts in per_phase.items():
        total = sum(counts.values())
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
        found[phase] = [[label, n / total] for label, n in ranked]
    return found


def timer_shares(records) -> dict:
    """Timer share of each phase and ``other`` in epoch records (``wall`` and per-step ``phases``)."""
    wall = sum(r.wall for r in records)
    if wall <= 0:
        return {}
    totals = [sum(r.phase_totals[p] for r in records) for p in PHASES]
    shares = {p: t / wall for p, t in zip(PHASES, totals, strict=True)}
    shares[OTHER] = 1.0 - sum(totals) / wall
    return shares


def agreement(sampled: dict, timers: dict) -> list:
    """Rows ``{phase, sampled, timer, difference_pp}`` for the five phases and ``other``."""
    rows = []
    for phase in PHASES + (OTHER,):
        s, t = sampled.get(phase), timers.get(phase)
        diff = 100.0 * (s - t) if s is not None and t is not None else None
        rows.append({"phase": phase, "sampled": s, "timer": t, "difference_pp": diff})
    return rows
