"""Charts and tables of the sweep page: matplotlib figures as inline SVG, pandas tables as HTML.

Every chart puts the first varied setting on a log x axis and microseconds
per sample on a log y axis, one line per implementation (and per value of
a second varied setting, told apart by line style), with 95% bootstrap
intervals as error bars. Values that cannot sit on a log axis (``other``
can be zero or slightly negative) are left out and the chart says so.
"""

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from perfsuite.analysis.sweep import series  # noqa: E402
from perfsuite.render.charts import impl_colors, inline_svg  # noqa: E402
from perfsuite.render.html import size  # noqa: E402
from perfsuite.render.tables import host_cell, html  # noqa: E402
from perfsuite.results.reader import ALL_PHASES  # noqa: E402

SCALE = 1e6
"""Seconds per sample are drawn in microseconds per sample."""
STYLES = ("-", "--", ":", "-.")
WIDTH = 9.0


def _x_name(record: dict) -> str:
    return record["vary"][0]["name"]


def _styles(record: dict) -> dict:
    """Line style per value of the second varied setting (solid when there is one setting)."""
    if len(record["vary"]) < 2:
        return {}
    return {v: STYLES[i % len(STYLES)] for i, v in enumerate(record["vary"][1]["values"])}


def _label(impl: str, others: dict) -> str:
    return impl + "".join(f" · {k}={v}" for k, v in others.items())


def _draw(ax, frame, record, quantity: str, colors: dict) -> int:
    """Draw one quantity's lines with interval bars; returns how many values could not be drawn."""
    x, styles, hidden = _x_name(record), _styles(record), 0
    for impl, others, rows in series(frame, record, quantity):
        shown = rows[rows["median"] > 0]
        hidden += len(rows) - len(shown)
        if shown.empty:
            continue
        y = shown["median"].to_numpy() * SCALE
        low = np.clip(y - shown["ci_low"].to_numpy() * SCALE, 0, None)
        high = np.clip(shown["ci_high"].to_numpy() * SCALE - y, 0, None)
        style = styles.get(next(iter(others.values()), None), "-")
        ax.errorbar(
            shown[x],
            y,
            yerr=[np.nan_to_num(low), np.nan_to_num(high)],
            fmt="o",
            ls=style,
            ms=4,
            capsize=3,
            lw=1.4,
            color=colors[impl],
            label=_label(impl, others),
        )
    return hidden


def _floor(ax, frame, record) -> None:
    """The compute floor per sample (dashed black), per value of the second setting."""
    x, styles = _x_name(record), _styles(record)
    epoch = frame[(frame["quantity"] == "epoch") & frame["floor_per_sample"].notna()]
    if epoch.empty:
        return
    for _impl, others, rows in series(epoch, record, "epoch"):
        floor = rows.drop_duplicates(x)
        style = styles.get(next(iter(others.values()), None), "--")
        ax.plot(
            floor[x],
            floor["floor_per_sample"] * SCALE,
            color="black",
            lw=1.2,
            ls=style if others else "--",
            label="compute floor" + "".join(f" · {k}={v}" for k, v in others.items()),
        )
        if not others:
            return


def _log_axes(ax, frame, record) -> None:
    x = _x_name(record)
    ax.set_xscale("log")
    ax.set_yscale("log")
    values = sorted(frame[x].unique())
    ax.set_xticks(values, [f"{v:g}" for v in values])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.spines[["top", "right"]].set_visible(False)


def seconds_chart(frame: pd.DataFrame, record: dict) -> str:
    """Total µs per sample against the varied setting, per implementation, with the compute floor."""
    colors = impl_colors(frame["impl"].unique())
    fig, ax = plt.subplots(figsize=(WIDTH, 4.6))
    _draw(ax, frame, record, "epoch", colors)
    _floor(ax, frame, record)
    _log_axes(ax, frame, record)
    ax.set_xlabel(_x_name(record))
    ax.set_ylabel("µs per sample (epoch wall / samples)")
    ax.legend(fontsize=8, ncol=2)
    return inline_svg(fig, "sweep-total", "microseconds per sample against the varied setting")


