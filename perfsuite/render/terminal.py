"""Every table perfsuite prints on the terminal (rich), from figures the layers below computed.

Nothing here measures or computes a statistic: each function takes a
summary, comparison rows, sampled shares or a sweep frame and prints it.
"""

import math
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from perfsuite.analysis import compare, ranks
from perfsuite.analysis.check import REFERENCE
from perfsuite.analysis.roofline import describe as describe_roofline
from perfsuite.analysis.sweep import sweep_frame
from perfsuite.core.interface import OTHER, PHASES
from perfsuite.core.workload import DEFAULT_WORKLOAD
from perfsuite.render.html import size
from perfsuite.render.progress import console as make_console
from perfsuite.results.reader import read_sweep

SHOWN_PER_PHASE = 3
"""Operators per phase in the terminal's top-operator table (the CSV has them all)."""


def summary_table(summary: dict) -> Table:
    """The summary as a rich table: median seconds per epoch and per phase."""
    name = summary.get("workload") or DEFAULT_WORKLOAD
    on = "" if name == DEFAULT_WORKLOAD else f" · workload {name} on {summary.get('subset'):g} of the training split"
    t = Table(title=f"median seconds per epoch{on} · {summary.get('dataset')} · {summary.get('threads')} threads")
    t.add_column("implementation")
    t.add_column("epoch", justify="right")
    for p in PHASES + (OTHER,):
        t.add_column(p, justify="right")
    t.add_column("coverage", justify="right")
    t.add_column("test acc", justify="right")
    floor = "floor_seconds" in summary.get("roofline", {})
    if floor:
        t.add_column("× floor", justify="right")
        t.caption = describe_roofline(summary["roofline"])
    for name, entry in summary["implementations"].items():
        if "epoch_seconds" not in entry:
            reason = entry["reason"]
            t.add_row(name, f"[red]{entry['status']}[/red]: {escape(reason)}" if reason else entry["status"])
            continue
        phases = entry["phase_seconds"]
        if entry.get("diverged"):
            name = f"{name} [red](diverged)[/red]"
        t.add_row(
            name,
            f"{entry['epoch_seconds']:.3f}",
            *(f"{phases[p]:.3f}" for p in PHASES + (OTHER,)),
            f"{entry['coverage']:.3f}",
            f"{entry['test_accuracy']:.4f}",
            *([f"{entry['roofline']['floor_multiple']:.2f}"] if floor else []),
        )
    return t


def print_table(summary: dict, console: Console = None) -> None:
    """Print the summary table (and, for multi-rank implementations, the per-rank table) on the terminal."""
    console = console or make_console()
    console.print(summary_table(summary))
    per_rank = rank_table(summary)
    if per_rank is not None:
        console.print(per_rank)
        for line in ranks.notes(summary):
            console.print(line, highlight=False)


def rank_table(summary: dict):
    """Per-rank medians of every multi-rank implementation as a rich table, or ``None`` when there is none."""
    found = {n: e["distributed"] for n, e in summary["implementations"].items() if "distributed" in e}
    if not found:
        return None
    t = Table(title="ranks · median seconds per epoch · comm is part of backward")
    for col in ("implementation", "rank", "epoch", *PHASES, "of which comm", "comm share", "other", "coverage"):
        t.add_column(col, justify="left" if col == "implementation" else "right")
    for name, d in found.items():
        for rank, e in d["per_rank"].items():
            mark = " (slowest)" if rank == d["slowest_rank"] else ""
            ph = e["phase_seconds"]
            t.add_row(
                name,
                f"{rank}{mark}",
                f"{e['epoch_seconds']:.3f}",
                *(f"{ph[p]:.3f}" for p in PHASES),
                f"{e['comm_seconds']:.3f}",
                f"{100 * e['comm_share']:.1f}%",
                f"{ph[OTHER]:.3f}",
                f"{e['coverage']:.3f}",
            )
    return t


