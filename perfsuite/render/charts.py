"""The report's charts: matplotlib (Agg) figures returned as self-contained HTML.

Sparse charts are inline SVG (text drawn as paths, so no font is fetched);
dense ones (thousands of per-step points) are PNG data URIs. Every function
takes a :class:`~perfsuite.results.reader.Run` and/or an
:class:`~perfsuite.analysis.speedups.Analysis` and returns an HTML fragment.
"""

import base64
import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from perfsuite.core.interface import PHASES  # noqa: E402
from perfsuite.results.reader import ALL_PHASES, PAIR_KEYS  # noqa: E402

PHASE_COLORS = dict(zip(ALL_PHASES, ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#bab0ac"), strict=True))
WIDTH = 9.0


def impl_colors(names) -> dict:
    """A stable colour per implementation (tab10, in the order given)."""
    cmap = plt.get_cmap("tab10")
    return {name: matplotlib.colors.to_hex(cmap(i % 10)) for i, name in enumerate(names)}


def inline_svg(fig, name: str, alt: str) -> str:
    """``fig`` as inline, deterministic SVG markup labelled ``alt`` (the figure is closed)."""
    with matplotlib.rc_context({"svg.hashsalt": name, "svg.fonttype": "path"}):
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    return text.replace("<svg ", f'<svg role="img" aria-label="{alt}" class="chart" ', 1)


def save_png(fig, path) -> None:
    """Write ``fig`` to ``path`` as PNG (the figure is closed)."""
    fig.savefig(path, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def _png(fig, alt: str) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img class="chart" alt="{alt}" src="data:image/png;base64,{data}">'


def phase_stack(analysis) -> str:
    """Stacked horizontal bars: median seconds per epoch of each phase, per implementation."""
    return inline_svg(phase_stack_figure(analysis), "phase-stack", "median seconds per epoch by phase")


def phase_stack_figure(analysis):
    """The figure of :func:`phase_stack`."""
    order = sorted(analysis.impls.values(), key=lambda s: -s.epoch.median)
    fig, ax = plt.subplots(figsize=(WIDTH, 0.6 * len(order) + 1.4))
    left = np.zeros(len(order))
    for phase in ALL_PHASES:
        widths = np.array([max(s.phases[phase].median, 0.0) for s in order])
        ax.barh([s.name for s in order], widths, left=left, color=PHASE_COLORS[phase], label=phase)
        left += widths
    for y, s in enumerate(order):
        ax.text(left[y], y, f"  epoch median {s.epoch.median:.3f} s", va="center", fontsize=9)
    ax.set_xlabel("median seconds per epoch (each phase's median; measured epochs only)")
    ax.set_xlim(0, left.max() * 1.3 if len(left) else 1)
    ax.legend(ncol=len(ALL_PHASES), loc="upper center", bbox_to_anchor=(0.5, -0.28), frameon=False, fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def speedups(analysis) -> str:
    """Speedup over the baseline with 95% interval whiskers, one row per implementation."""
    return inline_svg(speedups_figure(analysis), "speedups", f"speedup over {analysis.baseline} with intervals")


def speedups_figure(analysis):
    """The figure of :func:`speedups`."""
    rows = [s for s in analysis.impls.values() if s.speedup is not None]
    fig, ax = plt.subplots(figsize=(WIDTH, 0.55 * len(rows) + 1.3))
    colors = impl_colors(analysis.impls)
    for y, s in enumerate(rows):
        est = s.speedup
        if est.has_interval:
            ax.errorbar(
                est.median,
                y,
                xerr=[[est.median - est.ci_low], [est.ci_high - est.median]],
                fmt="o",
                color=colors[s.name],
                capsize=5,
                lw=2,
            )
        else:
            ax.plot(est.median, y, "o", mfc="white", color=colors[s.name])
        ax.text(est.ci_high if est.has_interval else est.median, y, f"  {est.median:.2f}×", va="center", fontsize=9)
    ax.axvline(1.0, color="#555", ls="--", lw=1)
    ax.set_yticks(range(len(rows)), [s.name for s in rows])
    ax.set_ylim(-0.7, len(rows) - 0.3)
    values = [v for s in rows for v in (s.speedup.ci_low, s.speedup.ci_high, s.speedup.median) if math.isfinite(v)]
    if values and max(values) / max(min(values), 1e-9) > 8:
        ax.set_xscale("log")
    ax.set_xlabel(f"speedup over {analysis.baseline} (median of paired epoch ratios, 95% bootstrap CI)")
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def _log_if_positive(ax, values) -> None:
    """Log y axis when the values hold something positive (a phase a loop does not time may be all zero)."""
    if (np.asarray(values) > 0).any():
        ax.set_yscale("log")


def _ordered_steps(frame, step: str = "step"):
    """Rows in training order, with a running step index ``x``."""
    frame = frame.sort_values(PAIR_KEYS + [step]).reset_index(drop=True)
    frame["x"] = np.arange(len(frame))
    return frame


def step_series(run) -> str:
    """Per-step seconds of each phase over the run (warm-up epochs shaded), rolling median drawn."""
    wide = run.wide_phases
    colors = impl_colors(run.impls)
    fig, axes = plt.subplots(len(PHASES), 1, figsize=(WIDTH, 2.0 * len(PHASES)), sharex=True)
    for name in run.impls:
        rows = _ordered_steps(wide[wide["impl"] == name], "step_no")
        if rows.empty:
            continue
        for ax, phase in zip(axes, PHASES, strict=True):
            ms = rows[phase] * 1e3
            ax.plot(rows["x"], ms, color=colors[name], lw=0.5, alpha=0.3)
            ax.plot(
                rows["x"], ms.rolling(25, min_periods=1, center=True).median(), color=colors[name], lw=1.4, label=name
            )
    first = run.measured_impls[0] if run.measured_impls else None
    _shade_warmup(axes, _ordered_steps(wide[wide["impl"] == first], "step_no") if first else None)
    for ax, phase in zip(axes, PHASES, strict=True):
        _log_if_positive(ax, wide[phase])
        ax.set_ylabel(f"{phase}\nms / step", fontsize=9)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].legend(loc="upper right", fontsize=8, ncol=len(run.impls))
    axes[-1].set_xlabel("step, in training order (shaded: warm-up epochs; dotted: epoch boundaries)")
    return _png(fig, "per-step seconds of each phase over the run")


def _shade_warmup(axes, rows) -> None:
    if rows is None or rows.empty:
        return
    for _, epoch in rows.groupby(PAIR_KEYS, sort=True):
        start, end = epoch["x"].min(), epoch["x"].max()
        for ax in axes:
            ax.axvline(start, color="#999", lw=0.6, ls=":")
            if epoch["warmup"].iloc[0] == 1:
                ax.axvspan(start, end, color="#ddd", alpha=0.6, lw=0)


def epoch_series(run) -> str:
    """Wall seconds of every epoch in run order; warm-up epochs drawn hollow."""
    colors = impl_colors(run.impls)
    fig, ax = plt.subplots(figsize=(WIDTH, 3.0))
    for name in run.impls:
        rows = run.epochs[run.epochs["impl"] == name].sort_values(PAIR_KEYS).reset_index(drop=True)
        if rows.empty:
            continue
        x = np.arange(len(rows))
        ax.plot(x, rows["wall_seconds"], color=colors[name], lw=1, label=name)
        warm = rows["warmup"] == 1
        ax.plot(x[~warm], rows["wall_seconds"][~warm], "o", color=colors[name])
        ax.plot(x[warm], rows["wall_seconds"][warm], "o", mfc="white", color=colors[name])
    ax.set_yscale("log")
    ax.set_xlabel("epoch in run order (hollow: warm-up, excluded from statistics)")
    ax.set_ylabel("wall seconds")
    ax.legend(fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return inline_svg(fig, "epoch-series", "wall seconds of every epoch")


def distributions(run) -> str:
    """Per-step seconds of each phase in measured epochs: one box per implementation (5–95% whiskers)."""
    names = run.measured_impls
    colors = impl_colors(run.impls)
    fig, axes = plt.subplots(1, len(PHASES), figsize=(WIDTH + 1, 3.4))
    samples = {name: run.measured_steps(name) for name in names}
    for ax, phase in zip(axes, PHASES, strict=True):
        data = [samples[n][phase].to_numpy() * 1e3 for n in names]
        box = ax.boxplot(data, whis=(5, 95), showfliers=False, patch_artist=True, widths=0.6)
        for patch, name in zip(box["boxes"], names, strict=True):
            patch.set_facecolor(colors[name])
            patch.set_alpha(0.55)
        ax.set_xticks(range(1, len(names) + 1), names, rotation=45, ha="right", fontsize=8)
        _log_if_positive(ax, np.concatenate(data) if data else np.array([]))
        ax.set_title(phase, fontsize=10)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].set_ylabel("ms per step (measured epochs)")
    fig.tight_layout()
    return inline_svg(fig, "distributions", "per-step distribution of each phase")


def _relative_differences(ax, run, baseline, colors) -> str:
    """Draw |loss - baseline| / baseline per step; returns a message when there is nothing to draw."""
    steps = run.steps
    base = steps[steps["impl"] == baseline] if baseline else steps.iloc[:0]
    drawn = compared = 0
    for name in run.impls:
        if name == baseline or base.empty:
            continue
        joined = _ordered_steps(
            steps[steps["impl"] == name].merge(base, on=PAIR_KEYS + ["step"], suffixes=("", "_base"))
        )
        rel = (joined["loss"] - joined["loss_base"]).abs() / joined["loss_base"].abs()
        shown = rel > 0
        compared += len(joined) > 0
        drawn += int(shown.sum())
        ax.plot(joined["x"][shown], rel[shown], ".", ms=2.5, color=colors[name], label=name)
    if not compared:
        return "no second implementation to compare with the baseline"
    if not drawn:
        return "every implementation's loss equals the baseline's at every step"
    ax.set_yscale("log")
    return ""


def loss_curves(run, baseline) -> str:
    """Per-step training loss of every implementation overlaid, and its relative difference to the baseline."""
    colors = impl_colors(run.impls)
    steps = run.steps
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(WIDTH, 5.2), sharex=True)
    for i, name in enumerate(run.impls):
        rows = _ordered_steps(steps[steps["impl"] == name])
        top.plot(
            rows["x"],
            rows["loss"],
            color=colors[name],
            lw=0.9,
            alpha=0.85,
            label=name,
            ls=("-", "--", ":", "-.")[i % 4],
        )
    if (steps["loss"] > 0).all() and len(steps):
        top.set_yscale("log")
    top.set_ylabel("training loss")
    top.legend(fontsize=8)
    message = _relative_differences(bottom, run, baseline, colors)
    if message:
        bottom.text(0.5, 0.5, message, ha="center", transform=bottom.transAxes)
    bottom.set_ylabel(f"|loss − {baseline}| / {baseline}\n(exact zeros not drawn)", fontsize=9)
    bottom.set_xlabel("step, in training order (all epochs, warm-up included)")
    for ax in (top, bottom):
        ax.spines[["top", "right"]].set_visible(False)
    return _png(fig, "training loss per step of every implementation")


def noise(table, stretch: list) -> str:
    """Epoch walls, the calibration probe and steal/load across the run's passes, the slow stretch shaded.

    ``table`` is :func:`perfsuite.analysis.noise.pass_table` (one row per pass
    in run order); ``stretch`` the ``(round, epoch)`` keys the diagnosis named.
    """
    x = np.arange(len(table))
    fig, (walls, probe, state) = plt.subplots(3, 1, figsize=(WIDTH, 6.4), sharex=True)
    names = [c[len("wall:") :] for c in table.columns if c.startswith("wall:")]
    colors = impl_colors(names)
    for name in names:
        walls.plot(x, table[f"wall:{name}"], "o-", ms=3, lw=1, color=colors[name], label=name)
    walls.set_ylabel("epoch wall /\nits median", fontsize=9)
    if names:
        walls.legend(fontsize=8, ncol=min(len(names), 4))
    for column, label, color in (("sgemm_gflops", "sgemm", "#4e79a7"), ("copy_gbps", "memory copy", "#f28e2b")):
        values = table[column].astype(float)
        if values.notna().any():
            probe.plot(x, values / values.median(), "o-", ms=3, lw=1, color=color, label=label)
    probe.set_ylabel("probe rate /\nits median", fontsize=9)
    if probe.get_legend_handles_labels()[0]:
        probe.legend(fontsize=8)
    state.plot(x, 100 * table["steal_share"].astype(float), "o-", ms=3, lw=1, color="#e15759", label="steal %")
    state.plot(x, 100 * table["iowait_share"].astype(float), "o-", ms=3, lw=1, color="#bab0ac", label="iowait %")
    state.plot(x, table["other_running"].astype(float), "s--", ms=3, lw=1, color="#59a14f", label="other running")
    state.plot(x, table["loadavg_1m"].astype(float), ":", lw=1.2, color="#76b7b2", label="load (1 min)")
    state.set_ylabel("% of CPU time /\nprocesses", fontsize=9)
    state.legend(fontsize=8, ncol=4)
    keys = list(zip(table["round"].astype(int), table["epoch"].astype(int), strict=True))
    slow = set(map(tuple, stretch))
    for ax in (walls, probe, state):
        for i, key in enumerate(keys):
            if key in slow:
                ax.axvspan(i - 0.5, i + 0.5, color="#f4c7c3", alpha=0.5, lw=0)
            elif table["warmup"].iloc[i] == 1:
                ax.axvspan(i - 0.5, i + 0.5, color="#ddd", alpha=0.6, lw=0)
        ax.spines[["top", "right"]].set_visible(False)
    step = max(1, len(keys) // 20)
    state.set_xticks(x[::step], [f"{r}:{e}" for r, e in keys[::step]], fontsize=8)
    state.set_xlabel("pass (round:epoch) in run order; grey: warm-up, red: the slow stretch named above")
    return inline_svg(fig, "noise", "epoch walls, calibration probe and machine state per pass")
