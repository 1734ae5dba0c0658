"""The run summary: per implementation, medians computed from the raw epoch rows.

Only measured (non-warm-up) epochs count. Phase figures are per-epoch sums
of the per-step samples; coverage is the sum of the five phases over the
epoch's wall time (``other`` is what is left). A multi-rank implementation's
figures are those of its slowest rank in each epoch, with per-rank figures,
the spread between ranks, comm's share and the comm model under
``distributed`` and ``comm_model`` (:mod:`perfsuite.ranksummary`). One-off
costs (start-up, set-up, compile and build seconds) are under ``setup``; the
implementation's per-epoch facts, summed over warm-up and measured epochs,
under ``epoch_facts``.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console

from perfsuite.progress import console as make_console
from rich.table import Table

from perfsuite import ranksummary, roofline
from perfsuite.errors import UsageError
from perfsuite.interface import OTHER, PHASES
from perfsuite.results import EPOCHS_COLUMNS, FACTS, RANK, read_meta, with_rank, write_json

PHASE_COLUMNS = [f"{p}_seconds" for p in PHASES + (OTHER,)]


def read_epochs(folder) -> pd.DataFrame:
    """``epochs.csv`` of a run folder as a DataFrame, checked for its columns."""
    path = Path(folder) / "epochs.csv"
    if not path.is_file():
        raise UsageError(f"{folder}: not a perfsuite run folder (no epochs.csv)")
    try:
        frame = pd.read_csv(path)
    except (ValueError, pd.errors.ParserError) as exc:
        raise UsageError(f"{path}: unreadable CSV ({exc})") from exc
    missing = [c for c in EPOCHS_COLUMNS if c not in frame.columns]
    if missing:
        raise UsageError(f"{path}: missing columns {', '.join(missing)}")
    return with_rank(frame)


def divergence(rows: pd.DataFrame) -> dict:
    """Whether training diverged (a non-finite loss) and in which (round, epoch) first."""
    bad = rows[~np.isfinite(rows["mean_loss"].astype(float))]
    if bad.empty:
        return {"diverged": False}
    first = bad.iloc[0]
    return {"diverged": True, "diverged_at": {"round": int(first["round"]), "epoch": int(first["epoch"])}}


def diverged_notes(summary: dict) -> list:
    """One line per implementation whose loss became NaN or infinite."""
    return [f"perfsuite: {name} diverged: its loss became NaN or infinite in round {e['diverged_at']['round']}, "
            f"epoch {e['diverged_at']['epoch']} (try a smaller --lr); its timings are kept but flagged"
            for name, e in summary["implementations"].items() if e.get("diverged")]


def epoch_facts(rows: pd.DataFrame) -> dict:
    """The numeric epoch facts of one implementation's rows, summed over warm-up and measured epochs."""
    if FACTS not in rows.columns:
        return {}
    totals = {}
    for phase, part in (("warmup", rows[rows["warmup"] != 0]), ("measured", rows[rows["warmup"] == 0])):
        for text in part[FACTS].dropna():
            try:
                found = json.loads(text)
            except ValueError as exc:
                raise UsageError(f"epochs.csv: facts {text!r} are not a JSON object ({exc})") from exc
            for key, value in (found.items() if isinstance(found, dict) else ()):
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    totals.setdefault(key, {"warmup": 0, "measured": 0})[phase] += value
    return totals


def setup_figures(status: dict) -> dict:
    """One-off costs of an implementation, kept apart from its epochs.

    Worker start-up seconds, the first round's ``setup`` seconds and every
    number its ``setup`` returned (``compile_seconds``, ``build_seconds``, …).
    """
    figures = {"start_seconds": status.get("start_seconds")}
    setups = status.get("setups") or []
    if setups:
        figures["setup_seconds"] = setups[0].get("setup_seconds")
        figures.update({key: value for key, value in (setups[0].get("metrics") or {}).items()
                        if isinstance(value, (int, float)) and not isinstance(value, bool)})
    return {key: value for key, value in figures.items() if value is not None}


