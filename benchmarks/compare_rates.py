"""How often does ``perfsuite compare`` cry wolf, and how often does it catch a real slowdown?

A benchmark, not a test: it runs real ``perfsuite run`` invocations on real MNIST, so it takes minutes per pair.
From the repository root::

    python benchmarks/compare_rates.py --data-dir ../shared/data --out reports/compare-rates

Each pair is two runs one after the other of ``store`` (the calibrated mode's reference) and ``slowstep``
(``benchmarks/slowstep.py``: store whose step can busy-wait a known fraction longer); ``--also tuned,…`` adds
implementations (each adds about five gated rows, and a fifth to a pair's time). In an **A/A pair** both runs
are the same code. In an **A/B pair** the second run sets ``PERFSUITE_SLOWSTEP=--slowdown`` so slowstep's step
lasts that fraction longer; the implementation keeps its name in both runs (the environment variable is the only
difference), so ``compare`` matches it across the runs. A/A and A/B pairs alternate, so a slow stretch of the
machine hits both kinds alike.

Every pair is then judged by each mode in :data:`MODES` (``perfsuite compare``, calibrated, and
``perfsuite compare --raw``): the command's exit status, and its rows (from ``compare_runs``, the function the
command calls). The third mode, ``ab``, measures the pair itself: one ``perfsuite ab`` run of two side folders
holding the same implementations, the new side's slowstep slowed in an A/B pair (its rows from ``ab_rows``, the
function the command calls, on its run folder). Each judgement also keeps what the mode said would settle its
inconclusive rows (``settle``; :mod:`perfsuite.analysis.settle`). Per mode the table and
``OUT/compare_rates.json`` give:

* false-alarm rate: A/A pairs with any row ``slower`` (a CI gate failing for nothing);
* detection rate: A/B pairs where slowstep's ``step`` or ``epoch`` is ``slower``;

each with a 95% Wilson interval (few pairs give wide intervals), and how slowstep's ``step`` row came out
(:func:`step_spread`): its ratios, the A/B lower ends, and the spread of the A/A ratios beside the spread their
intervals claimed (a gate whose A/A ratios scatter more than its intervals say is exposed to drift between runs).

Options: ``--pairs N`` (A/A), ``--ab-pairs M``,
``--out DIR``, ``--data-dir DIR``, ``--subset`` (0.25), ``--repeats`` (14 rounds), ``--epochs`` (10 per round),
``--warmup`` (1 per round), ``--threads`` (perfsuite's default, the usable CPUs), ``--no-fresh-workers`` (one
worker process per implementation for the whole run, epochs as the samples, instead of new workers every round
with rounds as the samples), ``--slowdown`` (0.1),
``--threshold`` (5%), ``--alpha`` (0.05), ``--also``, ``--modes`` (e.g. ``ab`` alone, which skips the two
``perfsuite run``s per pair), ``--resume`` (go on with the pairs a stopped benchmark in ``OUT`` has not judged,
with the same options, on the same kind of machine: same CPU model and count), ``--rejudge`` (measure nothing:
judge the pairs in ``OUT`` again from their run folders with this checkout's analysis, into
``OUT/compare_rates-rejudged.json``, so a change of a gate's rule is checked on the same measurements; every pair
records the commit that judged it, ``judged_with``, and a rejudged file copied over ``compare_rates.json`` can be
resumed).

Why 14 rounds of 10 epochs: a round's ratio is the median of its epochs' ratios, and at 0.25 of MNIST an epoch
lasts about 0.1 s, so one epoch's ratio swings by 10–15% here while rounds differ by a few percent. With 2
epochs a round, one slow epoch moved its round, a 10% slower ``step`` reached ``slower`` in 2 of 4 A/B pairs,
and rounds, not epochs, were what a pair's time went to (a worker's start and warm-up cost about 2 s, ten
epochs about 1 s). 14 rounds give ``ab``'s t test over rounds, and calibrated ``compare``'s Mann–Whitney test
over 14 against 14 rounds, room below the corrected alpha over their 10 gated rows; how wide the intervals come
out depends on the day's noise (docs/findings.md).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

from perfsuite.analysis.ab import Pair as AbPair
from perfsuite.analysis.ab import ab_rows
from perfsuite.analysis.compare import compare_runs, parse_threshold, settle_note
from perfsuite.core.metadata import git_commit, machine
from perfsuite.core.registry import builtin
from perfsuite.results.reader import load_run, read_meta

HERE = Path(__file__).resolve().parent
SLOWSTEP = HERE / "slowstep.py"
ENV = "PERFSUITE_SLOWSTEP"
SLOWED = "slowstep"
REFERENCE = "store"
DETECTED_BY = ("step", "epoch")
"""A/B pairs count as detected when one of these rows of the slowed implementation is ``slower``."""


@dataclass(frozen=True)
class Pair:
    """Two consecutive runs: ``kind`` is ``aa`` (same code) or ``ab`` (the new run's slowstep is slower)."""

    kind: str
    index: int
    base: Path
    new: Path
    slowdown: float

    def env(self, side: str) -> dict:
        """The environment of the ``base`` or ``new`` run: only the B side of an A/B pair sets ``ENV``."""
        env = {k: v for k, v in os.environ.items() if k != ENV}
        if self.kind == "ab" and side == "new":
            env[ENV] = str(self.slowdown)
        return env


@dataclass
class Judgement:
    """What one mode said about one pair."""

    status: int
    slower: list = field(default_factory=list)
    """``"impl quantity"`` of every row judged ``slower``."""
    inconclusive: list = field(default_factory=list)
    slowed: dict = field(default_factory=dict)
    """The slowed implementation's :data:`DETECTED_BY` rows: ``[ratio, low, high, adjusted p]`` by quantity."""
    settle: str = ""
    """What the mode's note said would settle its inconclusive rows (``""`` when none is, or for raw)."""

    def alarm(self) -> bool:
        """Any row slower: the gate fails."""
        return bool(self.slower)

    def detected(self) -> bool:
        """The slowed implementation's step or epoch is slower."""
        return any(f"{SLOWED} {q}" in self.slower for q in DETECTED_BY)


def _compare_command(raw: bool) -> Callable:
    """A mode: ``perfsuite compare`` (``--raw`` when ``raw``) on the pair's two run folders."""

    def judge(pair: Pair, opts) -> Judgement:
        command = [sys.executable, "-m", "perfsuite", "compare", str(pair.base), str(pair.new)]
        command += ["--threshold", opts.threshold, "--alpha", str(opts.alpha)] + (["--raw"] if raw else [])
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode not in (0, 1):
            raise SystemExit(f"compare_rates: {' '.join(command)} failed: {done.stderr.strip()}")
        base, new, threshold = load_run(pair.base), load_run(pair.new), parse_threshold(opts.threshold)
        rows, _ = compare_runs(base, new, threshold, opts.alpha, raw=raw)
        advice = "" if raw else settle_note(base, new, rows, threshold, opts.alpha, REFERENCE)
        return _judgement(done.returncode, [asdict(r) for r in rows], advice)

    return judge


def _ab_side(folder: Path, fraction: float, names: list) -> Path:
    """A side folder for ``perfsuite ab``: the built-in ``names`` and a copy of slowstep whose worker sets ``ENV``."""
    folder.mkdir(parents=True, exist_ok=True)
    setting = f"os.environ[ENV] = {str(fraction)!r}" if fraction else "os.environ.pop(ENV, None)"
    (folder / "slowstep.py").write_text(SLOWSTEP.read_text() + f"\n\n{setting}\n")
    points = {name: builtin()[name].value for name in names}
    lines = [f'{name} = "{spec}"' for name, spec in points.items()] + [f'{SLOWED} = "slowstep.py:SlowStep"']
    (folder / "pyproject.toml").write_text('[project.entry-points."perfsuite.impls"]\n' + "\n".join(lines) + "\n")
    return folder


def _ab_command(pair: Pair, opts) -> Judgement:
    """A mode: one ``perfsuite ab`` run of the pair's code on both sides (B's slowstep slowed in an A/B pair).

    With ``--rejudge`` nothing is measured: the pair's ``ab`` run folder is judged again (:func:`_ab_again`).
    """
    where = pair.base.parent / "ab"
    if opts.rejudge:
        return _ab_again(where / "run", opts)
    base = _ab_side(where / "side-base", 0.0, opts.builtins)
    new = _ab_side(where / "side-new", pair.slowdown if pair.kind == "ab" else 0.0, opts.builtins)
    command = [sys.executable, "-m", "perfsuite", "ab", str(base), str(new), "--dataset", "mnist"]
    command += ["--subset", str(opts.subset), "--epochs", str(opts.epochs), "--warmup", str(opts.warmup)]
    command += _rounds(opts)
    command += ["--threshold", opts.threshold, "--alpha", str(opts.alpha), "--quiet", "--out", str(where / "run")]
    command += ["--data-dir", opts.data_dir] if opts.data_dir else []
    env = {k: v for k, v in os.environ.items() if k != ENV}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"compare_rates: {' '.join(command)} failed: {done.stderr.strip()[-2000:]}")
    return _ab_again(where / "run", opts, done.returncode)


