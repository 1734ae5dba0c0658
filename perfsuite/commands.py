"""What each ``perfsuite`` subcommand does, once its options are parsed."""

import sys
from pathlib import Path

from rich.table import Table

from perfsuite import data, registry, results
from perfsuite.check import REFERENCE, check_workload, verdicts
from perfsuite.cli import timeout_from, workload_from
from perfsuite.errors import PerfsuiteError, RunFailure
from perfsuite.progress import RunProgress
from perfsuite.report import write_report
from perfsuite.progress import console as make_console
from perfsuite.measurement import measure
from perfsuite.runner import Runner
from perfsuite.summary import diverged_notes, print_table, write_summary


def _specs(text) -> list:
    return registry.parse_list(text) if text else sorted(registry.builtin())


def _prepare(args, **workload_overrides):
    """Validate everything the user gave before any worker starts."""
    workload = workload_from(args, **workload_overrides)
    timeout = timeout_from(args)
    dataset = data.resolve(args.dataset, args.data_dir)
    impls = registry.resolve(_specs(args.impls))
    progress = RunProgress(quiet=args.quiet)
    if dataset.note:
        progress.note(f"perfsuite: {dataset.note}")
    return workload, dataset, impls, progress, timeout


def run(args) -> int:
    """``perfsuite run``: measure, append every epoch to disk, summarise, report."""
    workload, dataset, impls, progress, timeout = _prepare(args)
    folder = results.create_run_dir(args.out, args.reports)
    started = (lambda: results.point_latest(folder)) if args.out is None else None
    try:
        _, handles, summary = measure(folder, workload, dataset, impls, progress, timeout,
                                      with_roofline=not args.no_roofline, on_started=started)
    except KeyboardInterrupt:
        progress.note(f"perfsuite: interrupted; every finished epoch is kept in {folder}")
        _report_of_interrupted(folder, progress)
        raise
    print_table(summary)
    for line in diverged_notes(summary):
        progress.note(line)
    print(f"results: {folder}")
    print(f"report: {write_report(folder).resolve()}")
    failed = [h for h in handles if h.status == "failed"]
    if failed:
        raise RunFailure("; ".join(f"{h.name} failed: {h.reason}" for h in failed) + f" (results of the others in {folder})")
    return 0


def _report_of_interrupted(folder, progress) -> None:
    """Write the report of an interrupted run from the epochs it finished (a second Ctrl-C skips it)."""
    try:
        progress.note(f"perfsuite: report of the finished epochs: {write_report(folder).resolve()}")
    except KeyboardInterrupt:
        progress.note(f"perfsuite: report skipped; make it with: perfsuite report {folder}")
    except PerfsuiteError as exc:
        progress.note(f"perfsuite: no report: {exc}")


def check(args) -> int:
    """``perfsuite check``: one epoch of each implementation vs the reference."""
    workload, dataset, impls, progress, timeout = _prepare(args)
    workload = check_workload(workload)
    if REFERENCE not in {i.name for i in impls}:
        impls = registry.resolve([REFERENCE]) + impls
    records = {}
    runner = Runner(workload, dataset, impls, sink=lambda name, record: records.__setitem__(name, record),
                    progress=progress, timeout=timeout)
    handles = runner.run()
    if REFERENCE not in records:
        ref = next(h for h in handles if h.name == REFERENCE)
        raise RunFailure(f"the reference {REFERENCE} did not run: {ref.reason}")
    failed = {h.name: h.reason for h in handles if h.status == "failed"}
    skipped = {h.name: h.reason for h in handles if h.status == "unavailable"}
    found = verdicts(records, failed)
    _print_verdicts(found, skipped, records[REFERENCE], dataset)
    bad = [v for v in found if not v.ok]
    for v in bad:
        print(f"perfsuite: {v.impl} diverged from {REFERENCE}: {v.problem}", file=sys.stderr)
    return 1 if bad else 0


def _print_verdicts(found, skipped, reference, dataset) -> None:
    t = Table(title=f"equivalence with {REFERENCE} · one epoch · {dataset.label}")
    for col in ("implementation", "max rel. loss diff (first 100 steps)", "train acc", "acc diff (pp)", "verdict"):
        t.add_column(col)
    t.add_row(REFERENCE, "reference", f"{100 * reference['train_accuracy']:.2f}%", "", "")
    for v in found:
        t.add_row(v.impl, f"{v.max_rel_loss_diff:.2e}", f"{100 * v.train_accuracy:.2f}%",
                  f"{v.accuracy_diff_pp:.3f}", "[green]same[/green]" if v.ok else f"[red]differs[/red]: {v.problem}")
    for name, reason in skipped.items():
        t.add_row(name, "", "", "", f"skipped: {reason}")
    make_console().print(t)


def list_impls(args) -> int:
    """``perfsuite list``: every registered implementation and whether it runs here."""
    t = Table(title="implementations (entry-point group perfsuite.impls)")
    for col in ("name", "available", "description / reason", "entry point"):
        t.add_column(col)
    for name, ep in sorted(registry.builtin().items()):
        try:
            spec = registry.resolve([name])[0]
            reason = spec.unavailable_reason
            t.add_row(name, "no" if reason else "yes", reason or getattr(spec.cls, "description", ""), ep.value)
        except PerfsuiteError as exc:
            t.add_row(name, "no", f"cannot load: {exc}", ep.value)
    make_console().print(t)
    return 0


def summary(args) -> int:
    """``perfsuite summary RUN_DIR``: recompute the summary from the raw files."""
    print_table(write_summary(Path(args.run_dir)))
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
