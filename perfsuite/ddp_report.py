"""The report's section on multi-rank implementations: ranks, communication and the comm model.

:func:`section` renders ``templates/ddp_section.html.j2`` from a run summary
(:func:`perfsuite.summary.summarize`); it is empty when no implementation of
the run had more than one rank.
"""

import jinja2

from perfsuite import commmodel
from perfsuite.interface import PHASES

TEMPLATE = "ddp_section.html.j2"


def section(summary: dict, env: jinja2.Environment) -> str:
    """The HTML of the ranks-and-communication section, or ``""``."""
    impls = summary.get("implementations", {})
    found = {name: e["distributed"] for name, e in impls.items() if e.get("distributed")}
    if not found:
        return ""
    models = {name: impls[name].get("comm_model") for name in found}
    return env.get_template(TEMPLATE).render(found=found, models=models, phases=PHASES,
                                             ranks=commmodel.RANKS, widths=commmodel.WIDTHS)
