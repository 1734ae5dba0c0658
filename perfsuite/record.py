"""Phase recording for your own training loop.

Put the scopes in your script; they cost next to nothing while recording is
off, so they can stay there::

    from perfsuite import record

    for epoch in range(epochs):
        with record.epoch():
            for x, y in record.batches(loader):   # each request timed as `batching`
                with record.phase("to_device"):  # a phase you name
                    x = x.to(device)
                with record.phase("forward"):
                    logits = model(x)
                with record.phase("loss"):
                    loss = F.cross_entropy(logits, y)
                with record.phase("backward"):
                    loss.backward()
                with record.phase("step"):
                    opt.step()
                    opt.zero_grad()
                record.loss(loss)                 # optional: read after the epoch, never inside timing

``record.phase(name)`` hands out one scope per name for the life of the
process, and :func:`start` / :func:`stop` switch it in place, so a loop whose
step is a millisecond or less can fetch its scopes once, before the loop
(``forward = record.phase("forward")``, then ``with forward:``), and skip a
lookup per phase per step. ``@record.phase("step")`` times every call of a function. ``perfsuite profile
-- python train.py ARGS…`` runs the script with recording on (it sets
``PERFSUITE_RECORD`` to the file the epochs go to) and writes a run folder and
report; :func:`start` / :func:`stop` switch it on and off in code (the epochs
then stay in the returned recorder's ``epochs``).

The five standard phases (``batching``, ``forward``, ``loss``, ``backward``,
``step``) are the columns of ``epochs.csv``; any other name is a user phase,
recorded per step in ``phases.csv`` and counted inside ``other`` (wall minus the
five), shown as a breakdown of ``other`` in the summary and report. Phases do
not nest or overlap (:class:`RecordingError`); a phase outside an epoch warns
once and is not recorded (:class:`RecordingWarning`). See ``docs/profile.md``.

This module imports neither torch nor pandas.
"""

import os

from perfsuite.core.recording import (
    ENV,
    GATE_ENV,
    RESERVED,
    STANDARD,
    Recorder,
    RecordingError,
    RecordingWarning,
    active,
    batches,
    epoch,
    loss,
    phase,
    start,
    stop,
)

__all__ = [
    "ENV",
    "GATE_ENV",
    "RESERVED",
    "STANDARD",
    "Recorder",
    "RecordingError",
    "RecordingWarning",
    "active",
    "batches",
    "epoch",
    "loss",
    "phase",
    "start",
    "stop",
]

if os.environ.get(ENV) and active() is None:
    _gate = os.environ.get(GATE_ENV)
    start(os.environ[ENV], gate=int(_gate) if _gate and _gate.isdigit() else None)
