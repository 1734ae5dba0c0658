"""The run folder's files and columns, by schema version.

``reports/<run-id>/`` holds

* ``phases.csv``  — impl, round, epoch, step, phase, seconds, rank (one row per phase of each step);
* ``steps.csv``   — impl, round, epoch, step, loss, rank;
* ``epochs.csv``  — one row per epoch (and rank): warm-up flag, wall, per-phase and other seconds,
  loss, accuracy, sub-phase seconds (``comm_seconds``), rank, facts (a JSON object of what the
  implementation reported about the epoch, e.g. ``{"graphs_compiled": 0}``; empty when nothing);
* ``meta.json``   — schema version, machine, software, workload, dataset, implementations, status;
* ``summary.json``— statistics computed from the CSV files (see :mod:`perfsuite.analysis.summary`).

Rows are appended and flushed to disk after every epoch, so an interrupted
run keeps every epoch it finished. JSON files are replaced atomically.

Schema 2 added, at the end of the rows so readers that select columns by
name keep working: a ``rank`` column in the three CSV files (0 for
single-process implementations; a multi-rank implementation writes one set of
rows per rank), ``phase`` rows ``comm`` in ``phases.csv`` for implementations
that measure it (a sub-interval of ``backward``, already counted in it), and
``comm_seconds`` in ``epochs.csv`` (empty when not measured), then the
optional ``facts`` column (folders written before it simply lack it). Schema-1
folders have none of these; :func:`with_rank` reads them as rank 0.
"""

from perfsuite.core.interface import OTHER, PHASES, SUBPHASES

SCHEMA_VERSION = 2
RANK = "rank"
PHASES_COLUMNS = ["impl", "round", "epoch", "step", "phase", "seconds"]
STEPS_COLUMNS = ["impl", "round", "epoch", "step", "loss"]
EPOCHS_COLUMNS = (
    ["impl", "round", "epoch", "warmup", "steps", "wall_seconds"]
    + [f"{p}_seconds" for p in PHASES]
    + [f"{OTHER}_seconds", "coverage", "mean_loss", "final_loss", "train_accuracy", "test_accuracy"]
)
"""The columns every schema has (what readers may require); schema 2 writes more, see below."""
SUBPHASE_COLUMNS = [f"{name}_seconds" for name in SUBPHASES]
FACTS = "facts"
"""Optional ``epochs.csv`` column: the epoch's facts as a JSON object (empty when there are none)."""
WRITTEN_COLUMNS = {
    "phases.csv": PHASES_COLUMNS + [RANK],
    "steps.csv": STEPS_COLUMNS + [RANK],
    "epochs.csv": EPOCHS_COLUMNS + SUBPHASE_COLUMNS + [RANK, FACTS],
}
FILES = ("phases.csv", "steps.csv", "epochs.csv", "meta.json", "summary.json")
SWEEP_FILE = "sweep.json"
"""The file that marks a sweep folder and lists its points (see :mod:`perfsuite.measure.sweep`)."""
SWEEP_SCHEMA_VERSION = 1


def with_rank(frame):
    """``frame`` (a CSV of any schema) with a ``rank`` column: schema-1 rows are rank 0."""
    if RANK not in frame.columns:
        frame = frame.assign(**{RANK: 0})
    return frame
