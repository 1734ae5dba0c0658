"""Flame-graph SVGs of collapsed-stack lines, drawn by inferno through ``pyinferno``.

inferno is the Rust port of Brendan Gregg's ``flamegraph.pl`` that py-spy
itself uses to draw its SVGs; ``pyinferno`` (PyPI) binds it. Lines are
collapsed stacks, ``frame;frame;… count``, and the SVG is inferno's
interactive page (hover for a frame's samples and share, click to zoom,
search). Lines with two counts, ``frame;frame;… count_before count_after``,
give inferno's differential flame graph: widths are the second count, a
frame is red where its own samples grew from the first count to the second
and blue where they shrank, and its title reads ``name (N samples, S%; ±D%)``.

Nothing is drawn here by hand: this module only hands lines to inferno,
writes the SVG, and turns inferno's failures into one-line errors.
"""

import importlib
from pathlib import Path

from perfsuite.results.writer import write_text

INSTALL = "pip install pyinferno"


class FlameSvgError(Exception):
    """inferno could not draw a flame graph (no samples, or lines it cannot read); one line."""


def missing() -> str:
    """Why flame graphs cannot be drawn here (pyinferno not importable), or ``""`` when they can."""
    try:
        importlib.import_module("pyinferno")
    except ImportError as exc:
        return f"phase and differential flame graphs not drawn: pyinferno cannot be imported ({exc}; {INSTALL})"
    return ""


def draw(lines: list, title: str) -> str:
    """The SVG text of a flame graph of collapsed-stack ``lines`` (one or two counts per line)."""
    from pyinferno import InfernoError, flamegraph_from_lines

    if not lines:
        raise FlameSvgError(f"{title}: no samples to draw")
    try:
        return flamegraph_from_lines(list(lines), title)
    except InfernoError as exc:
        raise FlameSvgError(f"{title}: inferno could not draw it ({exc})") from exc


def write(path: Path, lines: list, title: str) -> str:
    """Draw ``lines`` into the SVG file ``path``; returns the file's name."""
    write_text(path, draw(lines, title))
    return Path(path).name
