"""Hand-made run folders for the statistics, report and compare tests (no training).

:func:`make_run` writes a complete run folder through the real
:class:`perfsuite.results.writer.ResultsWriter`, with per-step phase seconds drawn
around the means given (seeded), so tests know what the statistics must find.
"""

import copy
from pathlib import Path

import numpy as np

from perfsuite.core.interface import PHASES
from perfsuite.results.record import EpochRecord
from perfsuite.results.writer import ResultsWriter

FAST = {"batching": 0.0002, "forward": 0.0006, "loss": 0.0001, "backward": 0.0010, "step": 0.0004}
SLOW = {"batching": 0.0050, "forward": 0.0008, "loss": 0.0002, "backward": 0.0012, "step": 0.0006}

META = {
    "run_id": "fake",
    "created": "2026-01-01T00:00:00+00:00",
    "command": ["perfsuite", "run"],
    "machine": {
        "cpu_model": "Test CPU",
        "logical_cpus": 2,
        "usable_cpus": 2,
        "platform": "Linux-test",
        "machine": "x86_64",
        "hostname": "test",
    },
    "software": {
        "python": "3.11.7",
        "torch": "2.14.1",
        "torchvision": "0.29.1",
        "numpy": "2.4.6",
        "mkl": True,
        "mkldnn": True,
        "openmp": True,
        "cpu_capability": "AVX512",
        "perfsuite": "0.1.0",
        "commit": "0" * 40,
        "dirty": False,
        "parallel_info": ["ATen/Parallel:", "at::get_num_threads() : 2"],
    },
    "timer": {"clock": "time.perf_counter", "seconds_per_read": 5e-8},
    "workload": {
        "batch_size": 128,
        "hidden": 128,
        "lr": 0.3,
        "momentum": 0.9,
        "loss": "ce",
        "epochs": 4,
        "warmup": 1,
        "repeats": 1,
        "subset": 1.0,
        "seed": 0,
        "threads": 2,
    },
    "dataset": {"kind": "mnist", "synthetic": False, "label": "MNIST", "n_train": 60000, "n_test": 10000},
    "status": "complete",
}


def _meta(impls, synthetic, epochs, warmup, rounds, info):
    meta = copy.deepcopy(META)
    meta["workload"].update(epochs=epochs, warmup=warmup, repeats=rounds)
    if synthetic:
        meta["dataset"].update(kind="synthetic", synthetic=True, label="SYNTHETIC (not MNIST)")
    meta["implementations"] = {
        name: {
            "spec": name,
            "status": "ok",
            "reason": "",
            "start_seconds": 0.4,
            "epochs_done": rounds * (epochs + warmup),
            "setups": [
                {
                    "round": r,
                    "setup_seconds": 0.1,
                    "metrics": dict((info or {}).get(name, {}).get("metrics", {})),
                    "info": {},
                }
                for r in range(rounds)
            ],
            "info": dict((info or {}).get(name, {}).get("info", {})),
        }
        for name in impls
    }
    return meta


def make_run(
    folder,
    impls=None,
    epochs=4,
    warmup=1,
    rounds=1,
    steps=30,
    seed=0,
    noise=0.05,
    synthetic=False,
    info=None,
    other=0.0005,
    facts=None,
):
    """Write a run folder; ``impls`` maps names to mean per-step seconds of each phase.

    ``facts`` maps an implementation to a function ``epoch -> dict`` of its epoch facts.
    """
    impls = impls or {"idiomatic": SLOW, "store": FAST}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    writer = ResultsWriter(folder)
    try:
        writer.write_meta(_meta(impls, synthetic, epochs, warmup, rounds, info))
        for r in range(rounds):
            for e in range(warmup + epochs):
                for name, means in impls.items():
                    found = (facts or {}).get(name, lambda epoch: {})(e)
                    writer.append_epoch(name, _record(rng, means, r, e, e < warmup, steps, noise, other, found))
    finally:
        writer.close()
    return folder


def _record(rng, means, round_, epoch, warm, steps, noise, other, facts):
    scale = 1.5 if warm else 1.0
    phases = [tuple(float(means[p] * scale * rng.lognormal(0.0, noise)) for p in PHASES) for _ in range(steps)]
    losses = [float(v) for v in 2.3 * np.exp(-0.05 * (epoch * steps + np.arange(steps))) + 0.05]
    wall = sum(map(sum, phases)) + other * rng.lognormal(0.0, noise)
    return EpochRecord(
        round=round_,
        epoch=epoch,
        warmup=warm,
        wall=wall,
        phases=tuple(phases),
        losses=tuple(losses),
        train_accuracy=0.9 + 0.01 * epoch,
        test_accuracy=0.89 + 0.01 * epoch,
        facts=facts,
    )


