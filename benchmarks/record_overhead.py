"""What does ``perfsuite.record`` cost a loop? A paired benchmark of the same loop with and without it.

A benchmark, not a test: it trains real epochs of ``mnist-mlp`` (batch 128 by default) with the ``store``
loop's own code (``perfsuite.impls.store``: the tensor store, ``index_select`` + ``narrow`` batching, the
momentum update), in variants that differ only in the instrumentation:

* ``plain`` — the loop with no ``record`` call at all;
* ``off``   — the loop with ``record.epoch()``, ``record.batches``, five ``record.phase`` scopes and
  ``record.loss`` per step, recording off (the state a script is in when it is not run by ``perfsuite profile``);
* ``on``    — the same loop with recording on, epochs appended to a JSON-lines file as under ``perfsuite profile``;
* ``scopes`` — recording on without ``record.loss``: the scopes alone (keeping every step's loss tensor until
  the epoch ends, as ``record.loss`` and the harness do, has a cost of its own);
* ``offscopes`` — ``off`` without ``record.loss``: the four scopes and ``record.batches`` alone, recording off;
* ``fetched`` and ``fetchedoff`` — ``on`` and ``off`` with the four scopes fetched once before the loop
  (``forward = record.phase("forward")`` …, then ``with forward:``), not looked up at every step;
* ``withs`` — ``fetchedoff`` without ``record.loss``: the four ``with`` statements alone, the floor of any
  ``with``-based marks;
* ``again`` — ``plain`` once more (an A/A pair): how far two identical loops differ here, the floor under the
  figures above.

Two designs (``--design``). **steps** (the default): each round runs one epoch per variant, in an order shuffled
anew each round (seeded), and inside that epoch the steps alternate between the variant's body and the bare body
(ABBA: neither side always runs first), all on one model. The two sides of a pair run a millisecond apart in one
process on the same tensors, so the machine's slow drift and the process's memory layout hit both alike; each
side takes every other full batch, its rows copied out anew each epoch in a random order; a step is timed from
its batch request to the end of its update, and the epoch's first pair (cold) is left out. An epoch's figure is
the ratio of the two sides' summed step seconds. **epochs**: each round runs one whole epoch of each variant
(``plain`` included), shuffled, each variant on its own copy of the model dealt anew each round (``--shared``:
one model); the wall time of each epoch is read around its loop, and the recorder's work when an epoch ends is
reported apart. Paired epochs tens of milliseconds apart differ by several percent on a shared machine, paired
steps by far less, which is why ``steps`` is the default.

One process's figures are the median over rounds of the paired ratios (``on/plain − 1`` …) with their 95%
percentile-bootstrap interval. Two processes of the same code can differ by more than that interval (their
memory layout), so ``--processes N`` runs the rounds in N fresh processes one after another and takes the
process as the unit: the mean of the processes' medians with a Student-t interval. The cost of one recorded
step's calls is also measured directly (``timeit``) against the plain step's median time. From the repository
root::

    python benchmarks/record_overhead.py --data-dir ../shared/data --subset 0.25 --threads 1 --rounds 150 \
        --processes 8 --out reports/record-overhead.json
"""

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

import numpy as np
import torch
from scipy import stats as scipy_stats

from perfsuite import record
from perfsuite.analysis.stats import describe
from perfsuite.core import data
from perfsuite.core.workload import Workload, initial_parameters
from perfsuite.impls.store import Memory, MyModel, cross_entropy, get_batches

VARIANTS = ("plain", "off", "on", "scopes", "offscopes", "fetched", "fetchedoff", "withs", "again")
RECORDING = ("on", "scopes", "fetched")
HOISTED = ("fetched", "fetchedoff", "withs")
"""The variants whose scopes are fetched once, before the loop."""
LOSSLESS = ("scopes", "offscopes", "withs")
"""The variants that leave ``record.loss`` out."""
TURNS = ((True, False), (False, True))
"""The order of a step pair's two sides, alternating (ABBA…): neither side always runs first."""


