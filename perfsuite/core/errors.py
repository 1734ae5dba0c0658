"""Errors the command line turns into one-line messages.

A :class:`UsageError` is the user's input being wrong (exit status 2); a
:class:`RunFailure` is something that failed while doing what was asked
(exit status 1). Anything else is a bug and keeps its traceback.
"""


class PerfsuiteError(Exception):
    """Base class of the errors reported as one line without a traceback."""

    exit_status = 1


class UsageError(PerfsuiteError):
    """Bad input: an option, a file or a name the user gave is unusable."""

    exit_status = 2


class DataError(UsageError):
    """A dataset file is missing or corrupt; the message names the file."""

    def __init__(self, path, problem):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class RunFailure(PerfsuiteError):
    """A run could not do what was asked (a worker failed, a check diverged)."""

    exit_status = 1


def error_message(exc: BaseException) -> str:
    """The first line of ``ExceptionType: message``, as a parent reports a child's failure."""
    return f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
