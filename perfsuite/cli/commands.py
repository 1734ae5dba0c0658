"""What each ``perfsuite`` subcommand does, once its options are parsed.

Every handler takes the parsed options, calls the layers below and prints
what they found; bad input raises :class:`~perfsuite.core.errors.UsageError`
and failures :class:`~perfsuite.core.errors.RunFailure`, which
:func:`perfsuite.cli.main.main` turns into one line and an exit status.
"""

import random
import sys
from dataclasses import asdict
from functools import partial
from pathlib import Path

from perfsuite.analysis import benchjson
from perfsuite.analysis.ab import Pair, ab_rows, write_ab
from perfsuite.analysis.check import check_workload, verdicts
from perfsuite.analysis.compare import compare_runs, metadata_warnings, parse_threshold
from perfsuite.analysis.memory import compare_memory, compare_pairs, memory_by_phase
from perfsuite.analysis.summary import analyse_and_summarise, diverged_notes, write_summary
from perfsuite.core import data, registry, workloads
from perfsuite.core.errors import PerfsuiteError, RunFailure, UsageError
from perfsuite.core.options import fresh_workers_from, sampling_from, timeout_from, workload_from
from perfsuite.measure import sides
from perfsuite.measure import sweep as sweep_driver
from perfsuite.measure.measurement import measure
from perfsuite.measure.runner import Runner
from perfsuite.profile import flame as flame_mod
from perfsuite.profile import memory as memory_mod
from perfsuite.profile import script as script_mod
from perfsuite.profile import trace as trace_mod
from perfsuite.profile.session import ProfileRun
from perfsuite.render import terminal
from perfsuite.render.compare_page import write_compare_page
from perfsuite.render.example import write_example
from perfsuite.render.progress import RunProgress
from perfsuite.render.progress import console as make_console
from perfsuite.render.report import write_report
from perfsuite.render.sweep_page import write_sweep_page
from perfsuite.results import writer
from perfsuite.results.reader import is_sweep, load_run, read_meta, read_summary, read_sweep

HARNESS_NOTE = "both sides ran under the current perfsuite's timer, runner and writer: ab compares implementation code"


def _specs(text) -> list:
    return registry.parse_list(text) if text else sorted(registry.builtin())


def _prepare(args, **workload_overrides):
    """Validate everything the user gave before any worker starts."""
    workload = workload_from(args, **workload_overrides)
    timeout = timeout_from(args)
    dataset = data.resolve(args.dataset, args.data_dir)
    impls = workloads.resolve_impls(_specs(args.impls), workload, explicit=bool(args.impls))
    progress = RunProgress(quiet=args.quiet)
    if dataset.note:
        progress.note(f"perfsuite: {dataset.note}")
    return workload, dataset, impls, progress, timeout


def run(args) -> int:
    """``perfsuite run``: measure, append every epoch to disk, summarise, report."""
    workload, dataset, impls, progress, timeout = _prepare(args)
    options = {
        "with_roofline": not args.no_roofline,
        "sampling": sampling_from(args, workload),
        "fresh_workers": fresh_workers_from(args, workload),
    }
    folder, handles = _measured(args, workload, dataset, impls, progress, timeout, **options)
    page = _publish(folder)
    summary = read_summary(folder)
    terminal.print_table(summary)
    terminal.print_sampling(read_meta(folder).get("sampling"))
    progress.note(f"perfsuite: noise: {summary['noise']['sentence']}")
    host = summary.get("host_language", {}).get("sentence")
    if host:
        progress.note(f"perfsuite: host language: {host}")
    for line in diverged_notes(summary):
        progress.note(line)
    failures = [f"{h.name} failed: {h.reason}" for h in handles if h.status == "failed"]
    return _finished(folder, page, failures, "results of the others in")


def _measured(args, workload, dataset, impls, progress, timeout, **options) -> tuple:
    """Measure into a new run folder (``--out``, else ``REPORTS/<run-id>`` with ``latest`` pointing at it).

    ``options`` go to :func:`~perfsuite.measure.measurement.measure`. On Ctrl-C
    or SIGTERM every finished epoch is kept and their report is written before
    the interruption goes on. Returns ``(folder, handles)``.
    """
    folder = writer.create_run_dir(args.out, args.reports)
    started = (lambda: writer.point_latest(folder)) if args.out is None else None
    try:
        _, handles = measure(folder, workload, dataset, impls, progress, timeout, on_started=started, **options)
    except KeyboardInterrupt:
        progress.note(f"perfsuite: interrupted; every finished epoch is kept in {folder}")
        _report_of_interrupted(folder, progress)
        raise
    return folder, handles


