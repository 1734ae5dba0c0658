"""One epoch of one implementation (one rank), as measured: the run folder's unit of data.

An :class:`EpochRecord` holds raw samples only — the epoch's wall seconds,
every step's phase seconds and loss, sub-phase seconds, accuracies and the
implementation's facts — like ``torch.utils.benchmark``'s ``Measurement``.
Totals, ``other``, coverage and mean loss are derived from the samples
(:meth:`EpochRecord.row`), never stored beside them. The run worker, every
rank of a multi-rank implementation and the profiling worker send this type;
:class:`~perfsuite.results.writer.ResultsWriter` appends it and
:meth:`perfsuite.results.reader.Run.records` reads it back.
"""

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from perfsuite.core.interface import OTHER, PHASES, SUBPHASES
from perfsuite.results.schema import FACTS, RANK

NAN = float("nan")


@dataclass(frozen=True)
class EpochRecord:
    """The raw samples of one epoch.

    ``phases`` has one tuple per step with the seconds of each of
    :data:`~perfsuite.core.interface.PHASES`; ``losses`` one loss per step;
    ``subphases`` maps a name of :data:`~perfsuite.core.interface.SUBPHASES`
    to its per-step seconds (already inside its parent phase); ``facts`` is
    what the implementation reported about the epoch (numbers, flags, words).
    Accuracies are NaN where they were not evaluated (profiling runs).
    ``user_phases`` maps a phase a user named in their own loop
    (:mod:`perfsuite.record`) to ``(step, seconds)`` pairs of the steps it
    ran in; that time lies outside the five phases, inside ``other``.
    """

    round: int
    epoch: int
    warmup: bool
    wall: float
    phases: tuple[tuple[float, ...], ...]
    losses: tuple[float, ...]
    train_accuracy: float = NAN
    test_accuracy: float = NAN
    rank: int = 0
    subphases: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    facts: Mapping[str, object] = field(default_factory=dict)
    user_phases: Mapping[str, tuple[tuple[int, float], ...]] = field(default_factory=dict)

    @classmethod
    def from_measurement(cls, m, round_: int, epoch: int, warmup: bool, **fields) -> "EpochRecord":
        """The record of a :class:`~perfsuite.core.phases.EpochMeasurement` (its ``extra`` become facts).

        ``fields`` sets the rest (``rank``, accuracies); ``facts`` given there
        are added to the measurement's own.
        """
        facts = {**m.extra, **(fields.pop("facts", None) or {})}
        return cls(
            round=round_,
            epoch=epoch,
            warmup=bool(warmup),
            wall=float(m.wall),
            phases=tuple(tuple(step) for step in m.phases.tolist()),
            losses=tuple(m.losses.tolist()),
            subphases={name: tuple(values.tolist()) for name, values in (m.subphases or {}).items()},
            facts=facts,
            **fields,
        )

    @property
    def steps(self) -> int:
        """Steps in the epoch."""
        return len(self.phases)

    @property
    def phase_totals(self) -> dict:
        """Seconds per phase summed over the epoch's steps."""
        totals = [sum(col) for col in zip(*self.phases, strict=True)] if self.phases else [0.0] * len(PHASES)
        return dict(zip(PHASES, totals, strict=True))

    def row(self, impl: str) -> dict:
        """The ``epochs.csv`` row of this epoch (sub-phase columns ``None`` when not measured)."""
        totals = self.phase_totals
        inside = sum(totals.values())
        losses, wall = self.losses, self.wall
        return {
            "impl": impl,
            "round": self.round,
            "epoch": self.epoch,
            "warmup": int(self.warmup),
            "steps": self.steps,
            "wall_seconds": wall,
            **{f"{p}_seconds": t for p, t in totals.items()},
            f"{OTHER}_seconds": wall - inside,
            "coverage": inside / wall if wall > 0 else NAN,
            "mean_loss": sum(losses) / len(losses) if losses else NAN,
            "final_loss": losses[-1] if losses else NAN,
            "train_accuracy": self.train_accuracy,
            "test_accuracy": self.test_accuracy,
            **{
                f"{name}_seconds": (float(sum(self.subphases[name])) if name in self.subphases else None)
                for name in SUBPHASES
            },
            RANK: self.rank,
            FACTS: facts_json(self.facts),
        }


def facts_json(facts) -> str:
    """An epoch's facts as compact JSON (``None`` when there are none); non-finite numbers become null."""
    if not facts:
        return None
    clean = {
        str(k): (None if isinstance(v, float) and not math.isfinite(v) else v)
        for k, v in facts.items()
        if v is None or isinstance(v, (bool, int, float, str))
    }
    return json.dumps(clean, sort_keys=True, allow_nan=False) if clean else None
