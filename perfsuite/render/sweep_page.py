"""The sweep page: ``index.html`` of a sweep folder, from the analysis of its points."""

from pathlib import Path

from perfsuite.analysis.sweep import analyse_sweep
from perfsuite.render import html, sweep_charts

PAGE = "index.html"
TEMPLATE = "sweep.html.j2"


def write_sweep_page(folder) -> Path:
    """Analyse a sweep folder (``sweep.csv``, fits in ``sweep.json``) and write its page; the page's path."""
    folder = Path(folder)
    record, frame = analyse_sweep(folder)
    return html.write_page(
        folder / PAGE,
        TEMPLATE,
        record=record,
        frame=frame,
        charts=sweep_charts.charts(frame, record) if not frame.empty else {},
        tables=sweep_charts.tables(frame, record),
        sentences=record["analysis"]["crossovers"],
        synthetic=bool(record["dataset"].get("synthetic")),
    )