def _publish(folder) -> Path:
    """``summary.json`` and ``index.html`` of a finished run; the summary alone when the report cannot be made."""
    try:
        return write_report(folder)
    except BaseException:
        write_summary(folder)
        raise


def _report_of_interrupted(folder, progress) -> None:
    """Write the report of an interrupted run from the epochs it finished (a second Ctrl-C skips it)."""
    try:
        progress.note(f"perfsuite: report of the finished epochs: {_publish(folder).resolve()}")
    except KeyboardInterrupt:
        progress.note(f"perfsuite: report skipped; make it with: perfsuite report {folder}")
    except PerfsuiteError as exc:
        progress.note(f"perfsuite: no report: {exc}")


def sweep(args) -> int:
    """``perfsuite sweep``: measure every point, write the sweep folder and its page."""
    plan = sweep_driver.plan(args)
    progress = RunProgress(quiet=args.quiet)
    if plan.dataset.note:
        progress.note(f"perfsuite: {plan.dataset.note}")
    folder = writer.create_run_dir(args.out, args.reports)
    measurer = {}
    if args.memory:
        opts = memory_mod.MemoryOptions(memory_mod.DEFAULT_EPOCHS, warmup=1, memray=False)
        measurer["measure_point"] = memory_mod.sweep_measurer(args, opts)
    failures = sweep_driver.run_sweep(folder, plan, args, progress, **measurer)
    page = write_sweep_page(folder)
    terminal.print_sweep(folder)
    memory = read_sweep(folder).get("analysis", {}).get("memory")
    if memory:
        make_console().print(terminal.sweep_memory_table(memory))
    return _finished(folder, page, failures, "results of the others in")


def check(args) -> int:
    """``perfsuite check``: one epoch of each implementation vs the reference."""
    workload, dataset, impls, progress, timeout = _prepare(args)
    workload = check_workload(workload)
    reference = workloads.of(workload).reference
    if reference not in {i.name for i in impls}:
        impls = workloads.resolve_impls([reference], workload, explicit=True) + impls
    records = {}
    runner = Runner(
        workload,
        dataset,
        impls,
        sink=lambda name, record: records.__setitem__(name, record),
        progress=progress,
        timeout=timeout,
    )
    handles = runner.run()
    if reference not in records:
        ref = next(h for h in handles if h.name == reference)
        raise RunFailure(f"the reference {reference} did not run: {ref.reason}")
    failed = {h.name: h.reason for h in handles if h.status == "failed"}
    skipped = {h.name: h.reason for h in handles if h.status == "unavailable"}
    found = verdicts(records, failed, reference)
    terminal.print_verdicts(found, skipped, records[reference], dataset, reference, workload.name)
    bad = [v for v in found if not v.ok]
    for v in bad:
        print(f"perfsuite: {v.impl} diverged from {reference}: {v.problem}", file=sys.stderr)
    return 1 if bad else 0


def list_impls(args) -> int:
    """``perfsuite list``: every registered implementation and whether it runs here."""
    rows = []
    for name, ep in sorted(registry.builtin().items()):
        try:
            spec = registry.resolve([name])[0]
            reason = spec.unavailable_reason
            rows.append((name, "no" if reason else "yes", reason or getattr(spec.cls, "description", ""), ep.value))
        except PerfsuiteError as exc:
            rows.append((name, "no", f"cannot load: {exc}", ep.value))
    terminal.print_impls(rows)
    _list_workloads()
    return 0


def _list_workloads() -> None:
    """``perfsuite list``'s second part: the workloads and the implementations × workloads matrix."""
    definitions, rows = [], []
    for name in workloads.names():
        try:
            definitions.append(workloads.load(name))
        except PerfsuiteError as exc:
            rows.append((name, "", f"cannot load: {exc}"))
    rows = [(d.name, f"{d.default_subset:g}", d.description) for d in definitions] + rows
    matrix = {}
    for name in sorted(registry.builtin()):
        try:
            specs = [registry.resolve([name], d.name)[0] for d in definitions]
        except PerfsuiteError as exc:
            matrix[name] = {d.name: f"cannot load: {exc}" for d in definitions}
            continue
        matrix[name] = {s.workload: s.unavailable_reason for s in specs}
    for cells in matrix.values():
        cells.update({row[0]: "the workload does not load" for row in rows[len(definitions) :]})
    terminal.print_workload_matrix(rows, matrix)


