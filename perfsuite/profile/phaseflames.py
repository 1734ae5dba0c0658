"""The phase flame graphs of ``perfsuite flame``: per implementation, per phase, and between two implementations.

From one implementation's collapsed stacks (py-spy ``--format raw``), with
the process bootstrap cut and the phases as the first frames under ``epoch``
(:func:`perfsuite.profile.folded.phase_rooted`), this writes into ``flame/``:

* ``<impl>.phases.collapsed.txt`` — the phase-rooted stacks, ``epoch;<phase>;… count``;
* ``<impl>.phases.speedscope.json`` — the same stacks as a speedscope profile;
* ``<impl>.phases.svg`` — one flame graph whose first towers above ``epoch``
  are ``batching``, ``forward``, ``loss``, ``backward``, ``step`` (and ``other``);
* ``<impl>.<phase>.svg`` — one flame graph per phase holding only that phase's
  samples (a phase without samples gets no file, and a note says so);

and, for a pair ``A,B``, ``diff-A-B.folded.txt`` (``stack count_A count_B``,
A's counts scaled to B's total) and ``diff-A-B.svg``: B's phase-rooted flame
graph with each frame coloured by the change of its own share from A to B
(red: larger in B, blue: smaller). Colour follows a frame's *own* samples
(Gregg's rule), so the phase frames of two implementations, whose samples
all lie in frames above them, stay pale; ``diff-A-B-by-phase.svg`` is the
same comparison cut at the phases, where each phase is coloured by the
change of its share. The SVGs are drawn by inferno
(:mod:`perfsuite.profile.flamesvg`); without it only the text files are
written, with a note.
"""

from pathlib import Path

from perfsuite.core.interface import OTHER, PHASES
from perfsuite.profile import flamesvg, folded
from perfsuite.results.writer import write_json, write_text

GRAPH_PHASES = PHASES + (OTHER,)
BY_PHASE = "-by-phase"
"""Suffix of the differential graph cut at the phases (``diff-A-B-by-phase.svg``)."""


def diff_stem(before: str, after: str) -> str:
    """The file stem of the differential flame graph of ``after`` against ``before``."""
    return f"diff-{before}-{after}"


def _write_lines(path: Path, lines: list) -> str:
    write_text(path, "".join(f"{line}\n" for line in lines))
    return path.name


def _draw(path: Path, lines: list, title: str, notes: list) -> str | None:
    """Draw one SVG; a failure becomes a note and no file."""
    try:
        return flamesvg.write(path, lines, title)
    except flamesvg.FlameSvgError as exc:
        notes.append(str(exc))
        return None


def write_phase_graphs(flame_dir: Path, name: str, rooted: list) -> dict:
    """Write one implementation's phase-rooted files; returns their names and the notes of what was not drawn.

    ``rooted`` is :func:`~perfsuite.profile.folded.phase_rooted` of its
    collapsed stacks. The result is ``{"collapsed", "speedscope", "svg",
    "per_phase": {phase: file}, "notes": [...]}``, ``svg`` being ``None`` when
    nothing was drawn.
    """
    files = {
        "collapsed": _write_lines(flame_dir / f"{name}.phases.collapsed.txt", folded.to_lines(rooted)),
        "speedscope": f"{name}.phases.speedscope.json",
        "svg": None,
        "per_phase": {},
        "notes": [],
    }
    write_json(flame_dir / files["speedscope"], folded.speedscope(rooted, f"{name} by phase"))
    notes = files["notes"]
    if not rooted:
        notes.append(f"{name}: no samples inside an epoch, no phase flame graphs")
        return files
    unavailable = flamesvg.missing()
    if unavailable:
        notes.append(unavailable)
        return files
    total = sum(count for _, count in rooted)
    title = f"{name}: epoch by phase ({total} samples)"
    files["svg"] = _draw(flame_dir / f"{name}.phases.svg", folded.to_lines(rooted), title, notes)
    for phase in GRAPH_PHASES:
        only = folded.of_phase(rooted, phase)
        samples = sum(count for _, count in only)
        if not samples:
            notes.append(f"{name}: no samples in {phase}, no {phase} flame graph")
            continue
        title = f"{name}: {phase} ({samples} of {total} samples, {samples / total:.1%})"
        drawn = _draw(flame_dir / f"{name}.{phase}.svg", folded.to_lines(only), title, notes)
        if drawn:
            files["per_phase"][phase] = drawn
    return files


def write_diff(flame_dir: Path, before: str, after: str, rooted: dict) -> dict:
    """Write the differential stacks and flame graph of ``after`` against ``before`` (names in ``rooted``).

    Returns ``{"before", "after", "folded", "svg", "phases_svg", "notes"}``;
    an SVG is ``None`` when it could not be drawn (the note says why).
    """
    stem = diff_stem(before, after)
    lines = folded.differential_lines(folded.differential(rooted[before], rooted[after]))
    entry = {"before": before, "after": after, "folded": None, "svg": None, "notes": []}
    entry["folded"] = _write_lines(flame_dir / f"{stem}.folded.txt", lines)
    unavailable = flamesvg.missing()
    if unavailable:
        entry["notes"].append(unavailable)
        return entry
    title = f"{after} vs {before}: red = larger share in {after}, blue = smaller"
    entry["svg"] = _draw(flame_dir / f"{stem}.svg", lines, title, entry["notes"])
    phases = [folded.truncated(rooted[name], 2) for name in (before, after)]
    lines = folded.differential_lines(folded.differential(*phases))
    title = f"{after} vs {before} by phase: red = the phase takes a larger share in {after}, blue = smaller"
    entry["phases_svg"] = _draw(flame_dir / f"{stem}{BY_PHASE}.svg", lines, title, entry["notes"])
    return entry
