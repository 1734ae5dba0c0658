"""The report's section on multi-rank implementations: ranks, communication and the comm model.

:func:`section` renders ``templates/ddp_section.html.j2`` from a run summary
(:func:`perfsuite.analysis.summary.summarize`); it is empty when no implementation of
the run had more than one rank.
"""

from perfsuite.analysis import commmodel
from perfsuite.core.interface import PHASES
from perfsuite.render import html

TEMPLATE = "ddp_section.html.j2"


def section(summary: dict) -> str:
    """The HTML of the ranks-and-communication section, or ``""``."""
    impls = summary.get("implementations", {})
    found = {name: e["distributed"] for name, e in impls.items() if e.get("distributed")}
    if not found:
        return ""
    models = {name: impls[name].get("comm_model") for name in found}
    return html.render(
        TEMPLATE, found=found, models=models, phases=PHASES, ranks=commmodel.RANKS, widths=commmodel.WIDTHS
    )