class Loop:
    """The store loop's state for one variant: its model, store, data and batch size."""

    def __init__(self, x, y, workload: Workload):
        self.x, self.y = x, y
        self.workload = workload
        self.mem = Memory()
        self.model = MyModel(self.mem, workload.hidden, initial_parameters(workload))
        self.shuffler = random.Random(1)

    def plain(self, order) -> float:
        """One epoch of the bare loop; its wall seconds."""
        mem, model, w = self.mem, self.model, self.workload
        start = time.perf_counter()
        for x, y in get_batches(self.x, self.y, w.batch_size, order):
            logits = model.forward(mem, x)
            loss = cross_entropy(y, logits)
            loss.backward()
            mem.apply_grads_sgd_momentum(w.lr, w.momentum)
        return time.perf_counter() - start

    def hoisted(self, order, losses: bool) -> float:
        """One epoch of the marked loop with its four scopes fetched once before the loop (no lookup per step)."""
        mem, model, w = self.mem, self.model, self.workload
        forward, loss_, backward, step = (record.phase(name) for name in ("forward", "loss", "backward", "step"))
        with record.epoch():
            start = time.perf_counter()
            for x, y in record.batches(get_batches(self.x, self.y, w.batch_size, order)):
                with forward:
                    logits = model.forward(mem, x)
                with loss_:
                    loss = cross_entropy(y, logits)
                with backward:
                    loss.backward()
                with step:
                    mem.apply_grads_sgd_momentum(w.lr, w.momentum)
                if losses:
                    record.loss(loss)
            inside = time.perf_counter() - start
        return inside

    def instrumented(self, order, losses: bool = True) -> float:
        """One epoch of the marked loop; its wall seconds inside ``record.epoch()`` (what the epoch's own
        wall time counts: the recorder's work when the epoch ends comes after it, see :func:`epoch`)."""
        mem, model, w = self.mem, self.model, self.workload
        with record.epoch():
            start = time.perf_counter()
            for x, y in record.batches(get_batches(self.x, self.y, w.batch_size, order)):
                with record.phase("forward"):
                    logits = model.forward(mem, x)
                with record.phase("loss"):
                    loss = cross_entropy(y, logits)
                with record.phase("backward"):
                    loss.backward()
                with record.phase("step"):
                    mem.apply_grads_sgd_momentum(w.lr, w.momentum)
                if losses:
                    record.loss(loss)
            inside = time.perf_counter() - start
        return inside

    def halves(self, order):
        """Two batch iterators over the epoch's full batches, the even-numbered and the odd-numbered ones.

        A last, short batch is left out, and one full batch more when their count is odd, so both sides of
        a step-interleaved epoch take the same number of equal batches. Each side's rows are copied out anew,
        in a random order, so neither side keeps the addresses of the copy made first.
        """
        size = self.workload.batch_size
        chunks = order.split(size)
        pairs = step_pairs(len(order), size)
        sides = [None, None]
        for side in (0, 1) if self.shuffler.random() < 0.5 else (1, 0):  # which side's copy is allocated first
            rows = torch.cat(chunks[side : 2 * pairs : 2])
            x, y = self.x.index_select(0, rows), self.y.index_select(0, rows)
            sides[side] = get_batches(x, y, size, torch.arange(len(rows)))
        return pairs, *sides

    def marked_steps(self, order, first: int, losses: bool = True) -> tuple:
        """One epoch whose steps alternate (ABBA) between the marked body and the bare one, on one model.

        ``first`` (0 or 1) says which side opens the epoch. ``(a, b)``: the summed wall seconds of the
        marked steps and of the bare ones, each step timed from its batch request to the end of its update;
        the epoch's first pair is left out (its first step is slow: caches and allocator are cold). This
        loop and its two siblings spell their step bodies out rather than share them through a helper: a
        call per step would add a Python frame to the very path the benchmark measures.
        """
        mem, model, w = self.mem, self.model, self.workload
        pairs, side_a, side_b = self.halves(order)
        clock = time.perf_counter
        a, b = [], []
        with record.epoch():
            marked = record.batches(side_a)
            for i in range(pairs):
                for turn in TURNS[(i + first) & 1]:
                    if turn:
                        t0 = clock()
                        x, y = next(marked)
                        with record.phase("forward"):
                            logits = model.forward(mem, x)
                        with record.phase("loss"):
                            loss = cross_entropy(y, logits)
                        with record.phase("backward"):
                            loss.backward()
                        with record.phase("step"):
                            mem.apply_grads_sgd_momentum(w.lr, w.momentum)
                        if losses:
                            record.loss(loss)
                        a.append(clock() - t0)
                    else:
                        t0 = clock()
                        x, y = next(side_b)
                        logits = model.forward(mem, x)
                        loss = cross_entropy(y, logits)
                        loss.backward()
                        mem.apply_grads_sgd_momentum(w.lr, w.momentum)
                        b.append(clock() - t0)
            next(marked, None)  # the wrapper's final request closes its last step (untimed)
        return sum(a[1:]), sum(b[1:])

    def hoisted_steps(self, order, first: int, losses: bool) -> tuple:
        """As :meth:`marked_steps`, with the four scopes fetched once before the loop (no lookup per step)."""
        mem, model, w = self.mem, self.model, self.workload
        pairs, side_a, side_b = self.halves(order)
        forward, loss_, backward, step = (record.phase(name) for name in ("forward", "loss", "backward", "step"))
        clock = time.perf_counter
        a, b = [], []
        with record.epoch():
            marked = record.batches(side_a)
            for i in range(pairs):
                for turn in TURNS[(i + first) & 1]:
                    if turn:
                        t0 = clock()
                        x, y = next(marked)
                        with forward:
                            logits = model.forward(mem, x)
                        with loss_:
                            loss = cross_entropy(y, logits)
                        with backward:
                            loss.backward()
                        with step:
                            mem.apply_grads_sgd_momentum(w.lr, w.momentum)
                        if losses:
                            record.loss(loss)
                        a.append(clock() - t0)
                    else:
                        t0 = clock()
                        x, y = next(side_b)
                        logits = model.forward(mem, x)
                        loss = cross_entropy(y, logits)
                        loss.backward()
                        mem.apply_grads_sgd_momentum(w.lr, w.momentum)
                        b.append(clock() - t0)
            next(marked, None)
        return sum(a[1:]), sum(b[1:])

    def bare_steps(self, order, first: int) -> tuple:
        """As :meth:`marked_steps`, both sides the bare body (the A/A pair of the step-interleaved design)."""
        mem, model, w = self.mem, self.model, self.workload
        pairs, side_a, side_b = self.halves(order)
        clock = time.perf_counter
        a, b = [], []
        for i in range(pairs):
            for turn in TURNS[(i + first) & 1]:
                if turn:
                    t0 = clock()
                    x, y = next(side_a)
                    logits = model.forward(mem, x)
                    loss = cross_entropy(y, logits)
                    loss.backward()
                    mem.apply_grads_sgd_momentum(w.lr, w.momentum)
                    a.append(clock() - t0)
                else:
                    t0 = clock()
                    x, y = next(side_b)
                    logits = model.forward(mem, x)
                    loss = cross_entropy(y, logits)
                    loss.backward()
                    mem.apply_grads_sgd_momentum(w.lr, w.momentum)
                    b.append(clock() - t0)
        return sum(a[1:]), sum(b[1:])


