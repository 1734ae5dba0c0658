"""The run folder's one reader: a run folder read back for analysis, with its files checked.

:func:`load_run` reads ``meta.json`` (schema version checked by
:func:`read_meta`) and ``epochs.csv`` at once, and
``phases.csv`` / ``steps.csv`` when first asked for. A missing file, a
missing column, a row cut short (empty key fields) or a non-number where a
number belongs raises :class:`~perfsuite.core.errors.UsageError` naming the file,
so the command line prints one line and exits with status 2.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from perfsuite.core.errors import UsageError
from perfsuite.core.interface import OTHER, PHASES, SUBPHASES
from perfsuite.results.record import EpochRecord
from perfsuite.results.schema import (
    CALIBRATION_COLUMNS,
    EPOCHS_COLUMNS,
    FACTS,
    MACHINE_COLUMNS,
    MEMORY_EPOCHS,
    MEMORY_EPOCHS_COLUMNS,
    MEMORY_PHASES,
    MEMORY_PHASES_COLUMNS,
    MEMRAY_PHASES,
    MEMRAY_PHASES_COLUMNS,
    PHASES_COLUMNS,
    RANK,
    SCHEMA_VERSION,
    STEPS_COLUMNS,
    SWEEP_FILE,
    SWEEP_SCHEMA_VERSION,
    with_rank,
)

ALL_PHASES = PHASES + (OTHER,)
"""The five timed phases plus ``other``, in display order."""

PAIR_KEYS = ["round", "epoch"]
"""Columns that pair epochs of two implementations within one run."""

_EPOCH_KEYS = ["round", "epoch", "warmup", "steps", "wall_seconds"] + [f"{p}_seconds" for p in ALL_PHASES]
_REQUIRED = {  # name: (columns, numeric columns that must be filled, numeric columns that may be NaN)
    "epochs.csv": (EPOCHS_COLUMNS, _EPOCH_KEYS, [c for c in EPOCHS_COLUMNS if c not in _EPOCH_KEYS + ["impl"]]),
    "phases.csv": (PHASES_COLUMNS, ["round", "epoch", "step", "seconds"], []),
    "steps.csv": (STEPS_COLUMNS, ["round", "epoch", "step"], ["loss"]),
    "machine.csv": (MACHINE_COLUMNS, ["round", "epoch"], [c for c in MACHINE_COLUMNS[3:] if c != "note"]),
    "calibration.csv": (CALIBRATION_COLUMNS, ["round", "epoch"], CALIBRATION_COLUMNS[2:-1]),
    MEMORY_PHASES: (MEMORY_PHASES_COLUMNS, MEMORY_PHASES_COLUMNS[3:], []),
    MEMORY_EPOCHS: (MEMORY_EPOCHS_COLUMNS, ["epoch", "steps", "wall_seconds"], MEMORY_EPOCHS_COLUMNS[5:]),
    MEMRAY_PHASES: (MEMRAY_PHASES_COLUMNS, MEMRAY_PHASES_COLUMNS[3:], []),
}
OPTIONAL_TABLES = ("machine.csv", "calibration.csv", MEMORY_PHASES, MEMORY_EPOCHS, MEMRAY_PHASES)
"""Side files that older run folders lack: read as empty tables."""


def _empty(columns: list) -> pd.DataFrame:
    """An empty table with ``columns``: text for ``impl`` and ``note``, numbers for the rest."""
    return pd.DataFrame({c: pd.Series(dtype=object if c in ("impl", "note") else "float64") for c in columns})


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        if fh.tell() == 0:
            return True
        fh.seek(-1, 2)
        return fh.read(1) == b"\n"


def read_table(folder, name: str) -> pd.DataFrame:
    """One of the run folder's CSV files, checked for columns, truncation and numbers."""
    path = Path(folder) / name
    columns, numeric, optional = _REQUIRED[name]
    if not path.is_file():
        raise UsageError(f"{folder}: not a complete perfsuite run folder (no {name})")
    if not _ends_with_newline(path):
        raise UsageError(f"{path}: the last line is incomplete (truncated or damaged file)")
    try:
        frame = pd.read_csv(path)
    except (ValueError, pd.errors.ParserError) as exc:
        raise UsageError(f"{path}: unreadable CSV ({str(exc).splitlines()[0]})") from exc
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UsageError(f"{path}: missing columns {', '.join(missing)}")
    for column in numeric + optional:
        frame[column] = _numeric(frame[column], path, column)
    keys = (["impl"] if "impl" in columns else []) + numeric
    short = frame[keys].isna().any(axis=1)
    if short.any():
        line = int(short.to_numpy().nonzero()[0][0]) + 2
        raise UsageError(f"{path}: line {line} is incomplete (truncated or damaged file)")
    if "impl" in columns:
        frame["impl"] = frame["impl"].astype(str)
    return frame if name in OPTIONAL_TABLES else with_rank(frame)