def scale_phase(src, dst, impl, phase, factor, epoch=None):
    """Copy run folder ``src`` to ``dst`` with ``impl``'s ``phase`` seconds scaled in phases.csv and epochs.csv.

    ``epoch`` limits the change to that epoch (a burst of load during one epoch).
    """
    import shutil

    shutil.copytree(src, dst)
    scale_phase_in(dst, impl, phase, factor, epoch=epoch)
    return Path(dst)


def scale_phase_in(folder, impl, phase, factor, epoch=None, round_=None):
    """Scale ``impl``'s ``phase`` seconds in the run folder ``folder``, and its epochs' wall by what that adds.

    ``epoch`` and ``round_`` limit the change to that epoch or that round.
    """
    import pandas as pd

    phases = pd.read_csv(Path(folder) / "phases.csv")
    epochs = pd.read_csv(Path(folder) / "epochs.csv")
    rows = (phases["impl"] == impl) & (phases["phase"] == phase)
    chosen = epochs["impl"] == impl
    for column, value in (("epoch", epoch), ("round", round_)):
        if value is not None:
            rows &= phases[column] == value
            chosen &= epochs[column] == value
    phases.loc[rows, "seconds"] *= factor
    phases.to_csv(Path(folder) / "phases.csv", index=False)
    added = epochs.loc[chosen, f"{phase}_seconds"] * (factor - 1)
    epochs.loc[chosen, f"{phase}_seconds"] += added
    epochs.loc[chosen, "wall_seconds"] += added
    epochs.to_csv(Path(folder) / "epochs.csv", index=False)


def scaled(impls, factor):
    """``impls`` (names to mean per-step phase seconds) with every phase of every implementation × ``factor``.

    A machine-wide change of speed: with :func:`make_run` and another seed, an A/A pair whose raw seconds
    differ by ``factor`` while every within-run ratio stays the same.
    """
    return {name: {phase: seconds * factor for phase, seconds in means.items()} for name, means in impls.items()}


def set_meta(folder, **entries):
    """Update top-level entries of ``folder``'s meta.json (e.g. ``roofline={"peak_gflops": 200.0}``)."""
    import json

    path = Path(folder) / "meta.json"
    meta = json.loads(path.read_text())
    meta.update(entries)
    path.write_text(json.dumps(meta))
    return Path(folder)


def slow_epochs(folder, epochs, factor, rounds=None):
    """Scale every implementation's ``epochs`` (of ``rounds``, default all) by ``factor`` in place: a slow machine."""
    import pandas as pd

    folder = Path(folder)
    for name in ("phases.csv", "epochs.csv"):
        frame = pd.read_csv(folder / name)
        rows = frame["epoch"].isin(list(epochs)) & (frame["round"].isin(list(rounds)) if rounds is not None else True)
        columns = ["seconds"] if name == "phases.csv" else [c for c in frame.columns if c.endswith("_seconds")]
        columns = [c for c in columns if c != "comm_seconds"]
        frame.loc[rows, columns] = frame.loc[rows, columns] * factor
        frame.to_csv(folder / name, index=False)
    return folder


def add_machine(folder, rate=lambda r, e: 150.0, steal=lambda r, e: 0.0, busy=lambda r, e: 0, seed=0, noise=0.01):
    """Write ``machine.csv`` and ``calibration.csv`` for every (impl, round, epoch) of ``folder``'s epochs.csv.

    ``rate``, ``steal`` and ``busy`` give the sgemm GFLOP/s, steal share and other running processes of a pass
    ``(round, epoch)``; the rates get a seeded relative noise of ``noise``.
    """
    import pandas as pd

    folder = Path(folder)
    epochs = pd.read_csv(folder / "epochs.csv")
    rng = np.random.default_rng(seed)
    writer = ResultsWriter(folder)
    try:
        for (r, e), rows in epochs.groupby(["round", "epoch"], sort=True):
            writer.append_calibration(
                {
                    "round": r,
                    "epoch": e,
                    "threads": 2,
                    "sgemm_gflops": rate(r, e) * rng.lognormal(0.0, noise),
                    "copy_gbps": 15.0 * rng.lognormal(0.0, noise),
                    "probe_seconds": 0.03,
                    "note": "",
                }
            )
            for impl in rows["impl"]:
                writer.append_machine(
                    {
                        "impl": impl,
                        "round": r,
                        "epoch": e,
                        "seconds": float(rows[rows["impl"] == impl]["wall_seconds"].iloc[0]),
                        "steal_share": steal(r, e),
                        "iowait_share": 0.0,
                        "loadavg_1m": 1.0 + busy(r, e),
                        "other_running": busy(r, e),
                        "cpu_mhz": 2600.0,
                        "note": "",
                    }
                )
    finally:
        writer.close()
    return folder
