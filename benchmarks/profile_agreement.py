"""Does ``perfsuite.record`` time a user's loop as the harness times the same loop as an Implementation?

A benchmark, not a test, on real MNIST. The yardstick is ``examples/idiomatic_loop.py``: perfsuite's
``idiomatic`` implementation written out as a user's script, marked with :mod:`perfsuite.record` (same data
pipeline, model, initial parameters and epoch orders, so the losses must be equal step for step; they are
compared). Two modes:

* ``--mode interleaved`` (default): one process holds both — the ``idiomatic`` implementation driven by the
  harness (:func:`perfsuite.core.phases.time_epoch`, what ``perfsuite run`` times) and the script's loop with
  recording on — and alternates them epoch by epoch, which goes first alternating too. Each epoch pair gives
  the ratio script/harness of every phase's total; the figure is the median over pairs with a 95% bootstrap
  interval. The machine's drift and the process's own state hit both alike: this isolates how the two
  instruments read the same work.
* ``--mode processes``: the commands themselves, ``perfsuite run --impls idiomatic`` and ``perfsuite profile --
  python examples/idiomatic_loop.py``, alternated ``--pairs`` times; a pair's ratio is that of the two
  processes' median epochs. Exposed to drift between processes a minute apart and to the difference
  between two processes of identical code (issue 14's finding), so its spread is wider.

From the repository root::

    python benchmarks/profile_agreement.py --data-dir ../shared/data --out reports/profile-agreement.json
    python benchmarks/profile_agreement.py --data-dir ../shared/data --mode processes
"""

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from perfsuite import record
from perfsuite.analysis.stats import describe
from perfsuite.core import data
from perfsuite.core.phases import PHASES, time_epoch
from perfsuite.core.workload import Workload
from perfsuite.measure.worker import WorkerState
from perfsuite.results.reader import load_run

ROOT = Path(__file__).resolve().parents[1]
QUANTITIES = ("epoch", *PHASES)
TOLERANCE = 0.05


def run_command(args, out: Path) -> list:
    return [
        sys.executable, "-m", "perfsuite", "run", "--impls", "idiomatic", "--data-dir", args.data_dir,
        "--subset", str(args.subset), "--epochs", str(args.epochs), "--warmup", "1",
        "--threads", str(args.threads), "--no-roofline", "--quiet", "--out", str(out),
    ]  # fmt: skip


def profile_command(args, out: Path) -> list:
    script = ROOT / "examples" / "idiomatic_loop.py"
    return [
        sys.executable, "-m", "perfsuite", "profile", "--warmup", "1", "--name", "idiomatic", "--quiet",
        "--out", str(out), "--", sys.executable, str(script), "--data-dir", args.data_dir,
        "--subset", str(args.subset), "--epochs", str(args.epochs + 1), "--threads", str(args.threads),
    ]  # fmt: skip


def medians(folder: Path) -> dict:
    """The median over measured epochs of each quantity's per-epoch seconds."""
    run = load_run(folder)
    epochs = run.measured("idiomatic")
    column = {"epoch": "wall_seconds", **{p: f"{p}_seconds" for p in PHASES}}
    return {q: float(np.median(epochs[column[q]].to_numpy(dtype=float))) for q in QUANTITIES}


def losses(folder: Path) -> dict:
    """``{(epoch, step): loss}`` of the first round."""
    steps = load_run(folder).steps
    steps = steps[(steps["impl"] == "idiomatic") & (steps["round"] == 0)]
    return {(int(e), int(s)): float(v) for e, s, v in zip(steps["epoch"], steps["step"], steps["loss"], strict=True)}


def loss_difference(a: dict, b: dict) -> tuple:
    """``(steps compared, largest relative difference)`` over the (epoch, step)s both have."""
    common = sorted(set(a) & set(b))
    worst = max((abs(a[k] - b[k]) / max(abs(a[k]), 1e-12) for k in common), default=float("nan"))
    return len(common), worst


def measure(args, tmp: Path) -> tuple:
    """Every pair's medians of both ways, and the loss comparison of the first pair."""
    pairs, compared = [], None
    for k in range(args.pairs):
        folders = {"run": tmp / f"run-{k}", "profile": tmp / f"profile-{k}"}
        order = ("run", "profile") if k % 2 == 0 else ("profile", "run")
        for way in order:
            command = run_command(args, folders[way]) if way == "run" else profile_command(args, folders[way])
            subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        pair = {way: medians(folders[way]) for way in folders}
        pairs.append(pair)
        if compared is None:
            compared = loss_difference(losses(folders["run"]), losses(folders["profile"]))
        ratios = "  ".join(f"{q} {pair['profile'][q] / pair['run'][q]:.3f}" for q in QUANTITIES)
        print(f"pair {k} ({' then '.join(order)}): profile/run {ratios}", flush=True)
    return pairs, compared


