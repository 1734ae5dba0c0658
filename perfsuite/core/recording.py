"""Phase recording for any training loop: the engine behind :mod:`perfsuite.record`.

A :class:`Recorder` times the phases a user's own loop marks — an epoch
scope, a batch-iterator wrapper that times ``batching``, and phase scopes for
``forward``, ``loss``, ``backward``, ``step`` and phases the user names — with
an injected clock, and hands every finished epoch to a sink as a plain dict
(``perfsuite profile`` writes them to an append-only JSON-lines file the
parent reads epoch by epoch). Nothing here imports torch, numpy or pandas.

Steps. Inside an epoch, each batch :meth:`Recorder.batches` hands out opens a
step; creating the iterator is charged to the first step's ``batching`` and
the final, empty request to the last step's, as the harness does
(:func:`perfsuite.core.phases.time_staged_epoch`). A loop without the batch
wrapper opens a step whenever one of the five standard phases starts again
after it already ran in the current step. A user-named phase never opens a
step: its time is charged to the current step (step 0 before the first batch).

Rules. Phases do not nest and do not overlap: opening a phase (or an epoch,
or asking for a batch) while another phase is open raises
:class:`RecordingError`, as does closing a phase that is not the open one or
opening an epoch inside an epoch. A phase or a batch iterator outside any
epoch is not recorded and warns once per name (:class:`RecordingWarning`):
an evaluation loop after training may go on. An epoch left by an exception is
not finished: it is dropped, and the epochs finished before it are kept.
"""

import functools
import json
import math
import os
import re
import sys
import warnings

from perfsuite.core.clock import monotonic

ENV = "PERFSUITE_RECORD"
"""Set by ``perfsuite profile``: the file (JSON lines) a script's process appends its finished epochs to."""
GATE_ENV = "PERFSUITE_RECORD_GATE"
"""Set by ``perfsuite profile`` when it gates a script: the descriptor to wait on before each epoch."""
STANDARD = ("batching", "forward", "loss", "backward", "step")
"""The five standard phases, in the order of their ``epochs.csv`` columns (equal to ``PHASES``)."""
RESERVED = ("other", "comm", "wall", "epoch")
"""Names a user phase may not take: ``other`` and the sub-phase ``comm`` have a meaning in the run folder."""
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}\Z")
"""A phase name: a letter or underscore, then up to 63 letters, digits, ``_ . : -``."""
_INDEX = {name: i for i, name in enumerate(STANDARD)}


class RecordingError(RuntimeError):
    """Phases used in a way that would make the figures wrong (nested, overlapping, epoch in epoch)."""


class RecordingWarning(RuntimeWarning):
    """Something was not recorded, but the loop can go on (a phase outside an epoch)."""


def check_name(name) -> str:
    """``name`` if it can name a phase; :class:`ValueError` otherwise."""
    if not isinstance(name, str) or not NAME.match(name):
        raise ValueError(f"phase name {name!r}: use a letter or _ then letters, digits, _ . : - (at most 64)")
    if name in RESERVED:
        raise ValueError(f"phase name {name!r} is reserved ({', '.join(RESERVED)} have a meaning in the run folder)")
    return name


class _ScopeSlots:
    """What a phase's scope holds, on or off: the layout both scope classes share.

    Sharing it lets :func:`start` and :func:`stop` switch the scopes
    :func:`phase` handed out between :class:`_NullScope` and :class:`_Scope`
    in place (``__class__`` assignment), so a scope fetched once before the
    loop stays right whether recording is on or off.
    """

    __slots__ = ("recorder", "name", "index")

    def __init__(self, name: str, recorder=None):
        self.recorder = recorder
        self.name = name
        self.index = _INDEX.get(name, -1)

    def __call__(self, fn):
        return _decorate(self.name, fn)


