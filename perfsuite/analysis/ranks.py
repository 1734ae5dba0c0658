"""Ranks and communication in a run summary: the slowest rank, the spread, comm's share, the comm model.

A multi-rank implementation writes one ``epochs.csv`` row per rank. Its
*job* row of an epoch is the slowest rank's (largest wall time): ranks of a
synchronous data-parallel job wait for each other every step, so the job
takes as long as its slowest rank. Single-process rows (rank 0 only) are
their own job rows, so :func:`perfsuite.results.reader.job_rows` leaves them unchanged.

``comm`` is a sub-interval of ``backward`` (see :mod:`perfsuite.impls.ddp`):
``backward compute = backward - comm`` and ``comm share = comm / wall``.
It includes any wait for a slower rank to join the all-reduce.
"""

import numpy as np
import pandas as pd

from perfsuite.analysis import commmodel
from perfsuite.analysis.stats import median
from perfsuite.core.interface import OTHER, PHASES
from perfsuite.results.schema import RANK, with_rank


def _rank_entry(rows: pd.DataFrame) -> dict:
    wall = rows["wall_seconds"]
    comm = rows["comm_seconds"].astype(float) if "comm_seconds" in rows else pd.Series(np.nan, index=rows.index)
    phases = {p: median(rows[f"{p}_seconds"]) for p in PHASES + (OTHER,)}
    return {
        "epoch_seconds": median(wall),
        "phase_seconds": phases,
        "comm_seconds": median(comm),
        "backward_compute_seconds": median(rows["backward_seconds"] - comm),
        "comm_share": median(comm / wall),
        "coverage": median(rows["coverage"]),
    }


def distributed(measured: pd.DataFrame) -> dict:
    """Per-rank medians, the slowest rank, the spread between ranks and comm's share, from measured rows."""
    measured = with_rank(measured)
    per_rank = {int(r): _rank_entry(rows) for r, rows in measured.groupby(RANK)}
    walls = measured.pivot_table(index=["round", "epoch"], columns=RANK, values="wall_seconds")
    slowest_each = walls.idxmax(axis=1)
    spread = walls.max(axis=1) - walls.min(axis=1)
    slowest = int(slowest_each.mode().min())
    return {
        "ranks": len(per_rank),
        "per_rank": per_rank,
        "slowest_rank": slowest,
        "slowest_rank_share_of_epochs": float((slowest_each == slowest).mean()),
        "rank_spread_seconds": median(spread),
        "rank_spread_relative": median(spread / walls.max(axis=1)),
        "comm_share": per_rank[slowest]["comm_share"],
        "comm_share_max": max(e["comm_share"] for e in per_rank.values()),
        "min_coverage": min(e["coverage"] for e in per_rank.values()),
    }


def comm_model(meta: dict, name: str, entry: dict) -> dict:
    """The comm model of implementation ``name`` from its start-up all-reduce benchmark, or ``{}``."""
    info = meta.get("implementations", {}).get(name, {}).get("info") or {}
    bench = info.get("allreduce_benchmark")
    if not bench or "distributed" not in entry:
        return {}
    dist = entry["distributed"]
    ranks = dist["ranks"]
    steps = entry.get("steps_per_epoch") or 0
    measured = dist["per_rank"][dist["slowest_rank"]]["comm_seconds"] / steps if steps else None
    hidden = meta.get("workload", {}).get("hidden", 128)
    return commmodel.model(bench, ranks, hidden, measured)


def notes(summary: dict) -> list:
    """One line per multi-rank implementation: slowest rank, spread, comm share, loopback bandwidth, model."""
    lines = []
    for name, e in summary["implementations"].items():
        d, m = e.get("distributed"), e.get("comm_model") or {}
        if not d:
            continue
        line = (
            f"{name}: {d['ranks']} ranks; slowest rank {d['slowest_rank']}; spread between ranks "
            f"{1000 * d['rank_spread_seconds']:.1f} ms/epoch ({100 * d['rank_spread_relative']:.1f}%); "
            f"comm {100 * d['comm_share']:.1f}% of the epoch"
        )
        if m:
            line += (
                f"; all-reduce {m['bytes_per_step'] / 1e3:.0f} kB/step, loopback "
                f"{m['bandwidth_bytes_per_second'] / 1e9:.2f} GB/s, alpha {1e6 * m['alpha_seconds']:.0f} us: "
                f"model {1e3 * m['predicted_comm_seconds_per_step']:.2f} ms/step vs measured "
                f"{1e3 * (m['measured_comm_seconds_per_step'] or float('nan')):.2f} ms/step"
            )
        lines.append(line)
    return lines