def summary(args) -> int:
    """``perfsuite summary RUN_DIR``: recompute the summary from the raw files."""
    summary, _, diagnosis = analyse_and_summarise(Path(args.run_dir))
    terminal.print_table(summary)
    print(f"noise: {diagnosis.sentence}")
    return 0


def report(args) -> int:
    """``perfsuite report RUN_DIR [--baseline NAME] [--pytest-benchmark FILE ...]``: write and name the report.

    Each ``--pytest-benchmark`` file is validated and copied into the run
    folder first (:func:`perfsuite.analysis.benchjson.attach`), where the report finds it.
    """
    example = getattr(args, "example", None)
    if example and is_sweep(args.run_dir):
        raise UsageError(f"--example: {args.run_dir} is a sweep folder; give a run folder")
    for source in getattr(args, "pytest_benchmark", None) or []:
        print(f"pytest-benchmark: {benchjson.attach(args.run_dir, source)}")
    if is_sweep(args.run_dir):
        path = write_sweep_page(args.run_dir)
    else:
        path = write_report(Path(args.run_dir), args.baseline)
    print(f"report: {path.resolve()}")
    if example:
        print(f"example: {write_example(args.run_dir, example).resolve()}")
    return 0


def compare(args) -> int:
    """``perfsuite compare BASE_DIR NEW_DIR [--reference NAME | --raw] [--threshold 5%] [--alpha A] [--html FILE]``.

    Exit 1 only when a row is ``slower``; ``inconclusive`` rows are listed and do not fail.
    """
    threshold = parse_threshold(args.threshold)
    _check_alpha(args.alpha)
    base, new = load_run(args.base_dir), load_run(args.new_dir)
    rows, notes = compare_runs(base, new, threshold, args.alpha, reference=args.reference, raw=args.raw)
    warnings = metadata_warnings(base, new) + notes
    for text in warnings:
        print(f"perfsuite: warning: {text}", file=sys.stderr)
    mode = "raw seconds" if args.raw else f"calibrated: ratios to {args.reference} within each run"
    title = f"{new.folder} vs {base.folder} · {mode} · margin ±{threshold * 100:g}% · alpha {args.alpha:g}"
    make_console().print(terminal.compare_table(rows, title, threshold, args.alpha))
    if args.html:
        write_compare_page(Path(args.html), rows, warnings, base, new, threshold, alpha=args.alpha, mode=mode)
        print(f"comparison: {Path(args.html).resolve()}")
    _gate(rows, threshold, _memory_gate(base, new, threshold))
    return 0


def _memory_gate(base, new, threshold: float) -> list:
    """Compare the memory figures of two ``perfsuite memory`` runs (printed); the ones larger beyond the margin."""
    before, after = memory_by_phase(base), memory_by_phase(new)
    if before is None or after is None:
        return []
    rows = compare_memory(before, after, threshold)
    title = f"{new.folder} vs {base.folder} · tensor memory · margin ±{threshold * 100:g}%"
    make_console().print(terminal.memory_compare_table(rows, title))
    return [f"{r.impl} {r.quantity} ×{r.ratio:.3f}" for r in rows if r.verdict == "larger"]


def _gate(rows: list, threshold: float, larger: list = ()) -> None:
    """List the inconclusive rows; raise the ``slower`` ones and the ``larger`` memory figures as one line
    (exit 1), else say there are none."""
    inconclusive = [f"{r.impl} {r.quantity}" for r in rows if r.verdict == "inconclusive"]
    if inconclusive:
        print(f"inconclusive, needs more epochs (does not fail the gate): {', '.join(inconclusive)}")
    slower = [
        f"{r.impl} {r.quantity} ×{r.ratio:.3f} (95% CI {r.low:.3f}–{r.high:.3f}, "
        f"p={r.p_value:.2g}, adjusted {r.p_adjusted:.2g})"
        for r in rows
        if r.verdict == "slower"
    ]
    failures = []
    if slower:
        failures.append(f"significant slowdown beyond {threshold:.0%}: " + "; ".join(slower))
    if larger:
        failures.append(f"more tensor memory beyond {threshold:.0%}: " + "; ".join(larger))
    if failures:
        raise RunFailure("; ".join(failures))
    print(f"no significant slowdown beyond {threshold:.0%}")


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise UsageError(f"--alpha {alpha:g}: must be in (0, 1)")