def phase_chart(frame: pd.DataFrame, record: dict) -> str:
    """One panel per phase (and ``other``): µs per sample against the varied setting."""
    colors = impl_colors(frame["impl"].unique())
    fig, axes = plt.subplots(2, 3, figsize=(WIDTH + 1, 6.2), sharex=True)
    for ax, phase in zip(axes.flat, ALL_PHASES, strict=True):
        hidden = _draw(ax, frame, record, phase, colors)
        _log_axes(ax, frame, record)
        ax.set_title(phase + (f" ({hidden} values ≤ 0 not drawn)" if hidden else ""), fontsize=10)
    for ax in axes[1]:
        ax.set_xlabel(_x_name(record))
    for ax in axes[:, 0]:
        ax.set_ylabel("µs per sample")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, bbox_to_anchor=(0.5, -0.04), frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return inline_svg(fig, "sweep-phases", "microseconds per sample of each phase against the varied setting")


def multiple_chart(frame: pd.DataFrame, record: dict) -> str:
    """Epoch time as a multiple of the compute floor, per implementation."""
    colors = impl_colors(frame["impl"].unique())
    epoch = frame[frame["quantity"] == "epoch"].copy()
    scale = epoch["floor_per_sample"]
    for column in ("median", "ci_low", "ci_high"):
        epoch[column] = epoch[column] / scale / SCALE
    fig, ax = plt.subplots(figsize=(WIDTH, 4.0))
    _draw(ax, epoch, record, "epoch", colors)
    ax.axhline(1.0, color="black", ls="--", lw=1.2, label="compute floor")
    _log_axes(ax, epoch, record)
    ax.set_xlabel(_x_name(record))
    ax.set_ylabel("epoch time / compute floor")
    ax.legend(fontsize=8, ncol=2)
    return inline_svg(fig, "sweep-multiple", "epoch time as a multiple of the compute floor")


def charts(frame: pd.DataFrame, record: dict) -> dict:
    """Every chart of the sweep page (the floor chart only when the roofline was measured)."""
    found = {"total": seconds_chart(frame, record), "phases": phase_chart(frame, record)}
    if frame["floor_per_sample"].notna().any():
        found["multiple"] = multiple_chart(frame, record)
    return found


def _interval(row, scale: float = SCALE, digits: int = 2) -> str:
    value = f"{row['median'] * scale:.{digits}f}"
    if not (np.isfinite(row["ci_low"]) and np.isfinite(row["ci_high"])):
        return value + " (no interval)"
    return (
        value
        + f" ({row['ci_low'] * scale:.{digits}f}–{row['ci_high'] * scale:.{digits}f})"
        + (" ⚠" if row["noisy"] else "")
    )


def figures_table(frame: pd.DataFrame) -> str:
    """One row per point and implementation: µs per sample of the epoch and each phase, floor figures."""
    rows = []
    for (point, impl), group in frame.groupby(["point", "impl"], sort=False):
        by = group.set_index("quantity")
        epoch = by.loc["epoch"]
        row = {
            "point": point,
            "implementation": impl,
            "epoch s": f"{epoch['median'] * epoch['samples']:.3f}",
            "µs/sample (95% CI)": _interval(epoch),
        }
        row.update({p: _interval(by.loc[p]) for p in ALL_PHASES})
        row["× floor"] = f"{epoch['floor_multiple']:.2f}" if np.isfinite(epoch["floor_multiple"]) else "—"
        row["GFLOP/s"] = f"{epoch['achieved_gflops']:.1f}" if np.isfinite(epoch["achieved_gflops"]) else "—"
        rows.append(row)
    return html(pd.DataFrame(rows))