def load_example():
    """``examples/idiomatic_loop.py`` as a module."""
    path = ROOT / "examples" / "idiomatic_loop.py"
    spec = importlib.util.spec_from_file_location("idiomatic_loop", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def phase_totals(wall: float, rows) -> dict:
    """``{epoch: wall, phase: total seconds}`` of one epoch's per-step phase rows."""
    totals = np.asarray(rows, dtype=float).reshape(-1, len(PHASES)).sum(axis=0)
    return {"epoch": wall, **dict(zip(PHASES, map(float, totals), strict=True))}


def interleaved(args) -> tuple:
    """Epoch pairs of the harness's ``idiomatic`` and the script's loop in this one process, alternated."""
    workload = Workload(subset=args.subset, threads=args.threads, epochs=args.epochs, warmup=1)
    harness = WorkerState("idiomatic", workload, data.resolve("mnist", args.data_dir))
    harness.setup(0)
    example = load_example()
    script = example.setup(example.parse(["--data-dir", args.data_dir, "--subset", str(args.subset),
                                           "--threads", str(args.threads)]))  # fmt: skip
    recorder = record.start()
    pairs, losses = [], {"run": {}, "profile": {}}
    try:
        for epoch in range(1 + args.epochs):
            got = {}
            for way in ("run", "profile") if epoch % 2 == 0 else ("profile", "run"):
                if way == "run":
                    m = time_epoch(harness.impl, epoch)
                    got[way] = phase_totals(m.wall, m.phases)
                    values = m.losses
                else:
                    example.train_epoch(script, epoch)
                    found = recorder.epochs[-1]
                    got[way] = phase_totals(found["wall"], found["phases"])
                    values = found["losses"]
                losses[way].update({(epoch, i): float(v) for i, v in enumerate(values)})
            if epoch >= 1:  # the first is the warm-up of both
                pairs.append(got)
                ratios = "  ".join(f"{q} {got['profile'][q] / got['run'][q]:.3f}" for q in QUANTITIES)
                print(f"epoch {epoch}: script/harness {ratios}", flush=True)
    finally:
        record.stop()
    return pairs, loss_difference(losses["run"], losses["profile"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="MNIST root (torchvision layout)")
    parser.add_argument("--mode", choices=("interleaved", "processes"), default="interleaved")
    parser.add_argument("--pairs", type=int, default=6, help="processes mode: alternations of the two (default 6)")
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="measured epochs of each, after 1 warm-up (interleaved 20, processes 5)",
    )
    parser.add_argument("--subset", type=float, default=0.25, help="share of the training split (0.25)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of both (default 2)")
    parser.add_argument("--out", default=None, help="write the figures as JSON here too")
    args = parser.parse_args()

    if args.epochs is None:
        args.epochs = 20 if args.mode == "interleaved" else 5
    if args.mode == "interleaved":
        pairs, (steps, worst) = interleaved(args)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            pairs, (steps, worst) = measure(args, Path(tmp))
    result = {"settings": vars(args), "tolerance": TOLERANCE, "pairs": pairs, "quantities": {}}
    for q in QUANTITIES:
        ratios = np.asarray([p["profile"][q] / p["run"][q] for p in pairs])
        est = describe(ratios)
        share = float(np.median([p["run"][q] / p["run"]["epoch"] for p in pairs]))
        within = abs(est.median - 1) <= TOLERANCE
        result["quantities"][q] = {
            "ratio": est.median, "low": est.ci_low, "high": est.ci_high, "share_of_epoch": share, "within": within,
        }  # fmt: skip
        label = "script/harness" if args.mode == "interleaved" else "profile/run"
        print(
            f"{q:>9}: {label} {est.median:.3f} (95% CI {est.ci_low:.3f}–{est.ci_high:.3f}), "
            f"{share:.1%} of the epoch, {'within' if within else 'OUTSIDE'} ±{TOLERANCE:.0%}"
        )
    result["losses"] = {"steps_compared": steps, "largest_relative_difference": worst}
    print(f"losses: {steps} steps compared, largest relative difference {worst:.2g}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