def _number(value: float, spec: str) -> str:
    return format(value, spec) if math.isfinite(value) else "—"


def _compare_value(value: float, unit: str) -> str:
    """A compared median in its unit: seconds (``s``) or a ratio to the reference (``×REF``)."""
    return _number(value, ".5f" if unit == "s" else ".4f")


def compare_table(
    rows: list, title: str, threshold: float = compare.DEFAULT_THRESHOLD, alpha: float = compare.DEFAULT_ALPHA
) -> Table:
    """The comparison as a rich table, with the verdict rules and exit status as its caption."""
    t = Table(title=title, caption="\n".join(compare.rules(threshold, alpha)), caption_justify="left")
    for col in (
        "implementation",
        "quantity",
        "unit",
        "n base/new",
        "base median",
        "new median",
        "new/base (95% CI)",
        "p",
        "p adj",
        "verdict",
    ):
        t.add_column(col, justify="right" if "median" in col or col.startswith("p") else "left")
    colour = {"slower": "red", "faster": "green", "no change": "default", "inconclusive": "yellow"}
    for r in rows:
        t.add_row(
            r.impl,
            r.quantity,
            r.unit,
            f"{r.n_base}/{r.n_new}",
            _compare_value(r.base_median, r.unit),
            _compare_value(r.new_median, r.unit),
            f"{_number(r.ratio, '.3f')} ({_number(r.low, '.3f')}–{_number(r.high, '.3f')})",
            _number(r.p_value, ".2g"),
            _number(r.p_adjusted, ".2g"),
            f"[{colour.get(r.verdict, 'dim')}]{r.verdict}[/]" + (f" ({r.note})" if r.note else ""),
        )
    return t


def memory_compare_table(rows: list, title: str) -> Table:
    """Memory figures of two runs (:func:`perfsuite.analysis.memory.compare_memory`), ``larger`` in red."""
    t = Table(title=title, caption="exit status 1 when a figure is larger beyond the margin", caption_justify="left")
    for col in ("implementation", "quantity", "base", "new", "new/base", "verdict"):
        t.add_column(col, justify="left" if col in ("implementation", "quantity", "verdict") else "right")
    colour = {"larger": "red", "smaller": "green", "no change": "default"}
    for r in rows:
        bytes_ = "bytes" in r.quantity or "peak" in r.quantity
        shown = (size(r.base), size(r.new)) if bytes_ else (f"{r.base:,.1f}", f"{r.new:,.1f}")
        t.add_row(r.impl, r.quantity, *shown, _number(r.ratio, ".3f"), f"[{colour[r.verdict]}]{r.verdict}[/]")
    return t


def ab_table(result, title: str) -> Table:
    """An A/B (:class:`perfsuite.analysis.ab.AbResult`) in :func:`compare_table`'s style and caption.

    The medians are each side's seconds per epoch; the ratio is the median of the per-pair ratios.
    """
    t = compare_table(result.rows, title, result.threshold, result.alpha)
    t.columns[3].header = "pairs base/new"
    t.columns[6].header = "paired new/base (95% CI)"
    return t


def _pct(value) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def print_flame_results(payloads: dict) -> None:
    """``perfsuite flame``: the sampled-vs-timer agreement table and each implementation's sampling overhead."""
    con = make_console()
    t = Table(title="sampled (py-spy) vs timer phase shares, same epochs")
    for col in ("implementation", "phase", "samples", "sampled", "timer", "difference (pp)"):
        t.add_column(col, justify="left" if col in ("implementation", "phase") else "right")
    for name, p in payloads.items():
        for row in p["agreement"]:
            diff = row["difference_pp"]
            t.add_row(
                name,
                row["phase"],
                str(p["counts"][row["phase"]]),
                _pct(row["sampled"]),
                _pct(row["timer"]),
                "—" if diff is None else f"{diff:+.1f}",
            )
        t.add_section()
    con.print(t)
    for name, p in payloads.items():
        o = p["overhead"]
        worst = p["max_abs_difference_pp"]
        con.print(
            f"{name}: sampling overhead {o['overhead_pct']:+.1f}% (median epoch {o['unsampled_epoch_median_s']:.3f} s "
            f"unsampled vs {o['sampled_epoch_median_s']:.3f} s at {p['rate_hz']} Hz"
            f"{', --native' if p['native'] else ''}); "
            f"{p['samples']} samples in epochs, largest difference "
            + ("— (no samples: run more or longer epochs)" if worst is None else f"{worst:.1f} pp")
            + (f"; {p['note']}" if p["note"] else ""),
            markup=False,
            highlight=False,
        )


