"""The run summary: per implementation, medians computed from the raw epoch rows.

Only measured (non-warm-up) epochs count. Phase figures are per-epoch sums
of the per-step samples; coverage is the sum of the five phases over the
epoch's wall time (``other`` is what is left). A multi-rank implementation's
figures are those of its slowest rank in each epoch, with per-rank figures,
the spread between ranks, comm's share and the comm model under
``distributed`` and ``comm_model`` (:mod:`perfsuite.analysis.ranks`). One-off
costs (start-up, set-up, compile and build seconds) are under ``setup``; the
implementation's per-epoch facts, summed over warm-up and measured epochs,
under ``epoch_facts``.
"""

import numpy as np
import pandas as pd

from perfsuite.analysis import ranks as ranksummary
from perfsuite.analysis import roofline
from perfsuite.analysis.hostlang import host_language
from perfsuite.analysis.memory import memory_by_phase
from perfsuite.analysis.noise import diagnose
from perfsuite.analysis.speedups import analyse
from perfsuite.analysis.stats import median
from perfsuite.analysis.userphases import user_phases
from perfsuite.core.interface import OTHER, PHASES
from perfsuite.core.workload import DEFAULT_WORKLOAD
from perfsuite.results.reader import Run, job_rows, load_run
from perfsuite.results.schema import RANK, with_rank
from perfsuite.results.writer import write_json

PHASE_COLUMNS = [f"{p}_seconds" for p in PHASES + (OTHER,)]


def divergence(rows: pd.DataFrame) -> dict:
    """Whether training diverged (a non-finite loss) and in which (round, epoch) first."""
    bad = rows[~np.isfinite(rows["mean_loss"].astype(float))]
    if bad.empty:
        return {"diverged": False}
    first = bad.iloc[0]
    return {"diverged": True, "diverged_at": {"round": int(first["round"]), "epoch": int(first["epoch"])}}


def diverged_notes(summary: dict) -> list:
    """One line per implementation whose loss became NaN or infinite."""
    return [
        f"perfsuite: {name} diverged: its loss became NaN or infinite in round {e['diverged_at']['round']}, "
        f"epoch {e['diverged_at']['epoch']} (try a smaller --lr); its timings are kept but flagged"
        for name, e in summary["implementations"].items()
        if e.get("diverged")
    ]


def epoch_facts(facts: list) -> dict:
    """Numeric facts of one implementation's epochs (``(warmup, facts)`` pairs), summed over warm-up and measured."""
    totals = {}
    for warmup, found in facts:
        for key, value in found.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                totals.setdefault(key, {"warmup": 0, "measured": 0})["warmup" if warmup else "measured"] += value
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
        figures.update(
            {
                key: value
                for key, value in (setups[0].get("metrics") or {}).items()
                if isinstance(value, (int, float)) and not isinstance(value, bool)
            }
        )
    return {key: value for key, value in figures.items() if value is not None}


def summarize(run: Run) -> dict:
    """Per-implementation medians of the measured epochs, plus run-level facts."""
    epochs, meta = run.epochs, run.meta
    impls = {}
    every_rank = with_rank(epochs)
    epochs = job_rows(every_rank)
    statuses = meta.get("implementations", {})
    names = list(statuses) + [n for n in epochs["impl"].unique() if n not in statuses]
    for name in names:
        rows = epochs[(epochs["impl"] == name) & (epochs["warmup"] == 0)]
        entry = {
            "status": statuses.get(name, {}).get("status", "unknown"),
            "reason": statuses.get(name, {}).get("reason", ""),
            "measured_epochs": int(len(rows)),
            "setup": setup_figures(statuses.get(name, {})),
            **divergence(epochs[epochs["impl"] == name]),
        }
        if len(rows):
            last = rows.iloc[-1]
            entry.update(
                {
                    "epoch_seconds": median(rows["wall_seconds"]),
                    "phase_seconds": {c[: -len("_seconds")]: median(rows[c]) for c in PHASE_COLUMNS},
                    "coverage": median(rows["coverage"]),
                    "steps_per_epoch": int(last["steps"]),
                    "final_loss": float(last["final_loss"]),
                    "train_accuracy": float(last["train_accuracy"]),
                    "test_accuracy": float(last["test_accuracy"]),
                }
            )
            _add_ranks(entry, every_rank[(every_rank["impl"] == name) & (every_rank["warmup"] == 0)], meta, name)
        facts = epoch_facts(run.facts(name))
        if facts:
            entry["epoch_facts"] = facts
        impls[name] = entry
    return roofline.annotate(
        {
            "run_id": meta.get("run_id"),
            "status": meta.get("status"),
            "dataset": meta.get("dataset", {}).get("label"),
            "threads": meta.get("workload", {}).get("threads"),
            "workload": meta.get("workload", {}).get("name") or DEFAULT_WORKLOAD,
            "subset": meta.get("workload", {}).get("subset"),
            "implementations": impls,
        },
        meta,
    )


def _add_ranks(entry: dict, measured: pd.DataFrame, meta: dict, name: str) -> None:
    """Per-rank figures and the comm model of a multi-rank implementation (nothing for one rank)."""
    if measured[RANK].nunique() < 2:
        return
    entry["distributed"] = ranksummary.distributed(measured)
    entry["comm_model"] = ranksummary.comm_model(meta, name, entry)


def analyse_and_summarise(source, baseline=None) -> tuple:
    """Analyse a run (a folder or a :class:`Run`) and write its complete ``summary.json``.

    The statistics (:func:`~perfsuite.analysis.speedups.analyse` against
    ``baseline``), the noise diagnosis (:func:`~perfsuite.analysis.noise.diagnose`)
    and, when store ran with native or rust, the host-language comparison
    (:func:`~perfsuite.analysis.hostlang.host_language`) are written with it, as
    the report, ``perfsuite summary`` and the example all want them. Returns
    ``(summary, analysis, diagnosis)``.
    """
    run = source if isinstance(source, Run) else load_run(source)
    result = analyse(run, baseline)
    diagnosis = diagnose(run)
    return write_summary(run, result, diagnosis, host_language(run)), result, diagnosis


def write_summary(source, statistics=None, noise=None, host=None) -> dict:
    """Compute the summary of a run (a folder or a loaded :class:`Run`) and write its ``summary.json``.

    ``statistics`` (the report's :class:`~perfsuite.analysis.speedups.Analysis`)
    goes under ``"statistics"`` and ``noise`` (its
    :class:`~perfsuite.analysis.noise.Diagnosis`) under ``"noise"`` and ``host``
    (a :class:`~perfsuite.analysis.hostlang.HostLanguage`) under ``"host_language"``
    when given; a ``perfsuite memory`` run's figures
    (:func:`~perfsuite.analysis.memory.memory_by_phase`) go under ``"memory"``.
    This is the only writer of ``summary.json``.
    """
    run = source if isinstance(source, Run) else load_run(source)
    summary = summarize(run)
    memory = memory_by_phase(run)
    if memory is not None:
        summary["memory"] = memory.to_dict()
    named = user_phases(run)
    if named is not None:
        summary["user_phases"] = named  # phases a user named in their loop (perfsuite profile), inside other
    if statistics is not None:
        summary["statistics"] = statistics.to_dict()
    if noise is not None:
        summary["noise"] = noise.to_dict()
    if host is not None:
        summary["host_language"] = host.to_dict()
    write_json(run.folder / "summary.json", summary)
    return summary
