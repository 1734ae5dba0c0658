"""The live progress line of a run (rich), silent under ``--quiet`` or off a terminal."""

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def console(stderr: bool = False) -> Console:
    """A rich console; off a terminal it is 140 columns wide so tables stay readable in logs."""
    probe = Console(stderr=stderr)
    return probe if probe.is_terminal else Console(stderr=stderr, width=140)


class RunProgress:
    """Shows which implementation, round and epoch runs, and the elapsed time.

    Notes (skipped or failed implementations) are printed on stderr even
    when the live display is off, because they change what the run means.
    """

    def __init__(self, quiet: bool = False, console: Console = None):
        self.console = console or Console(stderr=True)
        self.live = not quiet and self.console.is_terminal
        self._progress = None
        self._task = None
        self._start = time.monotonic()

    def start(self, total: int | None) -> None:
        """Begin a display of ``total`` epochs; with ``None`` (adaptive sampling) a count of epochs done."""
        if not self.live:
            return
        count = MofNCompleteColumn() if total is not None else TextColumn("{task.completed} epochs")
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            count,
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task("starting workers", total=total)

    def status(self, text: str) -> None:
        """Say what is happening now (e.g. ``store · round 1/1 · epoch 2/6``, or with ``--precision``
        ``store · round 1/1 · epoch 9 · target ±3.0% · widest ±4.2% (ddp)``)."""
        if self._progress is not None:
            self._progress.update(self._task, description=text)

    def advance(self) -> None:
        """One more epoch done."""
        if self._progress is not None:
            self._progress.advance(self._task)

    def note(self, text: str) -> None:
        """A one-line note that always reaches the user (on stderr)."""
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._start