def _ab_names(text) -> list | None:
    """The implementation names ``--impls`` gives ``ab`` (``None``: every one both sides register)."""
    if not text:
        return None
    names = registry.parse_list(text)
    specs = [n for n in names if ":" in n]
    if specs:
        raise UsageError(f"--impls {specs[0]}: perfsuite ab measures implementations the sides register; name them")
    return names


def _trainable(both: tuple, names: list, requested, workload_name: str) -> list:
    """``names`` without those a side cannot train the workload with: skipped with a note, or exit 2 if named."""
    problems = sides.unsupported(both, names, workload_name)
    if requested and problems:
        raise UsageError(next(iter(problems.values())))
    kept = [n for n in names if n not in problems]
    if not kept:
        raise UsageError(f"no implementation both sides register trains workload {workload_name}")
    for reason in problems.values():
        print(f"perfsuite: skipped {reason}", file=sys.stderr)
    return kept


def _ab_impls(both: tuple, names: list) -> tuple:
    """``(pairs, impls, folders)``: each name on both sides as ``name@base``/``name@new``, and each worker's folder."""
    pairs = [Pair(n, sides.display(n, both[0]), sides.display(n, both[1])) for n in names]
    impls, folders = [], {}
    for name in names:
        for side in both:
            shown = sides.display(name, side)
            impls.append(registry.ImplSpec(shown, side.registered()[name], None))
            folders[shown] = str(side.folder)
    return pairs, impls, folders


def ab(args) -> int:
    """``perfsuite ab BASE NEW``: both sides' implementations in one interleaved run, compared pair by pair.

    Exit 1 only when a row is ``slower`` (or a worker failed); 2 for bad input.
    """
    threshold = parse_threshold(args.threshold)
    _check_alpha(args.alpha)
    requested = _ab_names(args.impls)
    workload, timeout = workload_from(args), timeout_from(args)
    fresh = fresh_workers_from(args, workload)
    dataset = data.resolve(args.dataset, args.data_dir)
    with sides.checked_out(args.base, args.new) as both:
        names = _trainable(both, sides.choose(both, requested), requested, workload.name)
        pairs, impls, folders = _ab_impls(both, names)
        progress = RunProgress(quiet=args.quiet)
        if dataset.note:
            progress.note(f"perfsuite: {dataset.note}")
        record = {
            "sides": [s.to_dict() for s in both],
            "pairs": [asdict(p) for p in pairs],
            "order_seed": args.seed_order,
            "harness": HARNESS_NOTE,
        }
        folder, handles = _measured(
            args,
            workload,
            dataset,
            impls,
            progress,
            timeout,
            with_roofline=False,
            extra_meta={"ab": record},
            shuffle=random.Random(args.seed_order),
            sides=folders,
            fresh_workers=fresh,
        )
        memory_run = _ab_memory(args, folder, impls, folders) if args.memory else None
    page = _publish(folder)
    run_ = load_run(folder)
    measured = [p for p in pairs if p.base in run_.measured_impls and p.new in run_.measured_impls]
    failures = [f"{h.name} failed: {h.reason}" for h in handles if h.status == "failed"]
    if measured:
        result = ab_rows(run_, measured, threshold, args.alpha)
        write_ab(folder, result)
        for text in result.notes:
            print(f"perfsuite: warning: {text}", file=sys.stderr)
        title = (
            f"{_side_text(both[1])} vs {_side_text(both[0])} · paired by (round, epoch) · margin ±{threshold * 100:g}%"
        )
        make_console().print(terminal.ab_table(result, f"{title} · alpha {args.alpha:g}"))
    larger = _ab_memory_gate(memory_run, pairs, threshold) if memory_run else []
    _finished(folder, page, failures, "results of the others in")
    if not measured:
        raise RunFailure(f"no implementation has measured epochs on both sides (the run is in {folder})")
    _gate(result.rows, threshold, larger)
    return 0


