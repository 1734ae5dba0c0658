"""Child processes of a perfsuite parent: started, answered, explained and stopped in one way.

Every child (a run worker, a profiling worker, the roofline probe) is
spawned with SIGINT and SIGTERM ignored from its first instruction, so Ctrl-C
and a SIGTERM sent to the whole process group are the parent's alone: the
parent stops its children and keeps what they measured.
The protocol is a pipe of tuples: the parent sends ``(command, *args)``; the
child answers ``(command, payload)``, or ``("error", one_line, traceback)``
and ends. :func:`exit_reason` words why a child that stopped answering is
gone, for every kind of child alike.
"""

import multiprocessing
import signal
import threading
import time
import traceback

from perfsuite.core.errors import error_message

STARTUP_TIMEOUT = 300.0
"""Seconds a worker may take to start (import torch, load the data) at the least, whatever ``--timeout`` says."""


class WorkerLost(Exception):
    """A child failed, died or stopped answering; ``reason`` is the one line to report."""

    def __init__(self, reason: str, traceback: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.traceback = traceback


PARENTS_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""Signals that stop a run through its parent: a child ignores them from its start."""


def spawn(target, args: tuple, name: str, duplex: bool = True):
    """Start ``target(child_conn, *args)`` in a spawned process ignoring :data:`PARENTS_SIGNALS`.

    Returns ``(process, parent_conn)``. The signals are ignored in the parent
    while the child starts, so the child inherits that before its first
    instruction; the parent's own handlers come back at once.
    """
    mp = multiprocessing.get_context("spawn")
    parent, child = mp.Pipe(duplex=duplex)
    process = mp.Process(target=target, args=(child, *args), name=name, daemon=True)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in PARENTS_SIGNALS} if main_thread else {}
    try:
        process.start()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    child.close()
    return process, parent


def exit_reason(process) -> str:
    """Why a child process that stopped answering is gone, in one line."""
    process.join(timeout=5)
    code = process.exitcode
    if code is None:
        return "worker stopped answering"
    if code < 0:
        try:
            return f"worker was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"worker was killed by signal {-code}"
    return f"worker exited unexpectedly with status {code}"


def checked(message: tuple, expected: str):
    """The payload of ``message`` if it is the ``expected`` answer; else raise :class:`WorkerLost`."""
    if message[0] == "error":
        raise WorkerLost(message[1], message[2] if len(message) > 2 else "")
    if message[0] != expected:
        raise WorkerLost(f"protocol error: expected {expected!r}, got {message[0]!r}")
    return message[1]


def receive(process, conn, expected: str, timeout: float):
    """The payload of the child's next answer; a silent, dead or failed child raises :class:`WorkerLost`.

    A child silent for ``timeout`` seconds is killed.
    """
    try:
        if not conn.poll(timeout):
            process.kill()
            raise WorkerLost(
                f"no answer within {timeout:g} s; the worker was stopped (raise --timeout if it is just slow)"
            )
        message = conn.recv()
    except (EOFError, ConnectionError, OSError):
        raise WorkerLost(exit_reason(process)) from None
    return checked(message, expected)


def stop_process(process, conn, graceful: bool = True) -> None:
    """Send ``stop`` over ``conn`` (or kill at once when not ``graceful``), reap ``process``, close ``conn``."""
    if not graceful:
        process.kill()
    elif process.is_alive():
        try:
            conn.send(("stop",))
        except (OSError, ValueError):
            process.kill()
    process.join(timeout=10)
    if process.is_alive():
        process.kill()
        process.join(timeout=5)
    conn.close()


def serve(conn, state, answer) -> None:
    """Answer every command ``(name, *args)`` with ``(name, answer(state, name, args))`` until ``("stop",)``."""
    while True:
        command, *args = conn.recv()
        if command == "stop":
            return
        conn.send((command, answer(state, command, args)))


def child_main(conn, start, answer) -> None:
    """The body of a worker process.

    ``start()`` builds the worker's state and returns ``(state, ready_payload)``;
    ``start_seconds`` (how long it took) is added to the payload sent as
    ``("ready", payload)``. Then every command is answered
    by :func:`serve` until ``("stop",)``. Any
    exception is sent back as ``("error", one_line, traceback)`` and ends
    the worker; a parent that went away ends it quietly.
    """
    for sig in PARENTS_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    try:
        began = time.perf_counter()
        state, ready = start()
        conn.send(("ready", {"start_seconds": time.perf_counter() - began, **ready}))
        serve(conn, state, answer)
    except (EOFError, BrokenPipeError):
        return
    except BaseException as exc:
        conn.send(("error", error_message(exc), traceback.format_exc()))
    finally:
        conn.close()