def epoch(variant: str, loop: Loop, order, records: Path) -> tuple:
    """``(inside, outside)`` seconds of one epoch of ``variant`` (recording on around the ``on`` epoch only).

    ``inside`` is the loop's wall time, ``outside`` that plus leaving ``record.epoch()`` (where the
    recorder reads the losses and appends the epoch to its file, between epochs).
    """
    if variant in RECORDING:
        record.start(records)
    try:
        start = time.perf_counter()
        if variant in ("plain", "again"):
            inside = loop.plain(order)
        elif variant in HOISTED:
            inside = loop.hoisted(order, variant not in LOSSLESS)
        else:
            inside = loop.instrumented(order, variant not in LOSSLESS)
        return inside, time.perf_counter() - start
    finally:
        if variant in RECORDING:
            record.stop()


def step_pairs(samples: int, size: int) -> int:
    """The step pairs of a step-interleaved epoch: half its full batches (:meth:`Loop.halves`)."""
    return samples // size // 2


def step_epoch(variant: str, loop: Loop, order, first: int, records: Path) -> tuple:
    """``(a, b)`` summed step seconds of one step-interleaved epoch: ``variant``'s steps and the bare ones
    (``first``: 0 when ``variant``'s side opens the epoch, 1 when the bare side does)."""
    if variant in RECORDING:
        record.start(records)
    try:
        if variant == "again":
            return loop.bare_steps(order, first)
        if variant in HOISTED:
            return loop.hoisted_steps(order, first, variant not in LOSSLESS)
        return loop.marked_steps(order, first, variant not in LOSSLESS)
    finally:
        if variant in RECORDING:
            record.stop()


