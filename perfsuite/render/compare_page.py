"""The compare page: a standalone HTML view of ``perfsuite compare`` (no external resources)."""

from dataclasses import asdict
from pathlib import Path

import pandas as pd

from perfsuite.analysis import compare
from perfsuite.core.errors import UsageError
from perfsuite.render import html

TEMPLATE = "compare.html.j2"


def write_compare_page(
    path: Path,
    rows: list,
    warnings: list,
    base,
    new,
    threshold: float,
    alpha: float = compare.DEFAULT_ALPHA,
    mode: str = "",
) -> None:
    """Write the comparison ``rows`` of runs ``base`` and ``new`` to ``path`` (``--html``).

    ``warnings`` are the lines printed on stderr (the drift line among them),
    ``mode`` one phrase saying what was compared (calibrated ratios or raw seconds).
    """
    frame = pd.DataFrame([asdict(r) for r in rows])
    table = frame.to_html(index=False, escape=True, classes="data", border=0, na_rep="—", float_format="%.4g")
    try:
        html.write_page(
            path,
            TEMPLATE,
            base=base,
            new=new,
            threshold=threshold,
            alpha=alpha,
            mode=mode,
            rules=compare.rules(threshold, alpha),
            warnings=warnings,
            table=table,
            slower=[r for r in rows if r.verdict == "slower"],
            inconclusive=[r for r in rows if r.verdict == "inconclusive"],
        )
    except UsageError as exc:
        raise UsageError(f"--html {exc}") from exc
