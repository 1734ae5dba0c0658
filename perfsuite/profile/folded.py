"""Phase-rooted stacks: an epoch's samples with the phases as the first frames under the epoch.

py-spy's stacks start at the process's bootstrap (``<module>``, ``spawn_main``,
``_bootstrap``, ``run``, the worker's loop) and reach the phase several levels
down. :func:`phase_rooted` keeps the samples inside an epoch — the
decision of :meth:`~perfsuite.profile.stacks.Attribution.locate`, which also
gives the sampled shares, so the towers add up to them — and rewrites each as ``epoch;<phase>;<what ran in
it>``:

* a staged implementation: the frames below the harness's own phase frame
  (``forward (perfsuite/core/phases.py:…)``), i.e. the implementation's method
  and everything it called;
* a fused implementation: the frames below its ``phase_<phase>`` symbol;
* ``other``: the frames below the harness's epoch frame.

From those, :func:`of_phase` gives one phase's samples (a flame graph of that
phase alone) and :func:`differential` two implementations' stacks side by side
with their counts normalised to the same total, the input of a differential
flame graph (Brendan Gregg's ``difffolded.pl`` format: ``stack count_a
count_b``). :func:`speedscope` writes a sampled profile in speedscope's file
format. Every function here works on ``(frames, count)`` pairs of
:func:`~perfsuite.profile.stacks.parse_collapsed`; nothing is drawn.
"""

from collections import Counter

from perfsuite.core.interface import OTHER, PHASES
from perfsuite.profile.stacks import Attribution, Frame

ROOT = "epoch"
SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"


def frame_text(frame: Frame) -> str:
    """A frame as py-spy writes it: ``name (file:line)``, ``symbol (library)`` or a bare name."""
    if frame.line is not None:
        return f"{frame.name} ({frame.file}:{frame.line})"
    return f"{frame.name} ({frame.file})" if frame.file else frame.name


def phase_rooted(stacks, attribution: Attribution | None = None, root: str = ROOT) -> list:
    """``(frames, count)`` of the samples inside epochs, each as ``(root, phase, *frames that ran in it)``.

    Frames are strings (:func:`frame_text`); identical rewritten stacks are
    merged, largest first. Samples outside every epoch are dropped.
    """
    attribution = attribution or Attribution()
    merged = Counter()
    for frames, count in stacks:
        found = attribution.locate(frames)
        if found is None:
            continue
        phase, below = found
        merged[(root, phase, *map(frame_text, frames[below:]))] += count
    return sorted(merged.items(), key=lambda item: (-item[1], item[0]))


def of_phase(rooted, phase: str) -> list:
    """The phase-rooted stacks of one phase (``PHASES`` or ``other``)."""
    if phase not in PHASES + (OTHER,):
        raise ValueError(f"unknown phase {phase!r} (one of {', '.join(PHASES + (OTHER,))})")
    return [(frames, count) for frames, count in rooted if frames[1] == phase]


def truncated(stacks, depth: int) -> list:
    """``(frames, count)`` of ``stacks`` cut to their first ``depth`` frames, identical ones merged, largest first.

    At depth 2 a phase-rooted stack is ``(epoch, phase)``: the phase becomes
    the leaf, so a differential graph colours the phases themselves by the
    change in their share.
    """
    merged = Counter()
    for frames, count in stacks:
        merged[tuple(frames[:depth])] += count
    return sorted(merged.items(), key=lambda item: (-item[1], item[0]))


def to_lines(rooted) -> list:
    """Collapsed-stack lines (``frame;frame;… count``) of phase-rooted stacks."""
    return [f"{';'.join(frames)} {count}" for frames, count in rooted]


def differential(before, after) -> list:
    """``(frames, count_before, count_after)`` of two sets of stacks, ``before`` scaled to ``after``'s total.

    The counts of ``before`` are rescaled (and rounded) so both sides hold the
    same number of samples, as ``difffolded.pl -n`` does: a frame then grows or
    shrinks by its *share*, not by how long each side was sampled.
    """
    a, b = Counter(), Counter()
    for frames, count in before:
        a[tuple(frames)] += count
    for frames, count in after:
        b[tuple(frames)] += count
    total_a, total_b = sum(a.values()), sum(b.values())
    scale = total_b / total_a if total_a else 0.0
    keys = sorted(a.keys() | b.keys(), key=lambda k: (-(b[k] + a[k] * scale), k))
    return [(k, round(a[k] * scale), b[k]) for k in keys]


def differential_lines(rows) -> list:
    """``frame;frame;… count_before count_after`` lines of :func:`differential` rows."""
    return [f"{';'.join(frames)} {before} {after}" for frames, before, after in rows]


def speedscope(rooted, name: str) -> dict:
    """A speedscope ``sampled`` profile of phase-rooted stacks (weights are sample counts)."""
    index, frames = {}, []
    samples, weights = [], []
    for stack, count in rooted:
        ids = []
        for text in stack:
            if text not in index:
                index[text] = len(frames)
                frames.append({"name": text})
            ids.append(index[text])
        samples.append(ids)
        weights.append(count)
    profile = {
        "type": "sampled",
        "name": name,
        "unit": "none",
        "startValue": 0,
        "endValue": sum(weights),
        "samples": samples,
        "weights": weights,
    }
    return {"$schema": SPEEDSCOPE_SCHEMA, "shared": {"frames": frames}, "profiles": [profile], "name": name}