class _Scope(_ScopeSlots):
    """The context manager (and decorator) of one phase name while recording is on."""

    __slots__ = ()

    def __enter__(self):
        recorder = self.recorder
        if recorder._open is not None or recorder._epoch is None:
            recorder._begin(self)  # the error, or the warning outside an epoch
            return
        recorder._open = self
        recorder._t0 = recorder.clock()

    def __exit__(self, kind, value, tb):
        recorder = self.recorder
        t1 = recorder.clock()
        if recorder._open is self and recorder._in_step and self.index >= 0:
            recorder._open = None  # the common case: a standard phase in a step opened by a batch
            recorder._row[self.index] += t1 - recorder._t0
            return False
        recorder._end(self, t1)
        return False


class _NullScope(_ScopeSlots):
    """What :func:`phase` returns while recording is off: entering and leaving do nothing.

    ``__enter__`` and ``__exit__`` are C callables, not Python methods, which
    halves what a ``with`` costs: ``NoneType()`` returns ``None`` and
    ``"".format(kind, value, tb)`` returns ``""``, a false value, so an
    exception raised in the block goes on as it would without the scope.
    """

    __slots__ = ()
    __enter__ = type(None)
    __exit__ = "".format


class _NullEpoch:
    """What :func:`epoch` returns while recording is off (the same C-callable trick as :class:`_NullScope`)."""

    __slots__ = ()
    __enter__ = type(None)
    __exit__ = "".format


_NULL_EPOCH = _NullEpoch()
_active = None


class _Scopes(dict):
    """The scopes :func:`phase` hands out, by name, one per name for the life of the process.

    A name seen for the first time is checked (:func:`check_name`) and its
    scope made and kept: a :class:`_NullScope` while recording is off, a
    :class:`_Scope` of the active recorder while on. :func:`start` and
    :func:`stop` switch every kept scope in place (:meth:`switch`).
    """

    __slots__ = ()

    def __missing__(self, name):
        recorder = _active
        found = self[name] = (_NullScope if recorder is None else _Scope)(check_name(name), recorder)
        return found

    def switch(self, recorder) -> None:
        """Make every kept scope time for ``recorder``, or do nothing when it is ``None``.

        Switching off keeps each scope's last recorder: a ``with`` whose block
        called :func:`stop` has already bound the timing ``__exit__``, which
        then closes the phase in the recorder that opened it.
        """
        kind = _NullScope if recorder is None else _Scope
        for scope in self.values():
            if recorder is not None:
                scope.recorder = recorder
            scope.__class__ = kind


_SCOPES = _Scopes()


def _decorate(name: str, fn):
    """``fn`` timed as phase ``name`` on each call, whether recording is on is decided at call time."""

    @functools.wraps(fn)
    def timed(*args, **kwargs):
        recorder = _active
        if recorder is None:
            return fn(*args, **kwargs)
        with recorder.scope(name):
            return fn(*args, **kwargs)

    return timed


class _EpochScope:
    __slots__ = ("recorder",)

    def __init__(self, recorder):
        self.recorder = recorder

    def __enter__(self):
        self.recorder._begin_epoch()

    def __exit__(self, kind, value, tb):
        self.recorder._end_epoch(finished=kind is None)
        return False


