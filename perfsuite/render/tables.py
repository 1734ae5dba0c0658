"""The report's tables: pandas DataFrames rendered with ``DataFrame.to_html``.

Each function returns an HTML ``<table>`` (cells escaped by pandas) built
from a :class:`~perfsuite.results.reader.Run` and its
:class:`~perfsuite.analysis.speedups.Analysis`.
"""

import html as html_lib
import json
import math

import pandas as pd

from perfsuite.analysis import roofline
from perfsuite.analysis.speedups import format_interval
from perfsuite.core.interface import PHASES
from perfsuite.results import artifacts
from perfsuite.results.reader import ALL_PHASES, PAIR_KEYS


def html(frame: pd.DataFrame, index: bool = False) -> str:
    """A DataFrame as an escaped HTML table with the report's CSS class."""
    return frame.to_html(index=index, escape=True, classes="data", border=0, na_rep="—")


def _ci(est, digits=3, unit="") -> str:
    return "—" if est is None else format_interval(est, unit, digits)


def _pct(value) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.0%}"


def overview(run, analysis) -> str:
    """One row per implementation: status, epochs, median epoch with CI, spread, speedup, accuracy."""
    rows = []
    for name in run.impls:
        status = run.status(name)
        s = analysis.impls.get(name)
        last = run.measured(name).tail(1)
        rows.append(
            {
                "implementation": name + (" (baseline)" if name == analysis.baseline else ""),
                "status": status.get("status", "unknown") + (f": {status['reason']}" if status.get("reason") else ""),
                "measured epochs": s.epoch.n if s else 0,
                "median epoch s (95% CI)": _ci(s.epoch) if s else "—",
                "IQR / median": _pct(s.epoch.relative_iqr) + (" ⚠ noisy" if s and s.epoch.noisy else "") if s else "—",
                f"speedup vs {analysis.baseline}": _ci(s.speedup, 2, "×") if s else "—",
                "test accuracy": f"{last['test_accuracy'].iloc[0]:.4f}" if len(last) else "—",
            }
        )
    return html(pd.DataFrame(rows))


def phases(analysis) -> str:
    """Median seconds per epoch of every phase with its 95% CI, one row per implementation."""
    rows = []
    for s in analysis.impls.values():
        row = {"implementation": s.name}
        for p in ALL_PHASES:
            est = s.phases[p]
            row[p] = _ci(est) + (" ⚠" if est.noisy else "")
        rows.append(row)
    return html(pd.DataFrame(rows))


def gaps(analysis) -> str:
    """Seconds of the per-epoch gap to the baseline each phase accounts for, and its share."""
    rows = []
    for s in analysis.impls.values():
        if s.gap is None:
            continue
        g = s.gap
        row = {
            "implementation": s.name,
            "pairs": g.pairs,
            "gap s/epoch (95% CI)": f"{g.seconds:.3f} ({g.low:.3f}–{g.high:.3f})"
            if math.isfinite(g.low)
            else f"{g.seconds:.3f} (no interval)",
        }
        for p in ALL_PHASES:
            c = g.phases[p]
            row[p] = f"{c.seconds:+.3f} s ({_pct(c.share)})"
        rows.append(row)
    return html(pd.DataFrame(rows)) if rows else ""


def equivalence(run, baseline) -> str:
    """Loss and accuracy of each implementation's last measured epoch, and loss agreement with the baseline."""
    steps = run.steps
    base = steps[steps["impl"] == baseline]
    rows = []
    for name in run.measured_impls:
        last = run.measured(name).iloc[-1]
        row = {
            "implementation": name,
            "final loss": f"{last['final_loss']:.5f}",
            "train accuracy": f"{last['train_accuracy']:.4f}",
            "test accuracy": f"{last['test_accuracy']:.4f}",
        }
        mine = steps[steps["impl"] == name]
        joined = mine.merge(base, on=PAIR_KEYS + ["step"], suffixes=("", "_base")).sort_values(PAIR_KEYS + ["step"])
        rel = ((joined["loss"] - joined["loss_base"]).abs() / joined["loss_base"].abs()).to_numpy()
        row[f"max rel. loss diff vs {baseline}, first 100 steps"] = f"{rel[:100].max():.1e}" if len(rel) else "—"
        row["… over all steps"] = f"{rel.max():.1e}" if len(rel) else "—"
        rows.append(row)
    return html(pd.DataFrame(rows))


def _flatten(prefix: str, value, out: dict) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        out[prefix] = "; ".join(value)
    else:
        out[prefix] = value if isinstance(value, (str, int, float, bool)) or value is None else json.dumps(value)


def key_values(mapping: dict) -> str:
    """A nested mapping as a two-column table of dotted keys and values."""
    flat = {}
    _flatten("", mapping, flat)
    return html(pd.DataFrame({"key": list(flat), "value": [str(v) for v in flat.values()]}))


def impl_info(run, facts: dict) -> str:
    """Per-implementation start, setup seconds and metrics, epoch facts (``summary.json``) and self-reported info."""
    rows = []
    for name in run.impls:
        st = run.status(name)
        setups = st.get("setups") or []
        metrics = {}
        for setup in setups:
            for k, v in (setup.get("metrics") or {}).items():
                metrics.setdefault(k, []).append(v)
        rows.append(
            {
                "implementation": name,
                "spec": st.get("spec", ""),
                "worker start s": _num(st.get("start_seconds")),
                "setup s per round": ", ".join(_num(s.get("setup_seconds")) for s in setups) or "—",
                "setup metrics": "; ".join(f"{k}: {', '.join(_num(v) for v in vs)}" for k, vs in metrics.items())
                or "—",
                "per-epoch facts (warm-up / measured)": _facts(facts.get(name, {})),
                "info": "; ".join(f"{k}: {v}" for k, v in (st.get("info") or {}).items()) or "—",
            }
        )
    return html(pd.DataFrame(rows))


