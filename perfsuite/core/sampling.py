"""What adaptive sampling is asked for: a precision target, a time budget, the least and most epochs.

``perfsuite run --precision 0.03 [--budget 120s] [--max-epochs N]`` builds a
:class:`SamplingTarget`; the measure layer's plan
(:mod:`perfsuite.measure.sampling`) follows it. Without ``--precision`` there
is no target and a run measures its fixed number of epochs.
"""

import math
import re
from dataclasses import asdict, dataclass

from perfsuite.core.errors import UsageError

DEFAULT_MAX_EPOCHS = 40
"""Most measured epochs per implementation when ``--max-epochs`` is not given (or the minimum, if larger)."""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|sec|m|min|h)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {None: 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class SamplingTarget:
    """Measure until every interval's relative half-width is at most ``precision``.

    ``budget`` (seconds, or ``None`` for none) bounds the measuring time;
    every implementation gets at least ``min_epochs`` and at most
    ``max_epochs`` measured epochs.
    """

    precision: float
    budget: float | None
    min_epochs: int
    max_epochs: int

    def to_dict(self) -> dict:
        """The target as plain JSON-ready data."""
        return asdict(self)


def parse_precision(text: str) -> float:
    """``--precision``: a fraction in (0, 1) such as ``0.03``, or a percentage such as ``3%``."""
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:
        raise UsageError(f"--precision {text}: must be a fraction in (0, 1), e.g. 0.03 or 3%")
    return value


def parse_budget(text: str) -> float:
    """``--budget`` in seconds: ``120``, ``120s``, ``2m`` or ``1h``."""
    found = _DURATION.match(str(text))
    if not found:
        raise UsageError(f"--budget {text}: not a duration; give seconds or minutes, e.g. 120, 120s or 2m")
    seconds = float(found.group(1)) * _UNIT_SECONDS[(found.group(2) or "").lower() or None]
    if not seconds > 0:
        raise UsageError(f"--budget {text}: must be a positive duration, e.g. 120, 120s or 2m")
    return seconds


def sampling_target(precision, budget, max_epochs, min_epochs: int) -> SamplingTarget | None:
    """The target of the options as given (strings from the command line), or ``None`` without ``--precision``.

    ``min_epochs`` is the fixed plan's measured epochs (``--epochs`` × ``--repeats``).
    """
    if precision is None:
        for option, value in (("--budget", budget), ("--max-epochs", max_epochs)):
            if value is not None:
                raise UsageError(f"{option} {value}: only applies with --precision")
        return None
    target = parse_precision(precision)
    seconds = parse_budget(budget) if budget is not None else None
    if max_epochs is None:
        max_epochs = max(DEFAULT_MAX_EPOCHS, min_epochs)
    elif max_epochs < min_epochs:
        raise UsageError(
            f"--max-epochs {max_epochs}: must be at least the minimum, --epochs × --repeats = {min_epochs}"
        )
    return SamplingTarget(target, seconds, min_epochs, max_epochs)
