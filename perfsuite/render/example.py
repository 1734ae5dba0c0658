"""A shareable example of a run: what a visitor sees in ``reports/example/`` before installing anything.

:func:`write_example` copies a finished run's ``summary.json`` and writes the
report's two key charts as PNG (the phase stack and the speedups) and a
``README.md`` with the headline, the table of median seconds per epoch and
phase with intervals, the machine, the software, the date and the command
that produced the run. ``perfsuite report RUN_DIR --example DIR`` calls it.
"""

import shutil
from pathlib import Path

from perfsuite.analysis.roofline import describe
from perfsuite.analysis.speedups import Analysis, format_interval, headline
from perfsuite.analysis.summary import analyse_and_summarise
from perfsuite.core.interface import OTHER, PHASES
from perfsuite.render import charts
from perfsuite.results.reader import Run, load_run
from perfsuite.results.writer import write_text

CHARTS = {"phase-stack.png": charts.phase_stack_figure, "speedups.png": charts.speedups_figure}


def write_example(run_dir, out) -> Path:
    """Write the example of run folder ``run_dir`` into folder ``out`` (made or refreshed); its README's path."""
    run = load_run(run_dir)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary, result, _ = analyse_and_summarise(run)
    shutil.copyfile(run.folder / "summary.json", out / "summary.json")
    written = []
    for name, figure in CHARTS.items():
        if result.impls and (name != "speedups.png" or any(s.speedup for s in result.impls.values())):
            charts.save_png(figure(result), out / name)
            written.append(name)
    path = out / "README.md"
    write_text(path, readme(run, result, summary, written))
    return path


def readme(run: Run, result: Analysis, summary: dict, images: list) -> str:
    """The example's README: where and when it ran, the headline, the table, the charts."""
    meta = run.meta
    roof = summary.get("roofline", {})
    floor = "floor_seconds" in roof
    machine, software = meta.get("machine", {}), meta.get("software", {})
    lines = [
        f"# Example run `{meta.get('run_id')}`",
        "",
        f"- date: {meta.get('created', 'unknown')} (UTC)",
        f"- machine: {machine.get('cpu_model', 'unknown CPU')}, {machine.get('usable_cpus', '?')} usable CPUs, "
        f"{meta.get('workload', {}).get('threads', '?')} torch threads",
        f"- software: Python {software.get('python', '?')}, torch {software.get('torch', '?')}, "
        f"perfsuite {software.get('perfsuite', '?')} at commit {software.get('commit') or 'unknown'}"
        + (" (uncommitted changes)" if software.get("dirty") else ""),
        f"- data: {run.label}",
        f"- command: `{_command(meta.get('command'))}`",
        f"- {describe(roof) if roof else 'roofline not measured'}",
        "",
        headline(result),
        "",
        "Median seconds per epoch and per phase over the measured epochs "
        "(95% bootstrap interval of the epoch's median):",
        "",
        "| implementation | epoch | " + " | ".join(PHASES + (OTHER,)) + (" | × floor |" if floor else " |"),
        "| --- | --- | " + " | ".join("---" for _ in PHASES + (OTHER,)) + (" | --- |" if floor else " |"),
    ]
    for name, s in result.impls.items():
        phases = " | ".join(f"{s.phases[p].median:.3f}" for p in PHASES + (OTHER,))
        multiple = f" | {s.epoch.median / roof['floor_seconds']:.2f}" if floor else ""
        lines.append(f"| {name} | {format_interval(s.epoch, ' s', 3)} | {phases}{multiple} |")
    lines += [
        "",
        "Compare implementations within this run; raw seconds from another run or machine are exposed to "
        "drift (docs/method.md).",
        "",
    ]
    lines += [f"![{name[:-4]}]({name})" for name in images]
    return "\n".join(lines) + "\n"


def _command(argv) -> str:
    """The run's command line as typed (the program by its name, not its path)."""
    if not argv:
        return "perfsuite run"
    return " ".join(["perfsuite", *argv[1:]])