def _ab_again(folder: Path, opts, status: int | None = None) -> Judgement:
    """The verdicts ``perfsuite ab`` gives the run in ``folder`` with this checkout's analysis.

    ``status`` is the command's exit status when it was just run; judged again, 1 when a row is slower.
    """
    run = load_run(folder)
    pairs = [AbPair(**p) for p in run.meta["ab"]["pairs"]]
    result = ab_rows(run, pairs, parse_threshold(opts.threshold), opts.alpha)
    rows = [asdict(r) for r in result.rows]
    status = int(any(r["verdict"] == "slower" for r in rows)) if status is None else status
    return _judgement(status, rows, result.settle)


def _judgement(status: int, rows: list, advice: str = "") -> Judgement:
    """A :class:`Judgement` from an exit status and rows (dicts with a compare row's fields)."""
    names = {v: [f"{r['impl']} {r['quantity']}" for r in rows if r["verdict"] == v] for v in ("slower", "inconclusive")}
    figures = ("ratio", "low", "high", "p_adjusted")
    watched = [r for r in rows if r["impl"] == SLOWED and r["quantity"] in DETECTED_BY]
    slowed = {r["quantity"]: [r[k] for k in figures] for r in watched}
    return Judgement(status, names["slower"], names["inconclusive"], slowed, advice)