def call_costs(repeats: int = 200_000) -> dict:
    """Seconds one step's ``record`` calls cost, off and on (``timeit``, best of 5), without any training."""

    def scopes():
        with record.phase("forward"):
            pass
        with record.phase("loss"):
            pass
        with record.phase("backward"):
            pass
        with record.phase("step"):
            pass
        record.loss(0.0)

    def batches_off(items=(1,)):
        for _ in record.batches(items):
            pass

    off = min(timeit.repeat(scopes, number=repeats, repeat=5)) / repeats
    off += min(timeit.repeat(batches_off, number=repeats, repeat=5)) / repeats
    with tempfile.TemporaryDirectory() as tmp:
        record.start(Path(tmp) / "calls.jsonl")
        try:
            items = list(range(repeats))
            with record.epoch():
                t0 = time.perf_counter()
                for _ in record.batches(items):
                    scopes()
                on = (time.perf_counter() - t0) / repeats
        finally:
            record.stop()
    return {"off_seconds_per_step": off, "on_seconds_per_step": on}


def interval(ratios) -> dict:
    est = describe(np.asarray(ratios) - 1.0)
    return {"median": est.median, "low": est.ci_low, "high": est.ci_high, "rounds": est.n}


def parse_args(argv=None):
    """The benchmark's options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="MNIST root (default: $PERFSUITE_DATA, else ./data)")
    parser.add_argument("--rounds", type=int, default=15, help="rounds per process")
    parser.add_argument("--warmup", type=int, default=1, help="rounds run first and left out")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--subset", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the workload's)")
    parser.add_argument(
        "--shared",
        action="store_true",
        help="every variant trains one shared model in turn (the same parameter tensors), instead of a copy each",
    )
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"the variants to run, comma-separated ({', '.join(VARIANTS)}; plain is always run)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="run the rounds in this many fresh processes, one after another, and take the process as the unit",
    )
    parser.add_argument(
        "--design",
        choices=("steps", "epochs"),
        default="steps",
        help="steps: each epoch alternates a variant's steps with bare ones on one model (default); "
        "epochs: one whole epoch of each variant per round, a model copy each",
    )
    parser.add_argument("--quiet", action="store_true", help="no line per round")
    parser.add_argument("--out", default=None, help="write the figures as JSON here too")
    args = parser.parse_args(argv)
    args.variants = chosen(parser, args.variants)
    if args.processes < 1 or args.rounds < 1:
        parser.error("--processes and --rounds: at least 1")
    if args.design == "steps" and len(args.variants) < 2:
        parser.error("--variants: the steps design needs a variant besides plain (every epoch's other side)")
    return args


def main(argv=None) -> None:
    """Measure in this process, or with ``--processes N`` in N fresh ones, and print (and write) the figures."""
    args = parse_args(argv)
    result = measure(args) if args.processes == 1 else replicate(args)
    report(result)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


def prepared(args) -> tuple:
    """``(workload, n, x, y)``: the workload of the options and the preprocessed training subset."""
    workload = Workload(batch_size=args.batch_size, subset=args.subset)
    if args.threads:
        workload = Workload(batch_size=args.batch_size, subset=args.subset, threads=args.threads)
    torch.set_num_threads(workload.threads)
    info = data.resolve("mnist", args.data_dir)
    train, _ = data.load(info)
    n = int(round(args.subset * len(train.labels)))
    return workload, n, data.preprocess(train.images[:n]), train.labels[:n]


def measure(args) -> dict:
    """The rounds of one process in the chosen design (``--design``)."""
    return measure_steps(args) if args.design == "steps" else measure_epochs(args)


def measure_epochs(args) -> dict:
    """The rounds of one process: each round one epoch of every variant, in a shuffled order."""
    variants = args.variants
    workload, n, x, y = prepared(args)
    copies = [Loop(x, y, workload) for _ in range(1 if args.shared else len(variants))]
    walls = {v: [] for v in variants}
    outside = {v: [] for v in variants}
    g = torch.Generator().manual_seed(0)
    shuffler = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        records = Path(tmp) / "records.jsonl"
        for r in range(args.warmup + args.rounds):
            order = torch.randperm(n, generator=g)
            dealt = shuffler.sample(copies, len(copies)) * (len(variants) if args.shared else 1)
            for variant in shuffler.sample(variants, len(variants)):
                seconds, total = epoch(variant, dealt[variants.index(variant)], order, records)
                if r >= args.warmup:
                    walls[variant].append(seconds)
                    outside[variant].append(total)
            if r >= args.warmup and not args.quiet:
                print(f"round {r - args.warmup}: " + "  ".join(f"{v} {walls[v][-1]:.4f} s" for v in variants))
    return summarize(args, workload, n, variants, walls, outside)


def measure_steps(args) -> dict:
    """The rounds of one process in the step-interleaved design, on one model.

    Each round runs one epoch per variant, in a shuffled order; in each epoch the steps alternate between the
    variant's body and the bare body (ABBA), so the two sides of a pair run a millisecond apart, in one
    process, on the same tensors. An epoch's figure is the ratio of the two sides' summed step seconds.
    """
    variants = args.variants[1:]
    workload, n, x, y = prepared(args)
    loop = Loop(x, y, workload)
    sums = {v: [] for v in variants}
    g = torch.Generator().manual_seed(0)
    shuffler = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        records = Path(tmp) / "records.jsonl"
        for r in range(args.warmup + args.rounds):
            order = torch.randperm(n, generator=g)
            for variant in shuffler.sample(variants, len(variants)):
                a, b = step_epoch(variant, loop, order, shuffler.randrange(2), records)
                if r >= args.warmup:
                    sums[variant].append([a, b])
            if r >= args.warmup and not args.quiet:
                print(
                    f"round {r - args.warmup}: "
                    + "  ".join(f"{v} {sums[v][-1][0] / sums[v][-1][1] - 1:+.2%}" for v in variants)
                )
    return summarize_steps(args, workload, n, step_pairs(n, workload.batch_size), sums)


def replicate(args) -> dict:
    """``--processes N``: the same benchmark in N fresh processes, one after another; the process is the unit.

    Two processes of the same code differ (memory layout, tensor addresses) by more than one process's
    interval says, so each figure is the mean over processes of the process's own median, with a Student-t
    95% interval over the processes (each process's figures are kept in ``processes``).
    """
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.processes):
            out = Path(tmp) / f"process-{i}.json"
            command = [sys.executable, __file__, *child_options(args), "--quiet", "--out", str(out)]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"record_overhead: process {i} failed: {done.stderr.strip()[-500:]}")
            results.append(json.loads(out.read_text()))
            on = results[-1].get("on_overhead")
            print(f"process {i}: " + (f"recording on {on['median']:+.2%}" if on else "done"), flush=True)
    combined = {k: v for k, v in results[0].items() if k not in ("walls", "walls_with_epoch_end", "step_sums")}
    combined["processes"] = results
    combined["unit"] = f"{args.processes} processes of {args.rounds} rounds each"
    for key in [k for k, v in results[0].items() if isinstance(v, dict) and "median" in v]:
        combined[key] = across([r[key]["median"] for r in results], args.rounds)
    combined["calls"] = {k: float(np.median([r["calls"][k] for r in results])) for k in results[0]["calls"]}
    if "epoch_end_seconds" in combined:
        combined["epoch_end_seconds"] = float(np.median([r["epoch_end_seconds"] for r in results]))
    return combined


def child_options(args) -> list:
    """The options of one process of :func:`replicate`: the parent's, but one process and no output of its own."""
    options = ["--rounds", str(args.rounds), "--warmup", str(args.warmup), "--batch-size", str(args.batch_size)]
    options += ["--subset", str(args.subset), "--variants", ",".join(args.variants), "--design", args.design]
    options += ["--data-dir", args.data_dir] if args.data_dir else []
    options += ["--threads", str(args.threads)] if args.threads else []
    return options + (["--shared"] if args.shared else [])


def across(medians: list, rounds: int) -> dict:
    """The mean of the processes' medians (under ``median``, as one process's) with its Student-t 95% interval."""
    x = np.asarray(medians, dtype=float)
    mean = float(x.mean())
    low, high = (
        scipy_stats.t.interval(0.95, len(x) - 1, loc=mean, scale=scipy_stats.sem(x)) if len(x) > 1 else (np.nan,) * 2
    )
    return {"median": mean, "low": float(low), "high": float(high), "rounds": rounds, "processes": len(x)}


LABELS = {
    "on": "recording on",
    "scopes": "recording on without record.loss",
    "off": "recording off",
    "offscopes": "recording off without record.loss",
    "fetched": "recording on, scopes fetched before the loop",
    "fetchedoff": "recording off, scopes fetched before the loop",
    "withs": "recording off, scopes fetched before the loop, without record.loss",
    "again": "A/A (plain again vs plain)",
}
"""What each variant's paired figure is called in the output (its key in the JSON: :func:`key`)."""


def key(variant: str) -> str:
    """The JSON key of a variant's paired figure: ``<variant>_overhead``, and ``aa_difference`` for ``again``."""
    return "aa_difference" if variant == "again" else f"{variant}_overhead"


def chosen(parser, text: str) -> list:
    """The variants named in ``--variants`` (``plain`` first, always); an unknown one is a usage error."""
    names = [v.strip() for v in text.split(",") if v.strip()]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        parser.error(f"--variants: unknown {', '.join(unknown)} (choose from {', '.join(VARIANTS)})")
    return ["plain"] + [v for v in VARIANTS if v in names and v != "plain"]


def header(args, workload: Workload, n: int, step_seconds: float) -> dict:
    """What both designs' summaries start with: the workload, the direct per-step costs, the machine."""
    costs = call_costs()
    return {
        "workload": {"name": "mnist-mlp", "loop": "store", "batch_size": workload.batch_size, "samples": n},
        "threads": workload.threads,
        "rounds": args.rounds,
        "calls": {
            **costs,
            "plain_step_seconds": step_seconds,
            "on_share_of_step": costs["on_seconds_per_step"] / step_seconds,
            "off_share_of_step": costs["off_seconds_per_step"] / step_seconds,
        },
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "loadavg": os.getloadavg(),
        },
    }