class Recorder:
    """Times the phases of a user's loop and hands each finished epoch to ``sink``.

    ``sink(epoch)`` receives a dict: ``epoch`` (0, 1, …: the epochs opened, a dropped one included), ``wall``,
    ``phases`` (one list of the five :data:`STANDARD` phases' seconds per
    step), ``losses`` (one float per step, NaN where none was given; empty
    when none was), ``user`` (``{name: [[step, seconds], …]}``). Without a sink
    the epochs are kept in :attr:`epochs`. ``on_begin(number)`` (optional) is
    called before an epoch's clock starts, outside every timed region.
    """

    __slots__ = (
        "clock",
        "sink",
        "on_begin",
        "epochs",
        "finished",
        "opened",
        "_scopes",
        "_warned",
        "_epoch",
        "_open",
        "_in_step",
        "_t0",
        "_epoch_t0",
        "_rows",
        "_row",
        "_seen",
        "_by_batches",
        "_user",
        "_losses",
    )
    # slots, not a __dict__: a scope reads and writes these between two tensor operations, where every cache
    # line it touches is cold; a slot sits in the object itself

    def __init__(self, sink=None, clock=monotonic, on_begin=None):
        self.clock = clock
        self.sink = sink
        self.on_begin = on_begin
        self.epochs = []
        self.finished = 0
        self.opened = 0
        self._scopes = {}
        self._warned = set()
        self._epoch = None  # the open epoch's number
        self._open = None  # the open phase's scope
        self._in_step = False  # a batch of :meth:`batches` opened the current step (the fast path of a scope)
        self._t0 = 0.0  # the open phase's start
        self._epoch_t0 = 0.0
        self._rows = self._row = self._user = self._losses = None  # the open epoch's steps, losses, user phases
        self._seen = 0
        self._by_batches = False

    # --- scopes -------------------------------------------------------------------------------------
    def scope(self, name: str) -> _Scope:
        """The (cached) context manager of phase ``name``; a bad name raises :class:`ValueError`."""
        found = self._scopes.get(name)
        if found is None:
            found = self._scopes[name] = _Scope(check_name(name), self)
        return found

    def epoch(self) -> _EpochScope:
        """The epoch scope: ``with recorder.epoch(): …``."""
        return _EpochScope(self)

    def _warn(self, what: str, text: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            warnings.warn(text, RecordingWarning, stacklevel=4)

    def _busy(self, what: str) -> None:
        open_ = self._open
        raise RecordingError(
            f"perfsuite.record: {what} while phase {open_.name!r} is open: phases do not nest or overlap "
            "(close it first, or time the enclosing part as one phase)"
        )

    def _begin(self, scope: _Scope) -> None:
        if self._open is not None:
            self._busy(f"phase {scope.name!r} opened")
        if self._epoch is None:
            self._warn(scope.name, f"perfsuite.record: phase {scope.name!r} outside an epoch is not recorded")
            return
        self._open = scope
        self._t0 = self.clock()

    def _end(self, scope: _Scope, t1: float) -> None:
        open_ = self._open
        if open_ is not scope:
            if open_ is None:
                return  # its start was outside an epoch (already warned) or the epoch was dropped
            raise RecordingError(
                f"perfsuite.record: phase {scope.name!r} closed while phase {open_.name!r} is open (overlapping phases)"
            )
        self._open = None
        seconds = t1 - self._t0
        index = scope.index
        if index >= 0:
            if self._by_batches:
                if not self._rows:
                    self._new_step()
            else:
                bit = 1 << index
                if not self._rows or self._seen & bit:
                    self._new_step()
                self._seen |= bit
            self._row[index] += seconds
        else:
            step = len(self._rows) - 1 if self._rows else 0
            per_step = self._user.get(scope.name)
            if per_step is None:
                per_step = self._user[scope.name] = {}
            per_step[step] = per_step.get(step, 0.0) + seconds

    def _new_step(self) -> None:
        self._row = [0.0, 0.0, 0.0, 0.0, 0.0]
        self._rows.append(self._row)
        self._seen = 0

    # --- batches ------------------------------------------------------------------------------------
    def batches(self, iterable):
        """Yield ``iterable``'s items, timing each request as ``batching`` and opening a step per item."""
        if self._epoch is None:
            self._warn("batching", "perfsuite.record: batches outside an epoch are not recorded")
            yield from iterable
            return
        number = self._epoch
        clock = self.clock
        if self._open is not None:
            self._busy("a batch iterator created")
        self._by_batches = True
        t0 = clock()
        iterator = iter(iterable)
        pending = clock() - t0
        rows = self._rows
        while True:
            if self._epoch != number:  # the epoch ended while the loop was suspended: go on untimed
                yield from iterator
                return
            if self._open is not None:
                self._busy("a batch requested")
            t0 = clock()
            try:
                item = next(iterator)
            except StopIteration:
                iterator = None
                seconds = pending + clock() - t0
                if not rows:
                    self._new_step()
                self._row[0] += seconds
                return
            t1 = clock()
            self._row = row = [pending + t1 - t0, 0.0, 0.0, 0.0, 0.0]  # a new step (see _new_step)
            rows.append(row)
            self._seen = 0
            self._in_step = True
            pending = 0.0
            yield item

    # --- losses -------------------------------------------------------------------------------------
    def loss(self, value) -> None:
        """Keep ``value`` (a tensor or a number) as the current step's loss (:func:`kept`); read after the epoch."""
        if self._epoch is None:
            return
        if type(value) in _TENSOR_TYPES and value.is_cpu and value.numel() == 1:
            value = value.item()  # kept()'s most common case, inlined: one Python frame less per step
        else:
            value = kept(value)
        rows = self._rows
        self._losses[len(rows) - 1 if rows else 0] = value

    # --- epochs -------------------------------------------------------------------------------------
    def _begin_epoch(self) -> None:
        if self._open is not None:
            self._busy("an epoch opened")
        if self._epoch is not None:
            raise RecordingError("perfsuite.record: an epoch opened inside an epoch (epochs do not nest)")
        number = self.opened
        self.opened += 1
        if self.on_begin is not None:
            self.on_begin(number)
        self._rows = []
        self._row = None
        self._seen = 0
        self._by_batches = False
        self._in_step = False
        self._user = {}
        self._losses = {}
        self._epoch = number
        self._epoch_t0 = self.clock()

    def _end_epoch(self, finished: bool) -> None:
        wall = self.clock() - self._epoch_t0
        number, open_ = self._epoch, self._open
        if number is None:
            return
        self._epoch = None
        self._open = None
        self._in_step = False
        if not finished:
            return  # left by an exception: not a finished epoch, drop it
        if open_ is not None:
            raise RecordingError(f"perfsuite.record: epoch {number} ended inside phase {open_.name!r}")
        rows = self._rows
        if not rows:
            self._warn(f"empty-{number}", f"perfsuite.record: epoch {number} timed no step; it is not recorded")
            self.finished += 1
            return
        losses = _floats(self._losses, len(rows)) if self._losses else []
        record = {
            "epoch": number,
            "wall": wall,
            "phases": rows,
            "losses": losses,
            "user": {name: sorted([step, sec] for step, sec in steps.items()) for name, steps in self._user.items()},
        }
        self._rows = self._user = self._losses = None
        self.finished += 1
        if self.sink is None:
            self.epochs.append(record)
        else:
            self.sink(record)


_TENSOR_TYPES = set()
"""Classes already seen to be torch tensors (the fast path of :func:`kept`)."""


def kept(value):
    """What a step keeps of its loss ``value`` until the epoch ends: its number, an alias of its values, or itself.

    A one-element tensor on the CPU is read at once (``.item()``): nothing
    waits for a device there, and in a training loop reading the number costs
    less than keeping an alias tensor per step. Any other tensor is kept as its
    ``.data``, an alias of its values with no autograd history (keeping it does
    not keep the step's graph alive, and it registers no view with autograd as
    ``detach()`` does); it is read after the epoch's clock stopped, so a loop on
    an accelerator never waits for the device. Any other object with a
    ``detach`` method is detached; anything else is kept as it is.
    """
    if type(value) not in _TENSOR_TYPES:
        torch = sys.modules.get("torch")
        if torch is None or not isinstance(value, torch.Tensor):
            detach = getattr(value, "detach", None)
            return value if detach is None else detach()
        _TENSOR_TYPES.add(type(value))
    if value.is_cpu and value.numel() == 1:
        return value.item()
    return value.data


def _floats(given: dict, steps: int) -> list:
    """One float per step (NaN where no loss was given), read after the epoch's clock stopped.

    Kept tensors (off the CPU: :func:`kept`) are stacked and read at once when
    every value is one (one copy, not one ``.item()`` per step); anything else
    is read with ``float``.
    """
    torch = sys.modules.get("torch")
    values = list(given.values())
    if torch is not None and all(isinstance(v, torch.Tensor) and v.numel() == 1 for v in values):
        read = dict(zip(given, torch.stack([v.detach().reshape(()) for v in values]).double().tolist(), strict=True))
    else:
        read = {step: _number(v) for step, v in given.items()}
    return [read.get(step, math.nan) for step in range(steps)]


def _number(value) -> float:
    """A loss as a float (NaN when none was given); a tensor is read here, after the epoch's clock stopped."""
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


class FileSink:
    """Appends each epoch as one JSON line to ``path`` and flushes it, so a crash keeps finished epochs.

    It also writes ``{"hello": …}`` when recording starts and ``{"begin": n}``
    before each epoch's clock starts, so the reader can tell a script that
    never opened an epoch from one that failed inside its first.
    """

    def __init__(self, path, gate: int | None = None):
        self.fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the process's life
        self.gate = gate
        self._line({"hello": 1, "gated": gate is not None})

    def _line(self, payload: dict) -> None:
        self.fh.write(json.dumps(payload, allow_nan=True) + "\n")
        self.fh.flush()

    def begin(self, number: int) -> None:
        """Say epoch ``number`` is about to start; with a gate, wait until the parent lets it (alternation)."""
        self._line({"begin": number})
        if self.gate is not None:
            try:
                go = os.read(self.gate, 1)
            except OSError:
                go = b""
            if not go:  # the parent closed the gate (or is gone): run freely from now on
                self.gate = None

    def __call__(self, record: dict) -> None:
        self._line(record)

    def close(self) -> None:
        self.fh.close()


# --- the module-level switch ----------------------------------------------------------------------------


def start(to=None, clock=monotonic, gate: int | None = None) -> Recorder:
    """Switch recording on: epochs go to the JSON-lines file ``to``, or stay in the returned recorder's ``epochs``.

    ``gate`` (a file descriptor, set by ``perfsuite profile`` when it alternates
    two scripts) is read for one byte before each epoch starts.
    """
    global _active
    if _active is not None:
        raise RecordingError("perfsuite.record: recording is already on (call stop() first)")
    if to is None:
        recorder = Recorder(clock=clock)
    else:
        sink = FileSink(to, gate)
        recorder = Recorder(sink, clock=clock, on_begin=sink.begin)
    _active = recorder
    _SCOPES.switch(recorder)
    return recorder


def stop():
    """Switch recording off; returns the recorder that was on (``None`` when none was)."""
    global _active
    recorder, _active = _active, None
    _SCOPES.switch(None)
    if recorder is not None and isinstance(recorder.sink, FileSink):
        recorder.sink.close()
    return recorder


def active():
    """The recorder that is on, or ``None``."""
    return _active


def epoch():
    """The epoch scope (``with record.epoch():``); a shared null context while recording is off."""
    recorder = _active
    if recorder is None:
        return _NULL_EPOCH
    return _EpochScope(recorder)


phase = functools.partial(dict.__getitem__, _SCOPES)
phase.__doc__ = """``phase(name)``: the scope of phase ``name``, a context manager and decorator (null while off).

A bad name raises :class:`ValueError` the first time it is used. ``phase``
is the scopes dict's own lookup (a C call, no Python frame), because a loop
calls it once per phase per step, and in a training loop every Python frame
costs several times what it costs in a tight benchmark (the interpreter's
code and data are cold between two tensor operations).
"""


def batches(iterable):
    """``iterable`` with each batch request timed as ``batching`` (``iterable`` itself while recording is off)."""
    recorder = _active
    if recorder is None:
        return iterable
    return recorder.batches(iterable)


def loss(value) -> None:
    """Record ``value`` (a tensor or a number) as the current step's loss; nothing while recording is off.

    A tensor is kept as an alias of its values without its graph (:func:`kept`;
    only while recording is on, so the off state costs no tensor operation) and
    read after the epoch's clock stops.
    """
    recorder = _active
    if recorder is None or recorder._epoch is None:
        return
    # Recorder.loss's body, inlined for the active recorder: one Python frame less per step
    if type(value) in _TENSOR_TYPES and value.is_cpu and value.numel() == 1:
        value = value.item()
    else:
        value = kept(value)
    rows = recorder._rows
    recorder._losses[len(rows) - 1 if rows else 0] = value