MODES = {
    "calibrated": _compare_command(raw=False),
    "raw": _compare_command(raw=True),
    "ab": _ab_command,
}
"""Every way of judging a pair: a function ``(pair, options) -> Judgement``.

``calibrated`` and ``raw`` read the pair's two run folders; ``ab`` measures the same code itself in one
``perfsuite ab`` run (into ``OUT/<pair>/ab/``), with the B side's slowstep slowed in an A/B pair.
"""


def _rounds(opts) -> list:
    """``--repeats R``, ``--fresh-workers`` and ``--threads`` as the benchmark was asked for them (both commands)."""
    threads = ["--threads", str(opts.threads)] if opts.threads else []
    return ["--repeats", str(opts.repeats)] + (["--fresh-workers"] if opts.fresh_workers else []) + threads


def impls(opts) -> str:
    """``run``'s ``--impls``: the built-in implementations, then slowstep by its file."""
    return ",".join([*opts.builtins, f"{SLOWSTEP}:SlowStep"])


def measure(folder: Path, env: dict, opts) -> None:
    """One real ``perfsuite run`` into ``folder``."""
    command = [sys.executable, "-m", "perfsuite", "run", "--impls", impls(opts), "--dataset", "mnist"]
    command += ["--subset", str(opts.subset), "--epochs", str(opts.epochs), "--warmup", str(opts.warmup)]
    command += _rounds(opts) + ["--no-roofline", "--quiet", "--out", str(folder)]
    command += ["--data-dir", opts.data_dir] if opts.data_dir else []
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"compare_rates: perfsuite run into {folder} failed: {done.stderr.strip()[-2000:]}")


