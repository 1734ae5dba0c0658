"""``perfsuite flame``: py-spy flame graphs per implementation, with a check of the timers.

Method, per implementation, in one dedicated worker process
(:mod:`perfsuite.profile.worker`):

1. set up, run the warm-up epochs (timed, not sampled);
2. for each py-spy output format (``raw`` collapsed stacks, ``flamegraph``
   SVG, ``speedscope`` JSON): run N epochs *unsampled*, then attach
   ``py-spy record --pid`` (:mod:`perfsuite.profile.pyspy`), wait until it samples,
   run N epochs *sampled* in one command, stop py-spy.

py-spy is attached after warm-up rather than recording the whole process,
so start-up, data loading, compilation and warm-up neither fill the flame
graph nor pay the sampling overhead. Samples outside the epochs (the worker
waiting for its next command while py-spy attaches or detaches) are cut by
the harness frame ``time_epoch``, which must be in a counted stack
(:mod:`perfsuite.profile.stacks`), so the sampled shares cover exactly the epochs
whose timer records are kept. py-spy writes one format per recording, hence
one sampled stretch per format.

What is written (``RUN_DIR/flame/``, the convention of
:mod:`perfsuite.results.artifacts`):

* ``<impl>.svg``, ``<impl>.speedscope.json``, ``<impl>.collapsed.txt`` — py-spy's own outputs;
* ``<impl>.shares.json`` — samples and share per phase (and ``other``) from the
  collapsed stacks, the timer shares of the *same* epochs, their difference in
  percentage points, and the sampling overhead;
* ``shares.csv`` — the agreement table of every implementation;
* ``overhead.csv`` — wall and phase seconds of every unsampled and sampled epoch.

The run folder's ``epochs.csv`` holds the warm-up epochs and the epochs
sampled for the collapsed stacks (the ones the shares are computed from).
The overhead of sampling is the median sampled epoch over the median
unsampled epoch, minus one, over all three stretches of the same worker.
"""

import csv
from dataclasses import dataclass
from pathlib import Path

from perfsuite.analysis.stats import median
from perfsuite.core.errors import UsageError
from perfsuite.core.interface import PHASES, is_fused
from perfsuite.profile import pyspy, stacks
from perfsuite.profile.session import ProfileRun
from perfsuite.profile.worker import WorkerClient, WorkerFailure
from perfsuite.results.writer import write_json

SUFFIX = {"raw": ".collapsed.txt", "flamegraph": ".svg", "speedscope": ".speedscope.json"}
DEFAULT_RATE = 250
DEFAULT_EPOCHS = 3
PHASE_COLUMNS = [f"{p}_seconds" for p in PHASES]


@dataclass
class Segment:
    """N unsampled epochs followed by N epochs sampled into one py-spy output."""

    fmt: str
    path: Path
    plain: list
    sampled: list


@dataclass
class FlameOptions:
    """What the command line asked for."""

    binary: str
    rate: int
    native: bool
    epochs: int
    warmup: int
    nice: int = 0


def sample_segment(client: WorkerClient, opts: FlameOptions, fmt: str, path: Path, first: int) -> Segment:
    """Run ``opts.epochs`` epochs unsampled, then as many with py-spy recording ``fmt`` into ``path``."""
    plain = client.call("epochs", first, opts.epochs, False)
    recorder = pyspy.Recorder(opts.binary, client.pid, fmt, path, opts.rate, opts.native, opts.nice)
    recorder.start()
    try:
        sampled = client.call("epochs", first + opts.epochs, opts.epochs, False)
    except BaseException:
        recorder.kill()
        raise
    recorder.stop()
    return Segment(fmt, path, plain, sampled)


def profile_impl(run: ProfileRun, spec, opts: FlameOptions, flame_dir: Path) -> tuple:
    """Warm up, then record every format for one implementation; returns its shares payload and epoch rows."""
    client, ready = run.start_worker(spec)
    try:
        run.say(f"{spec.name} · {opts.warmup} warm-up epoch(s)")
        run.record(spec.name, client.call("epochs", 0, opts.warmup, True))
        segments = []
        for index, fmt in enumerate(pyspy.FORMATS):
            run.say(f"{spec.name} · {opts.epochs} unsampled + {opts.epochs} sampled epochs ({fmt})")
            first = opts.warmup + 2 * opts.epochs * index
            segments.append(sample_segment(client, opts, fmt, flame_dir / f"{spec.name}{SUFFIX[fmt]}", first))
            run.progress.advance()
    finally:
        client.close()
    run.record(spec.name, segments[0].sampled)
    attribution = stacks.Attribution.from_dict(ready["attribution"])
    return shares_payload(spec.name, segments, attribution, opts, is_fused(spec.cls)), epoch_rows(spec.name, segments)


def _median_wall(records) -> float:
    return median([r.wall for r in records])


def overhead(segments) -> dict:
    """Sampled vs unsampled epoch time, overall and per py-spy format."""

    def entry(plain, sampled):
        """Median epochs without and with py-spy, and the relative difference in percent."""
        a, b = _median_wall(plain), _median_wall(sampled)
        return {"unsampled_epoch_median_s": a, "sampled_epoch_median_s": b, "overhead_pct": 100.0 * (b / a - 1.0)}

    total = entry([r for s in segments for r in s.plain], [r for s in segments for r in s.sampled])
    return {
        **total,
        "epochs_per_stretch": len(segments[0].plain),
        "per_format": {s.fmt: entry(s.plain, s.sampled) for s in segments},
    }