def _numeric(series: pd.Series, path: Path, column: str) -> pd.Series:
    values = pd.to_numeric(series, errors="coerce")
    bad = values.isna() & series.notna()
    if bad.any():
        line = int(bad.to_numpy().nonzero()[0][0]) + 2
        raise UsageError(f"{path}: line {line}: {column} is not a number ({series[bad].iloc[0]!r})")
    return values


JOB_KEYS = ["impl", *PAIR_KEYS]


def job_rows(epochs: pd.DataFrame) -> pd.DataFrame:
    """One row per (impl, round, epoch): the slowest rank's (single-process rows unchanged).

    Ranks of a synchronous data-parallel job wait for each other every step, so
    the job takes as long as its slowest rank: that row is the epoch's sample.
    """
    epochs = with_rank(epochs)
    if epochs.empty or epochs.groupby(JOB_KEYS)[RANK].nunique().max() <= 1:
        return epochs
    slowest = epochs.groupby(JOB_KEYS, sort=False)["wall_seconds"].idxmax()
    return epochs.loc[sorted(slowest)]


@dataclass
class Run:
    """A run folder's metadata and samples. ``phases`` and ``steps`` load on first use."""

    folder: Path
    meta: dict
    epochs: pd.DataFrame
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def phases(self) -> pd.DataFrame:
        """Per-step phase seconds (``phases.csv``)."""
        return self._table("phases.csv")

    @property
    def steps(self) -> pd.DataFrame:
        """Per-step losses (``steps.csv``)."""
        return self._table("steps.csv")

    @property
    def machine(self) -> pd.DataFrame:
        """The machine state around every epoch (``machine.csv``); empty when the run did not record it."""
        return self._table("machine.csv")

    @property
    def calibration(self) -> pd.DataFrame:
        """The calibration probe of every pass (``calibration.csv``); empty when the run did not record it."""
        return self._table("calibration.csv")

    def memory(self, name: str) -> pd.DataFrame:
        """A ``memory/`` table of ``perfsuite memory`` (``MEMORY_PHASES``, ``MEMORY_EPOCHS`` or
        ``MEMRAY_PHASES`` of :mod:`perfsuite.results.schema`); empty when the run did not measure memory."""
        return self._table(name)

    def _table(self, name: str) -> pd.DataFrame:
        if name not in self._cache:
            if name in OPTIONAL_TABLES and not (self.folder / name).is_file():
                self._cache[name] = _empty(_REQUIRED[name][0])
            else:
                self._cache[name] = read_table(self.folder, name)
        return self._cache[name]

    @property
    def impls(self) -> list:
        """Implementation names in meta.json order, then any others found in epochs.csv."""
        known = list(self.meta.get("implementations", {}))
        return known + [n for n in self.epochs["impl"].unique() if n not in known]

    def measured(self, impl: str) -> pd.DataFrame:
        """The non-warm-up epochs of ``impl``, one row each in (round, epoch) order (:func:`job_rows`).

        A multi-rank implementation's row of an epoch is its slowest rank's;
        its per-rank rows are in :attr:`epochs`.
        """
        rows = self.epochs[(self.epochs["impl"] == impl) & (self.epochs["warmup"] == 0)]
        return job_rows(rows).sort_values(PAIR_KEYS)

    @property
    def measured_impls(self) -> list:
        """Implementations with at least one measured epoch."""
        return [n for n in self.impls if len(self.measured(n))]

    @property
    def wide_phases(self) -> pd.DataFrame:
        """``phases.csv`` one row per step: impl, round, epoch, ``step_no``, warmup, one column per phase."""
        if "wide" not in self._cache:
            wide = self.phases.pivot_table(
                index=["impl", *PAIR_KEYS, "step"], columns="phase", values="seconds", aggfunc="first"
            )
            wide.columns.name = None
            wide = wide.rename_axis(index={"step": "step_no"}).reset_index()
            missing = [p for p in PHASES if p not in wide.columns]
            if missing:
                raise UsageError(f"{self.folder / 'phases.csv'}: no rows of phase {', '.join(missing)}")
            warm = self.epochs[["impl", *PAIR_KEYS, "warmup"]]
            self._cache["wide"] = wide.merge(warm, on=["impl", *PAIR_KEYS], how="left")
        return self._cache["wide"]

    def measured_steps(self, impl: str) -> pd.DataFrame:
        """Per-step phase seconds of ``impl`` in measured epochs, one column per phase, in order."""
        wide = self.wide_phases
        rows = wide[(wide["impl"] == impl) & (wide["warmup"] == 0)]
        return rows.sort_values([*PAIR_KEYS, "step_no"]).reset_index(drop=True)

    def status(self, impl: str) -> dict:
        """meta.json's record of ``impl`` (empty when it has none)."""
        return self.meta.get("implementations", {}).get(impl, {})

    def facts(self, impl: str, rank: int = 0) -> list:
        """``(warmup, facts)`` of every epoch of ``impl`` on ``rank``, in file order (facts a dict, maybe empty)."""
        epochs = with_rank(self.epochs)
        rows = epochs[(epochs["impl"] == impl) & (epochs[RANK] == rank)]
        path = self.folder / "epochs.csv"
        texts = rows[FACTS] if FACTS in rows.columns else [None] * len(rows)
        return [(bool(warm), _facts(text, path)) for warm, text in zip(rows["warmup"], texts, strict=True)]

    def records(self, impl: str) -> list:
        """Every epoch of ``impl`` (all rounds and ranks, warm-up included) as :class:`EpochRecord`, in file order."""
        path = self.folder / "epochs.csv"
        phases = self.phases[self.phases["impl"] == impl]
        steps = self.steps[self.steps["impl"] == impl]
        by_epoch = {key: part for key, part in phases.groupby(["round", "epoch", RANK], sort=False)}
        losses = {
            key: tuple(part.sort_values("step")["loss"].astype(float))
            for key, part in steps.groupby(["round", "epoch", RANK], sort=False)
        }
        out = []
        for row in self.epochs[self.epochs["impl"] == impl].itertuples(index=False):
            row = row._asdict()
            key = (row["round"], row["epoch"], row[RANK])
            part = by_epoch.get(key, phases.iloc[:0])
            wide = part.pivot_table(index="step", columns="phase", values="seconds", aggfunc="first")
            out.append(
                EpochRecord(
                    round=int(row["round"]),
                    epoch=int(row["epoch"]),
                    warmup=bool(row["warmup"]),
                    wall=float(row["wall_seconds"]),
                    phases=tuple(
                        tuple(float(v) for v in step) for step in wide.reindex(columns=list(PHASES)).to_numpy()
                    ),
                    losses=losses.get(key, ()),
                    train_accuracy=float(row["train_accuracy"]),
                    test_accuracy=float(row["test_accuracy"]),
                    rank=int(row[RANK]),
                    subphases={name: tuple(float(v) for v in wide[name]) for name in SUBPHASES if name in wide.columns},
                    facts=_facts(row.get(FACTS), path),
                    user_phases=_user_phases(wide),
                )
            )
        return out

    @property
    def label(self) -> str:
        """The dataset label (MNIST, or the loud synthetic label)."""
        return self.meta.get("dataset", {}).get("label") or "unknown dataset"

    @property
    def synthetic(self) -> bool:
        """True when the run trained on the synthetic MNIST-shaped set."""
        return bool(self.meta.get("dataset", {}).get("synthetic"))