def pairs(opts) -> list:
    """A/A and A/B pairs, alternating while both kinds remain."""
    counts = {"aa": opts.pairs, "ab": opts.ab_pairs}
    order = [(k, i) for i in range(1, max(counts.values()) + 1) for k in ("aa", "ab") if i <= counts[k]]
    out = Path(opts.out)
    return [Pair(k, i, out / f"{k}-{i:02d}" / "base", out / f"{k}-{i:02d}" / "new", opts.slowdown) for k, i in order]


def rate(hits: int, n: int) -> dict:
    """``hits / n`` with its 95% Wilson interval (``None`` when ``n`` is 0)."""
    if n == 0:
        return {"hits": 0, "n": 0, "rate": None, "low": None, "high": None}
    ci = binomtest(hits, n).proportion_ci(confidence_level=0.95, method="wilson")
    return {"hits": hits, "n": n, "rate": hits / n, "low": ci.low, "high": ci.high}


def rates(results: list) -> dict:
    """Per mode: the false-alarm rate over A/A pairs and the detection rate over A/B pairs."""
    out = {}
    for mode in results[0]["modes"] if results else ():
        aa = [r["modes"][mode] for r in results if r["kind"] == "aa"]
        ab = [r["modes"][mode] for r in results if r["kind"] == "ab"]
        out[mode] = {
            "false_alarm": rate(sum(bool(j["slower"]) for j in aa), len(aa)),
            "detection": rate(sum(Judgement(**j).detected() for j in ab), len(ab)),
            "step": step_spread(aa, ab),
        }
    return out


def _steps(judgements: list) -> np.ndarray:
    """``[ratio, low, high]`` of the slowed implementation's ``step`` row in each judgement that has one."""
    rows = [j["slowed"]["step"][:3] for j in judgements if "step" in (j.get("slowed") or {})]
    rows = np.asarray([r for r in rows if None not in r], dtype=float).reshape(-1, 3)
    return rows[(rows > 0).all(axis=1)]


def _span(values: np.ndarray):
    return [float(values.min()), float(values.max())] if len(values) else None


def step_spread(aa: list, ab: list) -> dict:
    """How the slowed ``step`` row came out: ratios, A/B lower ends, and the A/A spread beside the intervals.

    ``aa_sd`` is the standard deviation of the A/A pairs' log ratios (identical code, so it is what the gate's
    interval should cover); ``aa_interval_sd`` is the one their intervals implied (median of
    ``log(high / low) / 2 / 1.96``). An ``aa_sd`` well above it means the runs differ by more than their own
    samples show (a run-level variance no count of rounds in one run narrows).
    """
    a, b = _steps(aa), _steps(ab)
    logs = np.log(a[:, 0])
    return {
        "aa_ratios": _span(a[:, 0]),
        "ab_ratios": _span(b[:, 0]),
        "ab_lower": _span(b[:, 1]),
        "aa_sd": float(np.std(logs, ddof=1)) if len(logs) >= 3 else None,
        "aa_interval_sd": float(np.median(np.log(a[:, 2] / a[:, 1]) / 2 / 1.96)) if len(a) else None,
    }


def _cell(r: dict) -> str:
    if r["rate"] is None:
        return "—"
    return f"{r['hits']}/{r['n']} = {r['rate']:.0%} ({r['low']:.0%}–{r['high']:.0%})"


def table(summary: dict) -> str:
    """The rates as a plain-text table."""
    lines = [f"{'mode':<12} {'false alarms (A/A, any slower)':<34} {'detection (A/B, slowstep step or epoch)'}"]
    for mode, r in summary.items():
        lines.append(f"{mode:<12} {_cell(r['false_alarm']):<34} {_cell(r['detection'])}")
    lines += [f"{mode:<12} {SLOWED} step: {_spread_words(r['step'])}" for mode, r in summary.items() if r.get("step")]
    return "\n".join(lines)


def _spread_words(spread: dict) -> str:
    def span(x):
        return "—" if x is None else f"{x[0]:.3f}–{x[1]:.3f}"

    words = f"A/A {span(spread['aa_ratios'])}, A/B {span(spread['ab_ratios'])} (lower ends {span(spread['ab_lower'])})"
    if spread["aa_sd"] is not None:
        words += f"; A/A log ratios' sd {spread['aa_sd']:.1%}, their intervals implied {spread['aa_interval_sd']:.1%}"
    return words