def memory_table(memory: dict) -> Table:
    """``perfsuite memory``: tensor allocations and bytes per step, and the peak, by implementation and phase."""
    t = Table(title="tensor memory by phase (torch.profiler memory events; per step: median over profiled epochs)")
    for col in ("implementation", "phase", "allocations/step", "allocated/step", "freed/step", "peak in phase"):
        t.add_column(col, justify="left" if col in ("implementation", "phase") else "right")
    for name, m in memory["impls"].items():
        for phase, f in m["phases"].items():
            t.add_row(
                name,
                phase,
                f"{f['allocations_per_step']:,.1f}",
                size(f["allocated_bytes_per_step"]),
                size(f["freed_bytes_per_step"]),
                size(f["peak_bytes"]),
            )
        t.add_section()
    return t


def overhead_text(pct: dict) -> str:
    """``+12% [8–15%] over 6 pairs`` (an interval needs at least two pairs)."""
    low, high = pct.get("ci_low"), pct.get("ci_high")
    shown = f"{pct['median']:+.0f}%"
    if low is not None and high is not None and not (math.isnan(low) or math.isnan(high)):
        shown += f" [{low:+.0f}% – {high:+.0f}%]"
    return f"{shown} over {pct['pairs']} pair{'s' if pct['pairs'] != 1 else ''}"


def memory_lines(memory: dict) -> list:
    """One line per implementation: peaks, RSS, memory mode's overhead and memray's cross-check."""
    lines = []
    for name, m in memory["impls"].items():
        overhead = "—" if m["overhead_pct"] is None else overhead_text(m["overhead_pct"])
        text = (
            f"{name}: live tensor peak {size(m['live_peak_bytes'])} above the epoch's start, "
            f"RSS peak {size(m['rss_peak_bytes'])} per plain epoch, memory mode's overhead {overhead} "
            "on the epoch"
        )
        check = m["memray"]
        if check.get("tensor_peak_bytes") is not None:
            diff = "—" if check["difference_pct"] is None else f"{check['difference_pct']:+.1f}%"
            text += (
                f"; memray: tensor peak {size(check['tensor_peak_bytes'])} ({diff} vs torch), "
                f"whole-heap peak {size(check['heap_peak_bytes'])}"
            )
            text += "" if check["agrees"] else f" ({check['reason']})"
        lines.append(text)
    return lines + memory["notes"]


def sweep_memory_table(rows: list) -> Table:
    """``perfsuite sweep --memory``: tensor memory per point and implementation."""
    t = Table(title="tensor memory per point (torch.profiler memory events)")
    for col in ("point", "implementation", "allocations/step", "allocated/step", "live tensor peak", "RSS peak"):
        t.add_column(col, justify="left" if col in ("point", "implementation") else "right")
    for r in rows:
        t.add_row(
            r["point"],
            r["impl"],
            f"{r['allocations_per_step']:,.1f}",
            size(r["allocated_bytes_per_step"]),
            size(r["live_peak_bytes"]),
            size(r["rss_peak_bytes"]),
        )
    return t


