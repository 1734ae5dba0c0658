"""The report's "Named phases" section: phases a user named in their own loop, as a breakdown of ``other``.

:func:`section` renders ``templates/userphases_section.html.j2`` from the
``"user_phases"`` object of ``summary.json``
(:mod:`perfsuite.analysis.userphases`); empty for runs without user phases.
"""

from perfsuite.render import html

TEMPLATE = "userphases_section.html.j2"


def section(summary: dict) -> str:
    """The HTML of the named-phases section, or ``""`` when the run has none."""
    named = summary.get("user_phases")
    if not named:
        return ""
    return html.render(TEMPLATE, named=named)