def run_pair(pair: Pair, opts) -> dict:
    """Measure both runs of ``pair`` and judge it by every mode."""
    if opts.rejudge:
        print(f"{pair.kind}-{pair.index:02d}: judged again", flush=True)
    elif set(opts.modes) - {"ab"}:
        for side, folder in (("base", pair.base), ("new", pair.new)):
            print(f"{pair.kind}-{pair.index:02d} {side}: perfsuite run → {folder}", flush=True)
            measure(folder, pair.env(side), opts)
    else:
        print(f"{pair.kind}-{pair.index:02d}: perfsuite ab", flush=True)
    modes = {name: MODES[name](pair, opts) for name in opts.modes}
    for name, j in modes.items():
        print(f"  {name}: exit {j.status}; slower: {', '.join(j.slower) or 'none'}", flush=True)
    judged_with = git_commit(HERE)  # the analysis that gave the verdicts (a pair may be judged again later)
    return {"kind": pair.kind, "index": pair.index, "base": str(pair.base), "new": str(pair.new)} | {
        "modes": {name: asdict(j) for name, j in modes.items()},
        "judged_with": judged_with,
    }


def parse_args(argv=None):
    """The script's options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=20, help="A/A pairs (same code in both runs; default 20)")
    p.add_argument("--ab-pairs", type=int, default=20, help="A/B pairs (slowstep slower in the new run; default 20)")
    p.add_argument("--out", default="reports/compare-rates", help="folder for the run folders and the JSON")
    p.add_argument("--data-dir", default=None, help="the MNIST root (default: perfsuite's: $PERFSUITE_DATA, ./data)")
    p.add_argument("--subset", type=float, default=0.25, help="fraction of the training split (default 0.25)")
    p.add_argument("--epochs", type=int, default=10, help="measured epochs per round (default 10; see the docstring)")
    p.add_argument("--warmup", type=int, default=1, help="warm-up epochs per round (default 1)")
    p.add_argument("--repeats", type=int, default=14, help="rounds per run (default 14)")
    p.add_argument(
        "--fresh-workers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="every round in new worker processes, rounds as the samples (default; --no-fresh-workers: epochs)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads per worker (default: perfsuite's)")
    p.add_argument(
        "--also",
        default="",
        help=f"registered implementations measured beside {REFERENCE} and {SLOWED}, comma-separated (e.g. tuned)",
    )
    p.add_argument("--modes", default=",".join(MODES), help=f"modes to judge by, of {', '.join(MODES)} (all)")
    p.add_argument("--slowdown", type=float, default=0.1, help="A/B: slowstep's step this fraction longer (0.1)")
    p.add_argument("--threshold", default="5%", help="compare's --threshold (default 5%%)")
    p.add_argument("--alpha", type=float, default=0.05, help="compare's --alpha (default 0.05)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="go on with the pairs OUT/compare_rates.json has not judged (same options and kind of machine)",
    )
    p.add_argument(
        "--rejudge",
        action="store_true",
        help="measure nothing: judge OUT's pairs again from their folders with this checkout's analysis",
    )
    opts = p.parse_args(argv)
    if opts.pairs < 0 or opts.ab_pairs < 0 or opts.pairs + opts.ab_pairs == 0:
        p.error("--pairs and --ab-pairs: at least one pair, none negative")
    opts.modes = [m.strip() for m in opts.modes.split(",") if m.strip()]
    known = builtin()
    also = [n.strip() for n in opts.also.split(",") if n.strip()]
    unknown = [n for n in also if n not in known or n in (REFERENCE, SLOWED)]
    if unknown:
        p.error(f"--also {','.join(unknown)}: not a registered implementation other than {REFERENCE} and {SLOWED}")
    opts.builtins = [REFERENCE, *also]
    if not opts.modes or set(opts.modes) - set(MODES):
        p.error(f"--modes: one or more of {', '.join(MODES)}")
    if opts.rejudge and not (Path(opts.out) / "compare_rates.json").exists():
        p.error(f"--rejudge: {Path(opts.out) / 'compare_rates.json'} does not exist (nothing was measured there)")
    if not (opts.resume or opts.rejudge) and Path(opts.out).exists() and any(Path(opts.out).iterdir()):
        p.error(f"--out {opts.out}: exists and is not empty (--resume goes on with it)")
    return opts


RESUMABLE = ("pairs", "ab_pairs", "resume", "rejudge")
"""Options that may differ between a benchmark and its resumption or new judgement: how many pairs, and the flags."""


def judged(path: Path, config: dict, ignore: tuple = RESUMABLE) -> list:
    """The pairs ``path`` (a previous ``compare_rates.json``) already judged, when its options match ``config``.

    A missing file means none; options that differ (other than ``ignore``, by default :data:`RESUMABLE`) are
    a usage error, since the rates would then mix two benchmarks.
    """
    if not path.exists():
        return []
    before = json.loads(path.read_text())
    old = {k: v for k, v in before["config"].items() if k not in ignore}
    new = {k: v for k, v in json.loads(json.dumps(config)).items() if k not in ignore}
    differ = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    if differ:
        raise SystemExit(f"compare_rates: --resume: {path} was measured with other options: {', '.join(differ)}")
    return before["pairs"]


def machine_kind(record: dict):
    """``(cpu_model, logical_cpus)`` of the machine that measured a judged pair, from its runs' ``meta.json``."""
    for folder in (Path(record["base"]), Path(record["base"]).parent / "ab" / "run"):
        if (folder / "meta.json").is_file():
            found = read_meta(folder).get("machine") or {}
            return found.get("cpu_model"), found.get("logical_cpus")
    return None