def points_table(frame: pd.DataFrame, record: dict) -> str:
    """One row per point: status, folder, samples, measured peak and compute floor."""
    first = frame.drop_duplicates("point").set_index("point") if not frame.empty else pd.DataFrame()
    rows = []
    for point in record["points"]:
        found = point["label"] in first.index
        r = first.loc[point["label"]] if found else None
        floor = r["floor_per_sample"] * r["samples"] if found else np.nan
        rows.append(
            {
                "point": point["label"],
                "status": point["status"],
                "folder": point["folder"] + "/",
                "samples / epoch": int(r["samples"]) if found else "—",
                "peak GFLOP/s (this point)": f"{r['peak_gflops']:.1f}"
                if found and np.isfinite(r["peak_gflops"])
                else "—",
                "compute floor s / epoch": f"{floor:.3f}" if np.isfinite(floor) else "—",
            }
        )
    return html(pd.DataFrame(rows))


def tables(frame: pd.DataFrame, record: dict) -> dict:
    """The sweep page's tables (no figures table when no point finished a measured epoch)."""
    found = {"points": points_table(frame, record)}
    if not frame.empty:
        found["figures"] = figures_table(frame)
    hosts = record.get("analysis", {}).get("host_language")
    if hosts:
        found["host_language"] = host_table(hosts)
    memory = record.get("analysis", {}).get("memory")
    if memory:
        found["memory"] = memory_table(memory, record)
        found["memory_chart"] = memory_chart(memory, record)
    return found


MEMORY_PANELS = (
    ("allocated_bytes_per_step", "tensor bytes allocated per step"),
    ("live_peak_bytes", "live tensor peak per epoch (bytes)"),
    ("allocations_per_step", "tensor allocations per step"),
)


MEMORY_COLUMNS = {
    "allocated_bytes_per_step": "tensor bytes allocated / step",
    "live_peak_bytes": "live tensor peak",
    "rss_peak_bytes": "RSS peak",
}


def memory_chart(rows: list, record: dict) -> str:
    """``perfsuite sweep --memory``: each memory figure against the first varied setting, one line per
    implementation (log axes; a zero cannot be drawn and is left out)."""
    frame = pd.DataFrame(rows)
    x = _x_name(record)
    colors = impl_colors(frame["impl"].unique())
    fig, axes = plt.subplots(1, len(MEMORY_PANELS), figsize=(WIDTH * 1.3, 3.4))
    for ax, (column, title) in zip(axes, MEMORY_PANELS, strict=True):
        for name, group in frame.groupby("impl", sort=False):
            group = group[group[column] > 0].sort_values(x)
            ax.plot(group[x], group[column], "o-", color=colors[name], label=name)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(x)
        ax.set_title(title, fontsize=10)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return inline_svg(fig, "sweep-memory", f"tensor memory against {x}")


def memory_table(rows: list, record: dict) -> str:
    """Per point and implementation: the memory figures of ``perfsuite sweep --memory``."""
    frame = pd.DataFrame(rows)
    names = [a["name"] for a in record["vary"]]
    shown = frame[names + ["impl"]].copy()
    for column, title in MEMORY_COLUMNS.items():
        shown[title] = frame[column].map(size)
    shown["tensor allocations / step"] = frame["allocations_per_step"].map(lambda v: f"{v:,.1f}")
    return shown.to_html(escape=True, classes="data", border=0, index=False, na_rep="—")


def host_table(points: list) -> str:
    """Per point and quantity: each compiled host's paired time ratio to store, with its interval."""
    rows = {}
    for point in points:
        for r in point["rows"]:
            column = f"{r['language']} ({r['impl']}) ÷ Python"
            rows.setdefault((point["point"], r["quantity"]), {})[column] = host_cell(r)
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index = pd.MultiIndex.from_tuples(frame.index, names=["point", "quantity"])
    return frame.to_html(escape=True, classes="data", border=0, na_rep="—")