def shares_payload(name: str, segments, attribution, opts: FlameOptions, fused: bool) -> dict:
    """Sampled vs timer shares of the collapsed-stack stretch, and the overhead, as written to JSON."""
    raw = segments[0]
    collapsed = stacks.read_collapsed(raw.path)
    counts = stacks.count_samples(collapsed, attribution)
    sampled, timers = counts.shares(), stacks.timer_shares(raw.sampled)
    rows = stacks.agreement(sampled, timers)
    diffs = [abs(r["difference_pp"]) for r in rows if r["difference_pp"] is not None]
    note = ""
    if fused and not opts.native:
        note = "fused implementation: its phases are native or compiled frames, visible only with --native"
    return {
        "impl": name,
        "source": "py-spy collapsed stacks",
        "rate_hz": opts.rate,
        "native": opts.native,
        "sampler_nice": opts.nice,
        "fused": fused,
        "note": note,
        "samples": counts.inside,
        "samples_outside_epochs": counts.outside,
        "counts": counts.counts,
        "shares": sampled,
        "timer_shares": timers,
        "agreement": rows,
        "max_abs_difference_pp": max(diffs) if diffs else None,
        "epochs": [r.epoch for r in raw.sampled],
        "overhead": overhead(segments),
        "files": {s.fmt: s.path.name for s in segments},
        "attribution": attribution.to_dict(),
        "top_frames": stacks.top_frames(collapsed, attribution),
    }


def write_tables(flame_dir: Path, payloads: dict, segments_rows: list) -> None:
    """``shares.csv`` (agreement per implementation and phase) and ``overhead.csv`` (every epoch)."""
    with open(flame_dir / "shares.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["impl", "phase", "samples", "sampled_share", "timer_share", "difference_pp"])
        for name, p in payloads.items():
            for row in p["agreement"]:
                w.writerow(
                    [name, row["phase"], p["counts"][row["phase"]], row["sampled"], row["timer"], row["difference_pp"]]
                )
    with open(flame_dir / "overhead.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["impl", "format", "sampled", "epoch", "wall_seconds"] + PHASE_COLUMNS)
        w.writerows(segments_rows)


def epoch_rows(name: str, segments) -> list:
    """One ``overhead.csv`` row per unsampled and sampled epoch."""
    rows = []
    for s in segments:
        for sampled, records in ((0, s.plain), (1, s.sampled)):
            for r in records:
                rows.append([name, s.fmt, sampled, r.epoch, r.wall] + list(r.phase_totals.values()))
    return rows


def options(args) -> FlameOptions:
    """Check the flame-specific options; py-spy must be on PATH."""
    if args.rate <= 0:
        raise UsageError(f"--rate {args.rate}: must be a positive number of samples per second")
    if args.epochs < 1:
        raise UsageError(f"--epochs {args.epochs}: sample at least one epoch")
    if args.warmup < 0:
        raise UsageError(f"--warmup {args.warmup}: cannot be negative")
    return FlameOptions(pyspy.find_pyspy(), args.rate, args.native, args.epochs, args.warmup, pyspy.sampler_nice())


def profile_facts(opts: FlameOptions) -> dict:
    """What ``meta.json`` records of a flame run's sampling."""
    return {
        "rate_hz": opts.rate,
        "native": opts.native,
        "sampled_epochs": opts.epochs,
        "sampler_nice": opts.nice,
        "ptrace_scope": pyspy.ptrace_scope(),
    }


def record_flames(run: ProfileRun, opts: FlameOptions) -> tuple:
    """Sample every available implementation of ``run`` into ``flame/``; ``(payloads, failures)``.

    Each implementation's shares go to ``flame/<impl>.shares.json`` and the
    epochs of every segment to ``flame/epochs.csv``. When py-spy cannot record
    here at all, the remaining implementations are marked ``not run``.
    """
    flame_dir = run.folder / "flame"
    flame_dir.mkdir()
    payloads, rows, failures = {}, [], []
    with run.recording(len(run.impls) * len(pyspy.FORMATS)):
        for index, spec in run.available():
            try:
                payload, epochs = profile_impl(run, spec, opts, flame_dir)
            except pyspy.SamplerUnavailable as exc:
                run.set_status(spec.name, spec.spec, "failed", str(exc))
                for rest in run.impls[index + 1 :]:
                    run.set_status(rest.name, rest.spec, "not run", "py-spy cannot record here")
                failures.append(f"{spec.name}: {exc}")
                break
            except (WorkerFailure, pyspy.SamplerError) as exc:
                run.set_status(spec.name, spec.spec, "failed", str(exc))
                failures.append(f"{spec.name}: {exc}")
                continue
            payloads[spec.name] = payload
            rows.extend(epochs)
            run.set_status(spec.name, spec.spec, "ok")
    for name, payload in payloads.items():
        write_json(flame_dir / f"{name}.shares.json", payload)
    write_tables(flame_dir, payloads, rows)
    return payloads, failures