def same_machine(results: list, here: dict) -> None:
    """Refuse to resume on another kind of machine than the one that measured ``results`` (the rates are per kind).

    ``here`` is :func:`perfsuite.core.metadata.machine`'s record of this machine.
    """
    now = (here.get("cpu_model"), here.get("logical_cpus"))
    kinds = {k for k in map(machine_kind, results) if k is not None and k != now}
    if kinds:
        (model, cpus), *_ = sorted(kinds, key=str)
        raise SystemExit(
            f"compare_rates: --resume: pairs in {Path(results[0]['base']).parents[1]} were measured on {model} "
            f"({cpus} CPUs), this machine is {now[0]} ({now[1]} CPUs); rates are per kind of machine: "
            "start a new --out"
        )


def rejudge(path: Path, config: dict, opts) -> list:
    """Every pair ``path`` (a ``compare_rates.json``) judged, judged again by every mode from its folders."""
    old = judged(path, config, RESUMABLE + ("impls",))  # slowstep's path: another checkout may judge again
    return [run_pair(Pair(r["kind"], r["index"], Path(r["base"]), Path(r["new"]), opts.slowdown), opts) for r in old]


def main(argv=None) -> int:
    """Run the pairs (or judge them again), print the table, write ``OUT/compare_rates.json``."""
    opts = parse_args(argv)
    config = dict(vars(opts)) | {"impls": impls(opts), "slowed": SLOWED, "detected_by": DETECTED_BY}
    path = Path(opts.out) / "compare_rates.json"
    if opts.rejudge:
        results = rejudge(path, config, opts)
        path = path.with_name("compare_rates-rejudged.json")
        path.write_text(json.dumps({"config": config, "rates": rates(results), "pairs": results}, indent=2) + "\n")
        print(table(rates(results)))
        print(f"written: {path}")
        return 0
    results = judged(path, config) if opts.resume else []
    same_machine(results, machine())
    done = {(r["kind"], r["index"]) for r in results}
    for pair in pairs(opts):
        if (pair.kind, pair.index) in done:
            continue
        shutil.rmtree(pair.base.parent, ignore_errors=True)  # what a stopped benchmark left of this pair
        results.append(run_pair(pair, opts))
        path.write_text(json.dumps({"config": config, "rates": rates(results), "pairs": results}, indent=2) + "\n")
    print(table(rates(results)))
    print(f"written: {path} (rewritten after every pair, so a stopped benchmark keeps the pairs it judged)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
