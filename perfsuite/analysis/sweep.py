"""The sweep page: how seconds per sample change with the varied setting, per implementation and phase.

:func:`sweep_frame` reads every point's run folder of a sweep
(:mod:`perfsuite.measure.sweep`) and gives, per point, implementation and quantity
(the epoch and each of the six phases), the median seconds per *sample* of
the measured epochs (per-epoch seconds / samples per epoch) with its 95%
bootstrap interval (:func:`perfsuite.analysis.stats.describe`). Per sample, points
with different batch sizes or subsets compare directly: a flat line is a
cost proportional to the data; a line falling as 1/batch is a fixed cost
per step.

The compute floor per sample of each point is its epoch's flops
(:mod:`perfsuite.analysis.roofline`) at the highest peak measured at that thread
count anywhere in the sweep (one peak per thread count, so the floor line
does not wiggle with the noise of each point's short measurement).

For a batch-size sweep, :func:`overhead_fits` fits each implementation's
seconds per step as ``a + b·batch`` (least squares on relative errors):
``a`` is the fixed cost of a step (Python, dispatch, kernel launches,
per-batch bookkeeping), ``b`` the cost per sample. Below the crossover
``a / b`` the fixed per-step overhead costs more than the per-sample work.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from perfsuite.analysis import stats
from perfsuite.analysis.hostlang import host_language
from perfsuite.analysis.memory import memory_by_phase
from perfsuite.core.workload import Workload
from perfsuite.results.reader import ALL_PHASES, load_run, read_sweep
from perfsuite.results.schema import SWEEP_FILE
from perfsuite.results.writer import write_json

QUANTITIES = ("epoch",) + ALL_PHASES
"""What is plotted per sample: the whole epoch and each phase (``other`` included)."""
TABLE = "sweep.csv"


def samples_per_epoch(meta: dict) -> int:
    """Training samples in one epoch of a run (from its roofline record, else its workload and dataset)."""
    flops = (meta.get("roofline") or {}).get("flops")
    if flops:
        return int(flops["samples"])
    fields = {k: v for k, v in meta["workload"].items() if k in Workload.__dataclass_fields__}
    return Workload(**fields).train_size(int(meta["dataset"]["n_train"]))


def _estimate_row(values, samples: int) -> dict:
    est = stats.describe(np.asarray(values, dtype=float) / samples)
    return {"median": est.median, "ci_low": est.ci_low, "ci_high": est.ci_high, "n": est.n, "noisy": est.noisy}


def _point_rows(point: dict, run) -> list:
    samples = samples_per_epoch(run.meta)
    roof = run.meta.get("roofline") or {}
    base = {
        "point": point["label"],
        **point["values"],
        "threads_used": run.meta["workload"]["threads"],
        "samples": samples,
        "flops": (roof.get("flops") or {}).get("total"),
        "peak_gflops": roof.get("peak_gflops"),
    }
    rows = []
    for impl in run.measured_impls:
        measured = run.measured(impl)
        for q in QUANTITIES:
            column = "wall_seconds" if q == "epoch" else f"{q}_seconds"
            rows.append(
                {
                    **base,
                    "impl": impl,
                    "quantity": q,
                    "steps": int(measured["steps"].iloc[0]),
                    **_estimate_row(measured[column], samples),
                }
            )
    return rows


def finished_points(folder, record: dict) -> list:
    """``(point, run)`` of every point of the sweep whose run folder holds measured files."""
    found = []
    for point in record["points"]:
        where = Path(folder) / point["folder"]
        if (where / "epochs.csv").is_file() and (where / "meta.json").is_file():
            found.append((point, load_run(where)))
    return found


def sweep_frame(folder, record: dict, finished: list | None = None) -> pd.DataFrame:
    """Seconds per sample of every finished point x implementation x quantity, with floors.

    ``finished`` is :func:`finished_points` when the caller has read them already.
    """
    finished = finished_points(folder, record) if finished is None else finished
    frame = pd.DataFrame([row for point, run in finished for row in _point_rows(point, run)])
    if frame.empty:
        return frame
    for column in ("flops", "peak_gflops"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    peak = frame.groupby("threads_used")["peak_gflops"].transform("max")
    frame["floor_per_sample"] = frame["flops"] / (peak * 1e9) / frame["samples"]
    frame["floor_multiple"] = frame["median"] / frame["floor_per_sample"]
    frame.loc[frame["quantity"] != "epoch", "floor_multiple"] = np.nan
    frame["achieved_gflops"] = frame["flops"] / (frame["median"] * frame["samples"]) / 1e9
    frame.loc[frame["quantity"] != "epoch", "achieved_gflops"] = np.nan
    return frame


def series(frame: pd.DataFrame, record: dict, quantity: str = "epoch", x: str = None):
    """``(impl, other-axis values, rows sorted by x)`` of one quantity; ``x`` defaults to the first axis."""
    names = [a["name"] for a in record["vary"]]
    x = x or names[0]
    others = [n for n in names if n != x]
    rows = frame[frame["quantity"] == quantity]
    for key, group in rows.groupby(["impl"] + others, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        yield key[0], dict(zip(others, key[1:], strict=True)), group.sort_values(x)


def overhead_fits(frame: pd.DataFrame, record: dict) -> list:
    """Per implementation (and other-axis value) of a batch-size sweep: fixed and per-sample cost, crossover."""
    if frame.empty or "batch_size" not in [a["name"] for a in record["vary"]]:
        return []
    fits = []
    for impl, others, rows in series(frame, record, "epoch", x="batch_size"):
        if rows["batch_size"].nunique() < 2:
            continue
        batch = rows["batch_size"].to_numpy(dtype=float)
        step = (rows["median"] * rows["samples"] / rows["steps"]).to_numpy(dtype=float)
        per_sample, fixed = np.polyfit(batch, step, 1, w=1.0 / step)
        floor = stats.median(rows["floor_per_sample"]) if rows["floor_per_sample"].notna().any() else np.nan
        crossover = fixed / per_sample if fixed > 0 and per_sample > 0 else np.nan
        fits.append(
            {
                "impl": impl,
                **others,
                "fixed_seconds_per_step": float(fixed),
                "seconds_per_sample": float(per_sample),
                "crossover_batch": float(crossover),
                "per_sample_floor_multiple": per_sample / floor if np.isfinite(floor) else np.nan,
                "batch_sizes": [int(b) for b in batch],
            }
        )
    return fits


def fit_sentence(fit: dict) -> str:
    """The crossover of one fit in words."""
    others = ", ".join(f"{k}={v}" for k, v in fit.items() if k not in _FIT_KEYS)
    who = f"{fit['impl']}" + (f" ({others})" if others else "")
    cost = (
        f"{who}: {fit['fixed_seconds_per_step'] * 1e6:.0f} µs fixed per step + "
        f"{fit['seconds_per_sample'] * 1e6:.2f} µs per sample"
    )
    if np.isfinite(fit["per_sample_floor_multiple"]):
        cost += f" ({fit['per_sample_floor_multiple']:.1f}× the compute floor per sample)"
    if fit["fixed_seconds_per_step"] <= 0 or fit["seconds_per_sample"] <= 0:
        return (
            f"{who}: {fit['seconds_per_sample'] * 1e6:.2f} µs per sample and no detectable fixed cost per step "
            f"(the fit's intercept is {fit['fixed_seconds_per_step'] * 1e6:.0f} µs): "
            "the per-sample work dominates at every batch size measured."
        )
    return (
        cost + f"; the per-step overhead outweighs the per-sample work below batch ≈ {fit['crossover_batch']:.0f} "
        f"and falls to {_share(fit, max(fit['batch_sizes'])):.0%} of a step at batch {max(fit['batch_sizes'])}."
    )


_FIT_KEYS = {
    "impl",
    "fixed_seconds_per_step",
    "seconds_per_sample",
    "crossover_batch",
    "per_sample_floor_multiple",
    "batch_sizes",
}


def _share(fit: dict, batch: int) -> float:
    fixed = fit["fixed_seconds_per_step"]
    return fixed / (fixed + fit["seconds_per_sample"] * batch)


def host_points(folder, record: dict, finished: list | None = None) -> list:
    """Per finished point where store ran with native or rust: its host-language comparison (label, values, rows)."""
    found = []
    for point, run in finished_points(folder, record) if finished is None else finished:
        host = host_language(run)
        if host is not None:
            found.append({"point": point["label"], "values": point["values"], **host.to_dict()})
    return found


def memory_points(finished: list) -> list:
    """Per finished point of ``perfsuite sweep --memory`` and implementation: its tensor memory figures."""
    rows = []
    for point, run in finished:
        found = memory_by_phase(run)
        for name, m in (found.impls if found else {}).items():
            rows.append(
                {
                    "point": point["label"],
                    **point["values"],
                    "impl": name,
                    "live_peak_bytes": m.live_peak_bytes,
                    "allocated_bytes_per_step": sum(p["allocated_bytes_per_step"] for p in m.phases.values()),
                    "allocations_per_step": m.allocations_per_step,
                    "rss_peak_bytes": m.rss_peak_bytes,
                }
            )
    return rows


def analyse_sweep(folder) -> tuple:
    """Analyse a sweep folder: write ``sweep.csv``, the fits and the host-language rows into ``sweep.json``.

    Returns ``(record, frame)``.
    """
    folder = Path(folder)
    record = read_sweep(folder)
    finished = finished_points(folder, record)
    frame = sweep_frame(folder, record, finished)
    fits = overhead_fits(frame, record)
    if not frame.empty:
        frame.to_csv(folder / TABLE, index=False)
    record["analysis"] = {
        "overhead_fits": fits,
        "crossovers": [fit_sentence(f) for f in fits],
        "host_language": host_points(folder, record, finished),
        "memory": memory_points(finished),
    }
    write_json(folder / SWEEP_FILE, record)
    return record, frame
