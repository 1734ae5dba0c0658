"""The run folder: raw samples appended as they are measured, metadata, summary.

``reports/<run-id>/`` holds

* ``phases.csv``  — impl, round, epoch, step, phase, seconds, rank (one row per phase of each step);
* ``steps.csv``   — impl, round, epoch, step, loss, rank;
* ``epochs.csv``  — one row per epoch (and rank): warm-up flag, wall, per-phase and other seconds,
  loss, accuracy, sub-phase seconds (``comm_seconds``), rank, facts (a JSON object of what the
  implementation reported about the epoch, e.g. ``{"graphs_compiled": 0}``; empty when nothing);
* ``meta.json``   — schema version, machine, software, workload, dataset, implementations, status;
* ``summary.json``— statistics computed from the CSV files (see :mod:`perfsuite.summary`).

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

import csv
import json
import math
import os
import secrets
import time
from pathlib import Path

from perfsuite.errors import UsageError
from perfsuite.interface import OTHER, PHASES, SUBPHASES

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


def new_run_id() -> str:
    """A unique, sortable run id: UTC time plus random suffix."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def _strict(value):
    """``value`` with NaN and infinities replaced by ``None``, so the JSON is standard."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def write_json(path: Path, payload: dict) -> None:
    """Write standard JSON (NaN becomes null) atomically: temporary file, fsync, rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        json.dump(_strict(payload), fh, indent=2, sort_keys=False, default=str, allow_nan=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def create_run_dir(out=None, reports="reports") -> Path:
    """Make a new run folder: ``out`` if given (must be new or empty), else ``reports/<run-id>``."""
    if out is not None:
        folder = Path(out)
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise UsageError(f"--out {folder}: exists and is not an empty folder")
    else:
        folder = Path(reports) / new_run_id()
    try:
        folder.mkdir(parents=True, exist_ok=out is not None)
        probe = folder / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"--out {folder}: cannot write there ({exc.strerror})") from exc
    return folder


def point_latest(folder: Path) -> None:
    """Make ``<parent>/latest`` a symlink to ``folder`` (replaced atomically)."""
    link = folder.parent / "latest"
    tmp = folder.parent / f".latest.{os.getpid()}.tmp"
    if tmp.is_symlink():
        tmp.unlink()
    tmp.symlink_to(folder.name)
    os.replace(tmp, link)


class ResultsWriter:
    """Appends measured epochs to a run folder as they arrive."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._files = {}
        for name, columns in WRITTEN_COLUMNS.items():
            fh = open(self.folder / name, "a", newline="")
            writer = csv.writer(fh)
            if fh.tell() == 0:
                writer.writerow(columns)
            self._files[name] = (fh, writer)

    def write_meta(self, meta: dict) -> None:
        """Write ``meta.json`` (schema version added)."""
        write_json(self.folder / "meta.json", {"schema_version": SCHEMA_VERSION, **meta})

    def append_epoch(self, impl: str, record: dict) -> dict:
        """Append one epoch's raw samples (of one rank) and its epoch row; flush them to disk. Returns the row."""
        r, e, rank = record["round"], record["epoch"], record.get(RANK, 0)
        phases = record["phases"]
        subphases = record.get("subphases") or {}
        _, pw = self._files["phases.csv"]
        for step, row in enumerate(phases):
            pw.writerows((impl, r, e, step, name, repr(sec), rank) for name, sec in zip(PHASES, row))
            pw.writerows((impl, r, e, step, name, repr(float(values[step])), rank) for name, values in subphases.items())
        _, sw = self._files["steps.csv"]
        sw.writerows((impl, r, e, step, repr(loss), rank) for step, loss in enumerate(record["losses"]))
        row = epoch_row(impl, record)
        _, ew = self._files["epochs.csv"]
        ew.writerow(_cell(row[c]) for c in WRITTEN_COLUMNS["epochs.csv"])
        for fh, _ in self._files.values():
            fh.flush()
            os.fsync(fh.fileno())
        return row

    def close(self) -> None:
        for fh, _ in self._files.values():
            fh.close()


def _cell(value):
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else value


def facts_json(facts) -> str:
    """An epoch's facts as compact JSON (``None`` when there are none); non-finite numbers become null."""
    if not facts:
        return None
    clean = {str(k): (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in facts.items()
             if v is None or isinstance(v, (bool, int, float, str))}
    return json.dumps(clean, sort_keys=True, allow_nan=False) if clean else None


def epoch_row(impl: str, record: dict) -> dict:
    """The ``epochs.csv`` row of one epoch record (sub-phase columns ``None`` when not measured)."""
    phases, losses, wall = record["phases"], record["losses"], record["wall"]
    totals = [sum(col) for col in zip(*phases)] if phases else [0.0] * len(PHASES)
    subphases = record.get("subphases") or {}
    return {
        "impl": impl, "round": record["round"], "epoch": record["epoch"], "warmup": int(record["warmup"]),
        "steps": len(phases), "wall_seconds": wall,
        **{f"{p}_seconds": t for p, t in zip(PHASES, totals)},
        f"{OTHER}_seconds": wall - sum(totals),
        "coverage": sum(totals) / wall if wall > 0 else float("nan"),
        "mean_loss": sum(losses) / len(losses) if losses else float("nan"),
        "final_loss": losses[-1] if losses else float("nan"),
        "train_accuracy": record["train_accuracy"],
        "test_accuracy": record["test_accuracy"],
        **{f"{name}_seconds": (float(sum(subphases[name])) if name in subphases else None) for name in SUBPHASES},
        RANK: record.get(RANK, 0),
        FACTS: facts_json(record.get("facts")),
    }


def with_rank(frame):
    """``frame`` (a CSV of any schema) with a ``rank`` column: schema-1 rows are rank 0."""
    if RANK not in frame.columns:
        frame = frame.assign(**{RANK: 0})
    return frame


def read_meta(folder) -> dict:
    """Read and check ``meta.json`` of a run folder."""
    folder = Path(folder)
    path = folder / "meta.json"
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such run folder")
    if not path.is_file():
        raise UsageError(f"{folder}: not a perfsuite run folder (no meta.json)")
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: unreadable or truncated JSON ({exc})") from exc
    version = meta.get("schema_version") if isinstance(meta, dict) else None
    if not isinstance(version, int):
        raise UsageError(f"{path}: has no schema_version")
    if version > SCHEMA_VERSION:
        raise UsageError(f"{path}: schema version {version} is newer than this perfsuite reads ({SCHEMA_VERSION}); upgrade perfsuite")
    return meta