def _ab_memory(args, folder: Path, impls: list, folders: dict) -> Path:
    """``ab --memory``: both sides' memory measured apart from the timing run, in ``RUN_DIR/memory-run``."""
    workload = memory_mod.capped(workload_from(args, repeats=1))
    opts = memory_mod.MemoryOptions(epochs=1, warmup=1, memray=False)
    given = {"workload": workload, "impls": impls, "sides": folders, "folder": folder / "memory-run"}
    run = ProfileRun(args, "memory", memory_mod.profile_facts(opts), **given)
    failures = memory_mod.record_memory(run, opts)
    page = run.finish("failed" if failures else "complete")
    for text in failures:
        print(f"perfsuite: warning: memory not measured for {text}", file=sys.stderr)
    print(f"memory report: {page.resolve()}")
    return run.folder


def _ab_memory_gate(folder: Path, pairs: list, threshold: float) -> list:
    """The tensor memory of each pair's two sides (printed); the figures larger on the new side beyond the margin."""
    result = memory_by_phase(load_run(folder))
    rows = compare_pairs(result, pairs, threshold) if result else []
    if rows:
        title = f"tensor memory, new vs base · margin ±{threshold * 100:g}% · {folder}"
        make_console().print(terminal.memory_compare_table(rows, title))
    return [f"{r.impl} {r.quantity} ×{r.ratio:.3f}" for r in rows if r.verdict == "larger"]


def _side_text(side) -> str:
    """``new (HEAD, 5b0d018e2f)`` or ``base (/path/to/folder)``."""
    return f"{side.label} ({side.given}, {side.commit[:10]})" if side.commit else f"{side.label} ({side.folder})"


def flame(args) -> int:
    """``perfsuite flame``: record flame graphs, compare sampled and timer shares, measure the overhead."""
    if args.from_dir:
        for note in flame_mod.redraw(args.from_dir, flame_mod.diff_pairs(args.diff)):
            print(f"perfsuite: {note}", file=sys.stderr)
        print(f"report: {(Path(args.from_dir) / 'index.html').resolve()}")
        return 0
    opts = flame_mod.options(args)
    run = ProfileRun(args, "flame", flame_mod.profile_facts(opts), check=partial(flame_mod.check_diffs, opts.diffs))
    payloads, failures = flame_mod.record_flames(run, opts)
    page = run.finish("failed" if failures else "complete")
    if payloads:
        terminal.print_flame_results(payloads)
    return _finished(run.folder, page, failures, "what was recorded is kept in")


def memory(args) -> int:
    """``perfsuite memory``: allocations and peak live bytes per phase, RSS per epoch, memray's cross-check."""
    opts = memory_mod.options(args)
    run = ProfileRun(args, "memory", memory_mod.profile_facts(opts))
    failures = memory_mod.record_memory(run, opts)
    page = run.finish("failed" if failures else "complete")
    summary = read_summary(run.folder)
    if summary.get("memory"):
        make_console().print(terminal.memory_table(summary["memory"]))
        for line in terminal.memory_lines(summary["memory"]):
            print(f"perfsuite: {line}")
    return _finished(run.folder, page, failures, "what was recorded is kept in")


def trace(args) -> int:
    """``perfsuite trace``: a Chrome trace and a per-phase top-operator table per implementation."""
    if args.top < 1:
        raise UsageError(f"--top {args.top}: show at least one operator per phase")
    if args.epochs < 1:
        raise UsageError(f"--epochs {args.epochs}: trace at least one epoch")
    run = ProfileRun(args, "trace", {"top": args.top})
    found, failures = trace_mod.record_traces(run, args.top)
    page = run.finish("failed" if failures else "complete")
    for name, result in found.items():
        terminal.print_top_ops(name, result)
    return _finished(run.folder, page, failures, "what was recorded is kept in")


def profile(args) -> int:
    """``perfsuite profile -- python train.py ARGS…``: a user's script recorded with perfsuite.record."""
    return script_mod.profile(args)


def _finished(folder: Path, page: Path, failures: list, kept: str) -> int:
    """Name the results and the report; then raise the failures as one line saying where the rest is ``kept``."""
    print(f"results: {folder}")
    print(f"report: {page.resolve()}")
    if failures:
        raise RunFailure("; ".join(failures) + f" ({kept} {folder})")
    return 0


def data_check(args) -> int:
    """``perfsuite data check``: validate the four MNIST files."""
    info = data.resolve("mnist", args.data_dir)
    print(f"MNIST OK under {info.root}: {info.n_train} training and {info.n_test} test images")
    return 0


def data_download(args) -> int:
    """``perfsuite data download``: fetch MNIST with torchvision's downloader."""
    root = args.data_dir or data.default_root()[0]
    info = data.download(root)
    print(f"MNIST downloaded and valid under {info.root}")
    return 0
