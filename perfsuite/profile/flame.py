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

* ``<impl>.svg``, ``<impl>.speedscope.json``, ``<impl>.collapsed.txt`` — py-spy's own outputs
  (the raw evidence: every frame from the process's bootstrap down);
* ``<impl>.phases.svg``, ``<impl>.<phase>.svg``, ``<impl>.phases.collapsed.txt``,
  ``<impl>.phases.speedscope.json`` — the same samples with the bootstrap cut and
  the phases as the first towers under ``epoch``, whole and one phase at a time
  (:mod:`perfsuite.profile.phaseflames`);
* ``diff-A-B.svg`` and ``diff-A-B.folded.txt`` for every ``--diff A,B``: B's
  phase-rooted flame graph coloured by the change of each frame's share from A;
* ``<impl>.shares.json`` — samples and share per phase (and ``other``) from the
  collapsed stacks, the timer shares of the *same* epochs, their difference in
  percentage points, and the sampling overhead;
* ``shares.csv`` — the agreement table of every implementation;
* ``overhead.csv`` — wall and phase seconds of every unsampled and sampled epoch.

``perfsuite flame --from RUN_DIR`` draws the phase and differential graphs
again from a finished run's collapsed stacks, without sampling.

The run folder's ``epochs.csv`` holds the warm-up epochs and the epochs
sampled for the collapsed stacks (the ones the shares are computed from).
The overhead of sampling is the median sampled epoch over the median
unsampled epoch, minus one, over all three stretches of the same worker.
"""

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from perfsuite.analysis.stats import median
from perfsuite.core.errors import UsageError
from perfsuite.core.interface import PHASES, is_fused
from perfsuite.profile import folded, phaseflames, pyspy, stacks
from perfsuite.profile.session import ProfileRun
from perfsuite.profile.worker import WorkerClient, WorkerFailure
from perfsuite.render.report import write_report
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
    diffs: tuple = ()


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
    collapsed = stacks.read_collapsed(segments[0].path)
    payload = shares_payload(spec.name, segments, collapsed, attribution, opts, is_fused(spec.cls))
    return payload, epoch_rows(spec.name, segments), folded.phase_rooted(collapsed, attribution)


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


def shares_payload(name: str, segments, collapsed, attribution, opts: FlameOptions, fused: bool) -> dict:
    """Sampled vs timer shares of the collapsed-stack stretch (``collapsed``), and the overhead, as written to JSON."""
    raw = segments[0]
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
    diffs = diff_pairs(args.diff)
    binary = pyspy.find_pyspy()
    return FlameOptions(binary, args.rate, args.native, args.epochs, args.warmup, pyspy.sampler_nice(), diffs)


def diff_pairs(values) -> tuple:
    """``(A, B)`` of every ``--diff A,B`` value: two different implementation names."""
    pairs = []
    for value in values or ():
        names = [n.strip() for n in value.split(",")]
        if len(names) != 2 or not all(names):
            raise UsageError(f"--diff {value}: expected two implementation names, A,B (B drawn against A)")
        if names[0] == names[1]:
            raise UsageError(f"--diff {value}: compares {names[0]} with itself; name two different implementations")
        pairs.append(tuple(names))
    return tuple(pairs)


def check_diffs(pairs, names, where: str = "sampled") -> None:
    """Every name of ``--diff`` must be one of the implementations ``names`` (those ``where`` says)."""
    for pair in pairs:
        unknown = [n for n in pair if n not in names]
        if unknown:
            raise UsageError(
                f"--diff {','.join(pair)}: {' and '.join(unknown)} not among the implementations {where} "
                f"({', '.join(names)})"
            )


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
    payloads, rows, failures, rooted = {}, [], [], {}
    with run.recording(len(run.impls) * len(pyspy.FORMATS)):
        for index, spec in run.available():
            try:
                payload, epochs, rooted[spec.name] = profile_impl(run, spec, opts, flame_dir)
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
    notes = draw_graphs(flame_dir, payloads, rooted)
    run.meta["profile"]["diffs"] = draw_diffs(flame_dir, opts.diffs, rooted, notes, run.meta["implementations"])
    run.save_meta()
    for note in dict.fromkeys(notes):
        run.progress.note(f"perfsuite: {note}")
    write_tables(flame_dir, payloads, rows)
    return payloads, failures


def draw_graphs(flame_dir: Path, payloads: dict, rooted: dict) -> list:
    """Phase flame graphs of every implementation, named in (and saved with) its shares payload; the notes."""
    notes = []
    for name, payload in payloads.items():
        payload["graphs"] = phaseflames.write_phase_graphs(flame_dir, name, rooted[name])
        notes.extend(payload["graphs"]["notes"])
        write_json(flame_dir / f"{name}.shares.json", payload)
    return notes


def draw_diffs(flame_dir: Path, pairs, rooted: dict, notes: list, statuses: dict) -> list:
    """The differential flame graph of each ``(A, B)`` whose two sides were sampled; the others become notes."""
    entries = []
    for before, after in pairs:
        absent = [n for n in (before, after) if n not in rooted]
        if absent:
            why = ", ".join(f"{n} {statuses.get(n, {}).get('status', 'not sampled')}" for n in absent)
            notes.append(f"--diff {before},{after}: not drawn ({why})")
            continue
        entry = phaseflames.write_diff(flame_dir, before, after, rooted)
        notes.extend(entry["notes"])
        entries.append(entry)
    return entries


def read_payload(path: Path) -> dict:
    """A ``<impl>.shares.json`` this command wrote, with what a redraw needs; one-line error otherwise."""
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read it ({exc})") from exc
    if not _redrawable(payload):
        raise UsageError(f"{path}: not written by perfsuite flame (needs impl, files.raw and attribution)")
    return payload


def _redrawable(payload) -> bool:
    """Whether a shares payload names its implementation, its collapsed stacks and its attribution rules."""
    if not isinstance(payload, dict):
        return False
    files, attribution = payload.get("files"), payload.get("attribution")
    return (
        isinstance(payload.get("impl"), str)
        and isinstance(files, dict)
        and "raw" in files
        and isinstance(attribution, dict)
        and {"harness_lines", "epoch_lines"} <= attribution.keys()
    )


def redraw(folder, pairs) -> list:
    """Draw the phase and differential flame graphs again from a run folder's collapsed stacks; the notes.

    Reads every ``flame/<impl>.shares.json`` (its ``attribution`` and the
    name of its collapsed-stack file), rewrites the phase-rooted files and the
    payloads, draws ``pairs`` and writes the report again.
    """
    flame_dir = Path(folder) / "flame"
    payloads = {}
    for path in sorted(flame_dir.glob("*.shares.json")):
        payload = read_payload(path)
        payloads[payload["impl"]] = payload
    if not payloads:
        raise UsageError(f"--from {folder}: no flame/*.shares.json in it (a perfsuite flame run folder?)")
    check_diffs(pairs, list(payloads), f"in {flame_dir}")
    rooted = {}
    for name, payload in payloads.items():
        collapsed = stacks.read_collapsed(flame_dir / payload["files"]["raw"])
        rooted[name] = folded.phase_rooted(collapsed, stacks.Attribution.from_dict(payload["attribution"]))
    notes = draw_graphs(flame_dir, payloads, rooted)
    draw_diffs(flame_dir, pairs, rooted, notes, {})
    write_report(Path(folder))
    return list(dict.fromkeys(notes))
