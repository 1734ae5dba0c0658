"""Phases a user named in their own loop (``perfsuite profile``): a breakdown of ``other``.

:mod:`perfsuite.record` records the five standard phases as the columns of
``epochs.csv`` and any phase the user names (``to_device``, ``logging``,
``eval``…) per step in ``phases.csv`` only; that time lies outside the five
phases, so it is part of ``other`` = wall − phases. :func:`user_phases`
gives, per implementation over its measured epochs, each named phase's median
seconds per epoch, its share of the wall time and of ``other``, and what of
``other`` is left unnamed. It reads ``phases.csv`` only when ``meta.json``
lists user phases (``user_phases``, written by ``perfsuite profile``), so
other runs pay nothing.
"""

import numpy as np

from perfsuite.analysis.stats import median
from perfsuite.core.interface import OTHER, PHASES, SUBPHASES
from perfsuite.results.reader import PAIR_KEYS, Run


def user_phases(run: Run):
    """``{impl: {"phases": {name: figures}, "other_seconds", "unnamed_other_seconds", "wall_seconds"}}``, or ``None``.

    Figures per named phase: ``seconds`` (median over measured epochs of the
    epoch's total), ``share_of_wall`` and ``share_of_other`` (of the medians),
    ``steps`` (median count of the steps it ran in). ``None`` when the run has
    no user phases.
    """
    if not run.meta.get("user_phases"):
        return None
    known = set(PHASES) | set(SUBPHASES)
    phases = run.phases
    named = phases[~phases["phase"].isin(known)]
    if named.empty:
        return None
    out = {}
    for impl in run.measured_impls:
        epochs = run.measured(impl)
        keys = epochs[PAIR_KEYS]
        rows = named[named["impl"] == impl].merge(keys, on=PAIR_KEYS)
        if rows.empty:
            continue
        totals = rows.groupby([*PAIR_KEYS, "phase"])["seconds"].agg(["sum", "count"]).reset_index()
        wall = median(epochs["wall_seconds"])
        other = median(epochs[f"{OTHER}_seconds"])
        figures = {}
        per_epoch_named = np.zeros(len(epochs))
        for name, part in totals.groupby("phase"):
            full = keys.merge(part, on=PAIR_KEYS, how="left").fillna({"sum": 0.0, "count": 0})
            seconds = median(full["sum"])
            per_epoch_named += full["sum"].to_numpy()
            figures[str(name)] = {
                "seconds": seconds,
                "share_of_wall": seconds / wall if wall > 0 else None,
                "share_of_other": seconds / other if other > 0 else None,
                "steps": median(full["count"]),
            }
        order = sorted(figures, key=lambda n: -figures[n]["seconds"])
        unnamed = epochs[f"{OTHER}_seconds"].to_numpy() - per_epoch_named
        out[impl] = {
            "phases": {name: figures[name] for name in order},
            "wall_seconds": wall,
            "other_seconds": other,
            "unnamed_other_seconds": median(unnamed),
        }
    return out or None
