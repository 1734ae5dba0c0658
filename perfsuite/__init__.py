"""perfsuite: where does a PyTorch training step spend its time?

The suite runs interchangeable implementations of one MNIST training workload
under instrumented phases (:data:`PHASES`) and writes the raw measurements,
their statistics and reports to a run folder. This module is the small
public API: the contract an implementation meets (:class:`Implementation`,
:class:`SetupContext`, :class:`EpochTiming`), :func:`load_run` to read a run
folder back as typed :class:`EpochRecord` samples, and :func:`analyse` for its
statistics. The layers behind it are described in ``docs/architecture.md``.

The names are resolved on first use (PEP 562), so a worker process that
imports ``perfsuite.core`` does not pay for pandas and scipy.
"""

from importlib import import_module

from perfsuite.core.metadata import VERSION as __version__

_EXPORTS = {
    "PHASES": "perfsuite.core.interface",
    "Implementation": "perfsuite.core.interface",
    "SetupContext": "perfsuite.core.interface",
    "EpochTiming": "perfsuite.core.interface",
    "EpochRecord": "perfsuite.results.record",
    "Run": "perfsuite.results.reader",
    "load_run": "perfsuite.results.reader",
    "Analysis": "perfsuite.analysis.speedups",
    "analyse": "perfsuite.analysis.speedups",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'perfsuite' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