def _facts(found: dict) -> str:
    """What an implementation reported about its epochs, summed over warm-up and measured epochs."""
    return "; ".join(f"{key}: {v['warmup']:g} / {v['measured']:g}" for key, v in found.items()) or "—"


def _num(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "—" if value is None else str(value)


def timer_shares(run, impl: str) -> dict:
    """The timers' share of each of the five phases in ``impl``'s measured epochs (normalised)."""
    rows = run.measured(impl)
    return artifacts.normalise({p: float(rows[f"{p}_seconds"].sum()) for p in PHASES}) or {}


def attribution(run, found: dict) -> str:
    """Timers vs sampled stacks vs trace ranges: phase shares side by side, with differences in points."""
    rows = []
    for source, kind in (("sampled stacks", "shares"), ("trace ranges", "trace")):
        for art in found.get(kind, []):
            if not art.shares or art.impl not in run.measured_impls:
                continue
            timers = timer_shares(run, art.impl)
            for p in PHASES:
                rows.append(
                    {
                        "implementation": art.impl,
                        "source": f"{source} ({art.path})",
                        "phase": p,
                        "timers": _pct(timers.get(p)),
                        "other source": _pct(art.shares[p]),
                        "difference (points)": f"{100 * (art.shares[p] - timers.get(p, 0.0)):+.1f}",
                    }
                )
    return html(pd.DataFrame(rows)) if rows else ""


def benchmark_rows(art) -> str:
    """The rows read from one pytest-benchmark file."""
    return html(pd.DataFrame(art.rows)) if art.rows else ""


def roofline_section(meta: dict, analysis) -> str:
    """The run report's roofline section body: the floor in words and two tables ("" without a roofline)."""
    roof = meta.get("roofline")
    if not roof:
        return ""
    if "floor_seconds" not in roof:
        return f'<div class="warn">{html_lib.escape(roofline.describe(roof))}</div>'
    rows = []
    for name, s in analysis.impls.items():
        est, floor = s.epoch, roof["floor_seconds"]
        figures = roofline.impl_figures(roof, est.median)
        rows.append(
            {
                "implementation": name,
                "median epoch s": f"{est.median:.3f}",
                "× compute floor (95% CI)": f"{est.median / floor:.2f}"
                + (f" ({est.ci_low / floor:.2f}–{est.ci_high / floor:.2f})" if est.has_interval else ""),
                "achieved GFLOP/s": f"{figures['achieved_gflops']:.1f}",
                "share of peak": f"{figures['share_of_peak']:.0%}",
                "× matmul floor": f"{figures['matmul_floor_multiple']:.2f}",
            }
        )
    shapes = pd.DataFrame(
        [
            {
                "matmul": r["name"],
                "m × k × n": f"{r['m']} × {r['k']} × {r['n']}",
                "best GFLOP/s": f"{r['best_gflops']:.1f}",
                "median GFLOP/s": f"{r['median_gflops']:.1f}",
                "calls": r["calls"],
            }
            for r in roof["shapes"]
        ]
    )
    return (
        f"<p>{html_lib.escape(roofline.describe(roof))}.</p>"
        + (html(pd.DataFrame(rows)) if rows else "")
        + "<h3>Measured matmul throughput</h3>"
        + html(shapes)
    )


def host_language(section: dict | None) -> str:
    """The host-language table: per quantity, each compiled host's paired time ratio to store ("" without one)."""
    if not section:
        return ""
    columns = {}
    for r in section["rows"]:
        columns.setdefault(f"{r['language']} ({r['impl']}) ÷ Python, × (95% CI)", {})[r["quantity"]] = host_cell(r)
    return html(pd.DataFrame(columns).rename_axis("quantity"), index=True)


def host_cell(row: dict) -> str:
    """One host-language ratio with its interval (the ratio alone when the interval is undefined)."""
    if not row["pairs"] or not math.isfinite(row["ratio"]):
        return "no common epochs"
    if not (math.isfinite(row["low"]) and math.isfinite(row["high"])):
        return f"{row['ratio']:.3f}"
    return f"{row['ratio']:.3f} ({row['low']:.3f}–{row['high']:.3f})"


def _component(variance: float, mean: float, share: float) -> str:
    """A variance component as a coefficient of variation of the epoch time, with its share."""
    if variance is None or not math.isfinite(variance):
        return "not measured"
    return f"{math.sqrt(variance) / mean:.1%} ({_pct(share)})"


def noise(diagnosis) -> str:
    """The variance split of each implementation's epoch time and the repeats suggested for the target."""
    rows = []
    for name, s in diagnosis.splits.items():
        shares = s.shares
        rows.append(
            {
                "implementation": name,
                "measured": f"{s.rounds} round{'s' if s.rounds != 1 else ''}, {s.epochs} epochs",
                "mean epoch s": f"{s.mean:.3f}",
                "between rounds": _component(s.round_var, s.mean, shares["rounds"]),
                "between epochs": _component(s.epoch_var, s.mean, shares["epochs"]),
                "between steps": _component(s.step_var, s.mean, shares["steps"]),
                f"for ±{diagnosis.target:.0%}": f"{s.suggested_rounds} × {s.suggested_epochs} epochs",
                "est. seconds": f"{s.suggested_seconds:.0f}",
                "note": s.note,
            }
        )
    return html(pd.DataFrame(rows)) if rows else ""