def _user_phases(wide: pd.DataFrame) -> dict:
    """``{name: ((step, seconds), …)}`` of the phases a user named (:mod:`perfsuite.record`) in one epoch's rows."""
    known = set(PHASES) | set(SUBPHASES)
    return {
        str(name): tuple((int(step), float(sec)) for step, sec in wide[name].dropna().items())
        for name in wide.columns
        if name not in known
    }


def _read_json(path: Path):
    """The JSON document in ``path`` (one-line :class:`UsageError` when it is unreadable or cut short)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: unreadable or truncated JSON ({exc})") from exc


def read_meta(folder) -> dict:
    """Read and check ``meta.json`` of a run folder."""
    folder = Path(folder)
    path = folder / "meta.json"
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such run folder")
    if not path.is_file():
        raise UsageError(f"{folder}: not a perfsuite run folder (no meta.json)")
    meta = _read_json(path)
    version = meta.get("schema_version") if isinstance(meta, dict) else None
    if not isinstance(version, int):
        raise UsageError(f"{path}: has no schema_version")
    if version > SCHEMA_VERSION:
        raise UsageError(
            f"{path}: schema version {version} is newer than this perfsuite reads ({SCHEMA_VERSION}); upgrade perfsuite"
        )
    return meta


def read_summary(folder) -> dict:
    """``summary.json`` of a run folder as written (one-line :class:`UsageError` when missing or unreadable)."""
    path = Path(folder) / "summary.json"
    if not path.is_file():
        raise UsageError(f"{folder}: no summary.json (make it with: perfsuite summary {folder})")
    found = _read_json(path)
    if not isinstance(found, dict) or "implementations" not in found:
        raise UsageError(f"{path}: not a perfsuite summary")
    return found


def _facts(text, path: Path) -> dict:
    """The facts of one ``epochs.csv`` cell (empty when there are none)."""
    if not isinstance(text, str) or not text:
        return {}
    try:
        found = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{path}: facts {text!r} are not a JSON object ({exc})") from exc
    if not isinstance(found, dict):
        raise UsageError(f"{path}: facts {text!r} are not a JSON object")
    return found


def load_run(folder) -> Run:
    """Read and check a run folder (meta.json and epochs.csv now, the rest on demand)."""
    folder = Path(folder)
    meta = read_meta(folder)
    return Run(folder, meta, read_table(folder, "epochs.csv"))


def is_sweep(folder) -> bool:
    """Whether ``folder`` is a sweep folder (holds ``sweep.json``)."""
    return (Path(folder) / SWEEP_FILE).is_file()


def read_sweep(folder) -> dict:
    """``sweep.json`` of a sweep folder, checked (one-line :class:`UsageError` otherwise)."""
    path = Path(folder) / SWEEP_FILE
    if not path.is_file():
        raise UsageError(f"{folder}: not a perfsuite sweep folder (no {SWEEP_FILE})")
    record = _read_json(path)
    version = record.get("schema_version") if isinstance(record, dict) else None
    if not isinstance(version, int) or not isinstance(record.get("points"), list) or not record.get("vary"):
        raise UsageError(f"{path}: not a sweep description (schema_version, vary and points expected)")
    if version > SWEEP_SCHEMA_VERSION:
        raise UsageError(f"{path}: sweep schema {version} is newer than this perfsuite reads ({SWEEP_SCHEMA_VERSION})")
    return record
