"""The report's "Memory by phase" section, from a ``perfsuite memory`` run's summary.

:func:`section` renders ``templates/memory_section.html.j2`` from the
``"memory"`` object of ``summary.json`` (:mod:`perfsuite.analysis.memory`):
a chart of tensor allocations per step by phase, the per-phase table, the
per-epoch peaks with memory mode's overhead, and memray's cross-check. It is
empty for runs that did not measure memory.
"""

import matplotlib.pyplot as plt
import numpy as np

from perfsuite.render import html
from perfsuite.render.charts import PHASE_COLORS, WIDTH, inline_svg
from perfsuite.results.reader import ALL_PHASES

TEMPLATE = "memory_section.html.j2"


def allocations_chart(memory: dict) -> str:
    """Grouped horizontal bars: tensor allocations per step of each phase, per implementation (log scale)."""
    names = list(memory["impls"])
    fig, ax = plt.subplots(figsize=(WIDTH, 0.9 * len(names) + 1.4))
    height = 0.8 / len(ALL_PHASES)
    for i, phase in enumerate(ALL_PHASES):
        values = [memory["impls"][n]["phases"].get(phase, {}).get("allocations_per_step", 0.0) for n in names]
        ys = np.arange(len(names)) + (i - len(ALL_PHASES) / 2 + 0.5) * height
        ax.barh(ys, values, height=height, color=PHASE_COLORS[phase], label=phase)
    ax.set_yticks(np.arange(len(names)), names)
    ax.invert_yaxis()
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("tensor allocations per step (median over profiled epochs; symmetric log scale, linear below 1)")
    ax.legend(ncol=len(ALL_PHASES), loc="upper center", bbox_to_anchor=(0.5, -0.3), frameon=False, fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    return inline_svg(fig, "memory-allocations", "tensor allocations per step by phase")


def section(summary: dict) -> str:
    """The HTML of the memory section, or ``""`` when the run has no memory figures."""
    memory = summary.get("memory")
    if not memory or not memory.get("impls"):
        return ""
    return html.render(TEMPLATE, memory=memory, phases=ALL_PHASES, chart=allocations_chart(memory))