def print_top_ops(name: str, found: dict) -> None:
    """The first operators of each phase on the terminal."""
    t = Table(title=f"{name}: top operators by self CPU time per phase (trace/{name}.top_ops.csv has more)")
    for col in ("phase", "range s", "operator", "self ms", "calls", "of phase"):
        t.add_column(col, justify="left" if col in ("phase", "operator") else "right")
    seconds = found.get("range_seconds", {})
    for phase in PHASES + (OTHER,):
        rows = [r for r in found["top_ops"] if r["phase"] == phase][:SHOWN_PER_PHASE]
        for i, r in enumerate(rows):
            t.add_row(
                phase if i == 0 else "",
                f"{seconds[phase]:.3f}" if i == 0 and phase in seconds else "",
                r["operator"],
                f"{r['self_cpu_ms']:.1f}",
                str(r["calls"]),
                f"{100 * r['share_of_phase']:.0f}%",
            )
        if rows:
            t.add_section()
    make_console().print(t)
    if not found.get("ranged"):
        make_console().print(
            f"{name}: fused implementation, its own loop has no phase ranges: its operators are under 'other'",
            markup=False,
            highlight=False,
        )


def print_sweep(folder, console=None) -> None:
    """The sweep's figures on the terminal: one row per point and implementation, then the crossovers."""
    folder = Path(folder)
    record = read_sweep(folder)
    frame = sweep_frame(folder, record)
    console = console or make_console()
    if frame.empty:
        console.print("no point of this sweep finished a measured epoch")
        return
    t = Table(title=f"µs per sample (median of measured epochs, 95% CI) · {record['dataset']['label']}")
    for col in ("point", "implementation", "µs / sample", "95% CI", "epoch s", "× floor", "GFLOP/s"):
        t.add_column(col, justify="left" if col in ("point", "implementation") else "right")
    for _, r in frame[frame["quantity"] == "epoch"].iterrows():
        t.add_row(
            r["point"],
            r["impl"],
            f"{r['median'] * 1e6:.2f}",
            _ci_text(r, 1e6),
            f"{r['median'] * r['samples']:.3f}",
            _pattern(r["floor_multiple"], "{:.2f}×"),
            _pattern(r["achieved_gflops"], "{:.1f}"),
        )
    console.print(t)
    for sentence in record.get("analysis", {}).get("crossovers", []):
        console.print(sentence, highlight=False)


def _pattern(value, pattern: str) -> str:
    return pattern.format(value) if value is not None and math.isfinite(value) else "—"


def _ci_text(row, scale: float) -> str:
    if not (math.isfinite(row["ci_low"]) and math.isfinite(row["ci_high"])):
        return "—"
    return f"{row['ci_low'] * scale:.2f}–{row['ci_high'] * scale:.2f}"


def print_verdicts(found, skipped, reference, dataset, reference_name: str = REFERENCE, workload: str = "") -> None:
    """``perfsuite check``: each implementation's verdict against the reference's epoch."""
    on = f" · workload {workload}" if workload and workload != DEFAULT_WORKLOAD else ""
    t = Table(title=f"equivalence with {reference_name} · one epoch{on} · {dataset.label}")
    for col in ("implementation", "max rel. loss diff (first 100 steps)", "train acc", "acc diff (pp)", "verdict"):
        t.add_column(col)
    t.add_row(reference_name, "reference", f"{100 * reference.train_accuracy:.2f}%", "", "")
    for v in found:
        t.add_row(
            v.impl,
            f"{v.max_rel_loss_diff:.2e}",
            f"{100 * v.train_accuracy:.2f}%",
            f"{v.accuracy_diff_pp:.3f}",
            "[green]same[/green]" if v.ok else f"[red]differs[/red]: {escape(v.problem)}",
        )
    for name, reason in skipped.items():
        t.add_row(name, "", "", "", f"skipped: {escape(reason)}")
    make_console().print(t)