def summarize(args, workload: Workload, n: int, variants: list, walls: dict, outside: dict) -> dict:
    """The figures of one run as a JSON-able dict: paired intervals per variant, direct costs, the raw walls."""
    plain = np.asarray(walls["plain"])
    steps = -(-n // workload.batch_size)
    result = {
        **header(args, workload, n, float(np.median(plain)) / steps),
        "order": "shuffled each round (seeded)",
        "steps_per_epoch": steps,
        "median_epoch_seconds": {v: float(np.median(walls[v])) for v in variants},
        "walls": walls,
        "walls_with_epoch_end": outside,
    }
    for v in variants[1:]:
        result[key(v)] = interval(np.asarray(walls[v]) / plain)
    if "on" in variants:
        result["on_overhead_with_epoch_end"] = interval(np.asarray(outside["on"]) / np.asarray(outside["plain"]))
        result["epoch_end_seconds"] = float(np.median(np.asarray(outside["on"]) - np.asarray(walls["on"])))
    return result


def summarize_steps(args, workload: Workload, n: int, pairs: int, sums: dict) -> dict:
    """The figures of a step-interleaved run: per variant, the paired ratios of its epochs' two sides."""
    bare = np.asarray([b for epochs in sums.values() for _, b in epochs])
    result = {
        **header(args, workload, n, float(np.median(bare)) / pairs),
        "design": "steps: each epoch alternates the variant's steps with bare ones (ABBA), one model",
        "order": "variants shuffled each round (seeded)",
        "step_pairs_per_epoch": pairs,
        "step_sums": sums,
    }
    for variant, epochs in sums.items():
        result[key(variant)] = interval([a / b for a, b in epochs])
    return result


def report(result: dict) -> None:
    """Print the figures of :func:`summarize` (one line per variant, then the direct per-step costs)."""
    for variant, label in LABELS.items():
        est = result.get(key(variant))
        if est is not None:
            unit = f"{est['rounds']} paired rounds"
            if "processes" in est:
                unit = f"mean of {est['processes']} processes' medians of {est['rounds']} paired rounds, t interval"
            print(f"{label}: {est['median']:+.2%} of the epoch (95% CI {est['low']:+.2%} … {est['high']:+.2%}, {unit})")
    end = result.get("on_overhead_with_epoch_end")
    if end is not None:
        print(
            f"recording on, counting the recorder's work at the epoch's end too "
            f"({result['epoch_end_seconds'] * 1e3:.1f} ms between epochs): {end['median']:+.2%} "
            f"(95% CI {end['low']:+.2%} … {end['high']:+.2%})"
        )
    calls, step = result["calls"], result["calls"]["plain_step_seconds"]
    print(
        f"per step, measured directly: on {calls['on_seconds_per_step'] * 1e6:.2f} µs "
        f"({calls['on_share_of_step']:.3%} of a {step * 1e3:.2f} ms step), off "
        f"{calls['off_seconds_per_step'] * 1e9:.0f} ns ({calls['off_share_of_step']:.4%})"
    )
    print(f"load average during the run: {result['machine']['loadavg']} (shared machine: other work ran too)")


if __name__ == "__main__":
    main()
