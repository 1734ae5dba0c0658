"""The run folder's one writer: epochs appended as they are measured, JSON replaced atomically.

Rows are appended and flushed to disk after every epoch, so an interrupted
run keeps every epoch it finished. JSON and text files are replaced
atomically (temporary file, fsync, rename). The files and their columns are
described in :mod:`perfsuite.results.schema`.
"""

import contextlib
import csv
import json
import math
import os
import secrets
import time
from pathlib import Path

from perfsuite.core.errors import UsageError
from perfsuite.core.interface import PHASES
from perfsuite.results.record import EpochRecord
from perfsuite.results.schema import SCHEMA_VERSION, SIDE_FILES, WRITTEN_COLUMNS


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


def write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically (temporary file, fsync, rename); one-line error naming it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write it ({exc.strerror})") from exc


def write_json(path: Path, payload: dict) -> None:
    """Write standard JSON (NaN becomes null) atomically (:func:`write_text`)."""
    text = json.dumps(_strict(payload), indent=2, sort_keys=False, default=str, allow_nan=False)
    write_text(path, text + "\n")


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
        self._open = contextlib.ExitStack()
        for name, columns in WRITTEN_COLUMNS.items():
            fh = self._open.enter_context((self.folder / name).open("a", newline=""))
            writer = csv.writer(fh)
            if fh.tell() == 0:
                writer.writerow(columns)
            self._files[name] = (fh, writer)

    def write_meta(self, meta: dict) -> None:
        """Write ``meta.json`` (schema version added)."""
        write_json(self.folder / "meta.json", {"schema_version": SCHEMA_VERSION, **meta})

    def append_epoch(self, impl: str, record: EpochRecord) -> dict:
        """Append one epoch's raw samples (of one rank) and its epoch row; flush them to disk. Returns the row."""
        r, e, rank = record.round, record.epoch, record.rank
        phases = record.phases
        subphases = record.subphases
        user = {}  # step: [(user phase, seconds)], written after the step's five phases
        for name, pairs in record.user_phases.items():
            for step, sec in pairs:
                user.setdefault(int(step), []).append((name, float(sec)))
        _, pw = self._files["phases.csv"]
        for step, row in enumerate(phases):
            pw.writerows((impl, r, e, step, name, repr(sec), rank) for name, sec in zip(PHASES, row, strict=True))
            pw.writerows(
                (impl, r, e, step, name, repr(float(values[step])), rank) for name, values in subphases.items()
            )
            pw.writerows((impl, r, e, step, name, repr(sec), rank) for name, sec in user.get(step, ()))
        _, sw = self._files["steps.csv"]
        sw.writerows((impl, r, e, step, repr(loss), rank) for step, loss in enumerate(record.losses))
        row = record.row(impl)
        _, ew = self._files["epochs.csv"]
        ew.writerow(_cell(row[c]) for c in WRITTEN_COLUMNS["epochs.csv"])
        for fh, _ in self._files.values():
            fh.flush()
            os.fsync(fh.fileno())
        return row

    def append_machine(self, row: dict) -> None:
        """Append one epoch's machine state to ``machine.csv`` (:data:`~perfsuite.results.schema.MACHINE_COLUMNS`)."""
        self._append_side("machine.csv", row)

    def append_calibration(self, row: dict) -> None:
        """Append one pass's probe to ``calibration.csv`` (:data:`~perfsuite.results.schema.CALIBRATION_COLUMNS`)."""
        self._append_side("calibration.csv", row)

    def append_memory(self, name: str, row: dict) -> None:
        """Append one row to a ``memory/`` table (:data:`~perfsuite.results.schema.MEMORY_PHASES`,
        :data:`~perfsuite.results.schema.MEMORY_EPOCHS` or :data:`~perfsuite.results.schema.MEMRAY_PHASES`)."""
        (self.folder / name).parent.mkdir(exist_ok=True)
        self._append_side(name, row)

    def _append_side(self, name: str, row: dict) -> None:
        """Append ``row`` to the side file ``name`` (opened, with its header, on first use) and fsync it."""
        if name not in self._files:
            fh = self._open.enter_context((self.folder / name).open("a", newline=""))
            writer = csv.writer(fh)
            if fh.tell() == 0:
                writer.writerow(SIDE_FILES[name])
            self._files[name] = (fh, writer)
        fh, writer = self._files[name]
        writer.writerow(_side_cell(row.get(column)) for column in SIDE_FILES[name])
        fh.flush()
        os.fsync(fh.fileno())

    def close(self) -> None:
        """Close the CSV files (every row is already on disk)."""
        self._open.close()


def _side_cell(value):
    """A side file's cell: a missing or NaN reading is left empty."""
    return "" if isinstance(value, float) and math.isnan(value) else _cell(value)


def _cell(value):
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else value