def print_workload_matrix(workload_rows: list, matrix: dict) -> None:
    """``perfsuite list``: the workloads, then which implementation trains which and why a pair cannot run.

    ``workload_rows`` holds ``(name, default subset, description)``; ``matrix`` maps an implementation
    to ``{workload: reason or None}`` (``None``: it trains it here).
    """
    w = Table(title="workloads (--workload NAME; entry-point group perfsuite.workloads)")
    for col in ("name", "default subset", "description"):
        w.add_column(col)
    for row in workload_rows:
        w.add_row(*row)
    make_console().print(w)
    names = [row[0] for row in workload_rows]
    t = Table(title="implementations × workloads (yes: runs here; otherwise why not)")
    t.add_column("implementation")
    for name in names:
        t.add_column(name)
    for impl, cells in matrix.items():
        t.add_row(impl, *("yes" if cells.get(name) is None else f"no: {cells[name]}" for name in names))
    make_console().print(t)


def print_impls(rows: list) -> None:
    """``perfsuite list``: ``(name, available, description or reason, entry point)`` per implementation."""
    t = Table(title="implementations (entry-point group perfsuite.impls)")
    for col in ("name", "available", "description / reason", "entry point"):
        t.add_column(col)
    for row in rows:
        t.add_row(*row)
    make_console().print(t)


_STOPS = {
    "precision": "every interval within the target",
    "budget": "the budget would not hold another pass",
    "max_epochs": "--max-epochs {max_epochs} reached",
    "budget_too_small": "the budget cannot hold one measured epoch of each implementation",
    "interrupted": "interrupted",
    "failed": "no implementation left to measure",
}


def sampling_line(sampling: dict) -> str:
    """One line: why an adaptive run stopped, after how long, against which target."""
    why = _STOPS.get(sampling.get("stop"), "{stop}").format(**sampling)
    budget = f"budget {sampling['budget']:g} s" if sampling.get("budget") else "no budget"
    epochs = f"{sampling['min_epochs']}–{sampling['max_epochs']} epochs each"
    line = (
        f"sampling stopped after {sampling['elapsed_seconds']:.1f} s of measuring: {why} "
        f"(target ±{sampling['precision']:.1%}; {budget}; {epochs})"
    )
    missed = missed_target(sampling)
    return line + (f"; missed the target: {', '.join(missed)}" if missed else "")


def missed_target(sampling: dict) -> list:
    """``name ±half-width`` of every measured implementation whose last interval was outside the target."""
    missed = []
    for name, entry in sampling["implementations"].items():
        if entry.get("within_target") is not False or entry.get("stop") in ("failed", "interrupted"):
            continue
        width = entry.get("half_width")
        known = isinstance(width, (int, float)) and math.isfinite(width)
        missed.append(f"{name} ±{width:.1%}" if known else f"{name} (no interval yet)")
    return missed


def sampling_table(sampling: dict) -> Table:
    """Per implementation: measured epochs, the interval the rule watched, its half-width and why it stopped."""
    t = Table(title="adaptive sampling · relative half-width of each 95% interval (decision resamples)")
    for col in ("implementation", "measured epochs", "interval", "± half-width", "stopped by"):
        t.add_column(col, justify="right" if col in ("measured epochs", "± half-width") else "left")
    for name, entry in sampling["implementations"].items():
        stop = entry.get("stop") or "—"
        if entry["epochs"] < sampling["min_epochs"]:
            stop += f" [yellow](below the minimum of {sampling['min_epochs']})[/yellow]"
        t.add_row(
            name,
            str(entry["epochs"]),
            "median epoch" if entry["interval"] == "epoch" else f"speedup over {sampling['baseline']}",
            _pct(entry.get("half_width")),
            stop,
        )
    return t


def print_sampling(sampling: dict | None, console: Console = None) -> None:
    """The stopping summary of an adaptive run (nothing for a run of fixed epochs)."""
    if not sampling:
        return
    console = console or make_console()
    console.print(sampling_table(sampling))
    console.print(sampling_line(sampling), highlight=False)