def summarize(epochs: pd.DataFrame, meta: dict) -> dict:
    """Per-implementation medians of the measured epochs, plus run-level facts."""
    impls = {}
    every_rank = with_rank(epochs)
    epochs = ranksummary.job_view(every_rank)
    statuses = meta.get("implementations", {})
    names = list(statuses) + [n for n in epochs["impl"].unique() if n not in statuses]
    for name in names:
        rows = epochs[(epochs["impl"] == name) & (epochs["warmup"] == 0)]
        entry = {"status": statuses.get(name, {}).get("status", "unknown"),
                 "reason": statuses.get(name, {}).get("reason", ""),
                 "measured_epochs": int(len(rows)),
                 "setup": setup_figures(statuses.get(name, {})),
                 **divergence(epochs[epochs["impl"] == name])}
        if len(rows):
            last = rows.iloc[-1]
            entry.update({
                "epoch_seconds": float(rows["wall_seconds"].median()),
                "phase_seconds": {c[: -len("_seconds")]: float(rows[c].median()) for c in PHASE_COLUMNS},
                "coverage": float(rows["coverage"].median()),
                "steps_per_epoch": int(last["steps"]),
                "final_loss": float(last["final_loss"]),
                "train_accuracy": float(last["train_accuracy"]),
                "test_accuracy": float(last["test_accuracy"]),
            })
            _add_ranks(entry, every_rank[(every_rank["impl"] == name) & (every_rank["warmup"] == 0)], meta, name)
        facts = epoch_facts(every_rank[(every_rank["impl"] == name) & (every_rank[RANK] == 0)])
        if facts:
            entry["epoch_facts"] = facts
        impls[name] = entry
    return roofline.annotate({
        "run_id": meta.get("run_id"),
        "status": meta.get("status"),
        "dataset": meta.get("dataset", {}).get("label"),
        "threads": meta.get("workload", {}).get("threads"),
        "implementations": impls,
    }, meta)


def _add_ranks(entry: dict, measured: pd.DataFrame, meta: dict, name: str) -> None:
    """Per-rank figures and the comm model of a multi-rank implementation (nothing for one rank)."""
    if measured[RANK].nunique() < 2:
        return
    entry["distributed"] = ranksummary.distributed(measured)
    entry["comm_model"] = ranksummary.comm_model(meta, name, entry)


def write_summary(folder) -> dict:
    """Compute the summary from a run folder's files and write ``summary.json``."""
    meta = read_meta(folder)
    summary = summarize(read_epochs(folder), meta)
    write_json(Path(folder) / "summary.json", summary)
    return summary


def table(summary: dict) -> Table:
    """The summary as a rich table: median seconds per epoch and per phase."""
    t = Table(title=f"median seconds per epoch · {summary.get('dataset')} · {summary.get('threads')} threads")
    t.add_column("implementation")
    t.add_column("epoch", justify="right")
    for p in PHASES + (OTHER,):
        t.add_column(p, justify="right")
    t.add_column("coverage", justify="right")
    t.add_column("test acc", justify="right")
    floor = "floor_seconds" in summary.get("roofline", {})
    if floor:
        t.add_column("× floor", justify="right")
        t.caption = roofline.describe(summary["roofline"])
    for name, entry in summary["implementations"].items():
        if "epoch_seconds" not in entry:
            t.add_row(name, f"[red]{entry['status']}[/red]: {entry['reason']}" if entry["reason"] else entry["status"])
            continue
        phases = entry["phase_seconds"]
        if entry.get("diverged"):
            name = f"{name} [red](diverged)[/red]"
        t.add_row(name, f"{entry['epoch_seconds']:.3f}", *(f"{phases[p]:.3f}" for p in PHASES + (OTHER,)),
                  f"{entry['coverage']:.3f}", f"{entry['test_accuracy']:.4f}",
                  *([f"{entry['roofline']['floor_multiple']:.2f}"] if floor else []))
    return t


def print_table(summary: dict, console: Console = None) -> None:
    """Print the summary table (and, for multi-rank implementations, the per-rank table) on the terminal."""
    console = console or make_console()
    console.print(table(summary))
    ranks = ranksummary.rank_table(summary)
    if ranks is not None:
        console.print(ranks)
        for line in ranksummary.notes(summary):
            console.print(line, highlight=False)
