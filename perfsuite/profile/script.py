"""``perfsuite profile -- python train.py ARGS…``: a user's own script, recorded phase by phase.

The script marks its loop with :mod:`perfsuite.record`; this module runs it in
its own process with ``PERFSUITE_RECORD`` naming an append-only JSON-lines
file (``RUN_DIR/script/<name>.records.jsonl``) that the script's recorder
appends each finished epoch to. The parent reads that file as it grows and
appends every epoch to the run folder (``epochs.csv``, ``phases.csv``,
``steps.csv`` when the script gave losses) at once, so a script that crashes
keeps the epochs it finished. ``meta.json`` holds the command, the script, its
arguments and the git state of the script's checkout; ``summary.json`` and
``index.html`` are written at the end like every other run.

Two commands (``… -- python a.py :: python b.py`` or the same script with two
argument sets) run alternately epoch by epoch: each is started with a gate
(``PERFSUITE_RECORD_GATE``, a pipe) its recorder waits on before every epoch,
and the parent lets one epoch run at a time, only when every other script is
waiting at its gate or has exited — so no script's work overlaps another's
epoch. The epochs are paired by number in the analysis. ``--back-to-back``
(or a script that does not wait at its gate) runs them one after the other
instead, and the drift caveat is printed.
"""

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from perfsuite.core import metadata
from perfsuite.core.errors import RunFailure, UsageError
from perfsuite.core.recording import ENV as RECORD_ENV
from perfsuite.core.recording import GATE_ENV, STANDARD
from perfsuite.profile import pyspy
from perfsuite.profile.scriptflame import ScriptSampler
from perfsuite.render.report import write_report
from perfsuite.results import writer
from perfsuite.results.record import EpochRecord

SEPARATOR = "::"
"""Separates two commands in one call: ``perfsuite profile -- python a.py :: python b.py``."""
POLL_SECONDS = 0.02
DRIFT_CAVEAT = (
    "the scripts ran back to back, not alternately: a change of the machine's speed between them (other work, "
    "frequency, heat) shows up as a difference between the scripts; compare them only with that caveat"
)


def split_commands(words: list) -> list:
    """The commands after ``--``, split at ``::``; one line (exit 2) when one is empty or there are none."""
    if words and words[0] == "--":
        words = words[1:]
    commands, current = [], []
    for word in words:
        if word == SEPARATOR:
            commands.append(current)
            current = []
        else:
            current.append(word)
    commands.append(current)
    if not any(commands):
        raise UsageError("give the command to profile after --, e.g. perfsuite profile -- python train.py")
    if any(not c for c in commands):
        raise UsageError(f"an empty command around '{SEPARATOR}' (give: -- python a.py {SEPARATOR} python b.py)")
    if len(commands) > 2:
        raise UsageError(f"at most two commands in one call ({len(commands)} given)")
    return commands


def _script_index(command: list):
    """Where the script file is in a command (``python [opts] FILE …`` or ``FILE …``), or ``None``.

    ``None`` for ``python -m module``, ``python -c code``, a bare ``python`` and
    a program that is not a file here (``torchrun`` found on the PATH).
    """
    if Path(command[0]).name.startswith("python"):
        for index in range(1, len(command)):
            word = command[index]
            if word in ("-m", "-c"):
                return None
            if not word.startswith("-"):
                return index
        return None
    return 0 if Path(command[0]).is_file() else None


def script_of(command: list):
    """The script file a command runs, or ``None`` (see :func:`_script_index`)."""
    index = _script_index(command)
    return None if index is None else Path(command[index])


def _check_command(command: list) -> None:
    if shutil.which(command[0]) is None:
        raise UsageError(f"{command[0]}: no such program")
    if not Path(command[0]).name.startswith("python"):
        return
    script = script_of(command)
    if script is None and "-m" not in command and "-c" not in command:
        raise UsageError(f"{' '.join(command)}: which script? (give: python train.py ARGS…)")
    if script is not None and not script.is_file():
        raise UsageError(f"{script}: no such script")


def _names(commands: list, given) -> list:
    if given:
        names = [n.strip() for n in given.split(",")]
        if len(names) != len(commands) or not all(names) or len(set(names)) != len(names):
            raise UsageError(f"--name {given}: give {len(commands)} different name(s), comma-separated")
        bad = [n for n in names if not re.fullmatch(r"[A-Za-z0-9_.+-]+", n) or n.startswith(".")]
        if bad:
            raise UsageError(f"--name {bad[0]}: use letters, digits and _ . + - only")
        return names
    stems = []
    for command in commands:
        script = script_of(command)
        if script is not None:
            stems.append(script.stem)
        elif "-m" in command[:-1]:
            stems.append(command[command.index("-m") + 1].rsplit(".", 1)[-1])
        else:
            stems.append(Path(command[0]).name)
    if len(set(stems)) < len(stems):
        stems = [f"{stem}-{i + 1}" for i, stem in enumerate(stems)]
    return stems


def describe(command: list) -> dict:
    """The script's record in ``meta.json``: command, script file, its arguments, working folder and git state."""
    index = _script_index(command)
    entry = {"command": list(command), "cwd": str(Path.cwd())}
    if index is not None:
        resolved = Path(command[index]).resolve()
        entry.update(script=str(resolved), args=list(command[index + 1 :]), git=metadata.git_commit(resolved.parent))
    else:
        entry.update(script=None, args=list(command[1:]), git=metadata.git_commit(Path.cwd()))
    return entry


@dataclass
class Child:
    """One command being profiled: its process, its records file and what has been read from it."""

    name: str
    command: list
    records: Path
    stderr_log: Path
    gated: bool = False
    proc: subprocess.Popen = None
    gate_write: int = None
    offset: int = 0
    partial: bytes = b""
    hello: bool = False
    begins: int = 0
    released: int = 0
    epochs: list = field(default_factory=list)
    tail: bytes = b""
    tee: threading.Thread = None
    ungated: bool = False
    sampled: bool = False

    @property
    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    @property
    def waiting(self) -> bool:
        """At its gate: it said an epoch is about to begin that has not been let run."""
        return self.begins > self.released

    def last_stderr_line(self) -> str:
        lines = [line.strip() for line in self.tail.replace(b"\r", b"\n").decode(errors="replace").split("\n")]
        lines = [line for line in lines if line]
        return lines[-1] if lines else ""


class ScriptProfile:
    """The run folder of one ``perfsuite profile`` call and the scripts it runs."""

    def __init__(self, args, commands: list):
        if args.warmup < 0:
            raise UsageError(f"--warmup {args.warmup}: give 0 or more warm-up epochs")
        if args.flame and args.rate < 1:
            raise UsageError(f"--rate {args.rate}: give at least 1 sample per second")
        for command in commands:
            _check_command(command)
        self.names = _names(commands, args.name)
        binary = pyspy.find_pyspy() if args.flame else None  # before anything is written or run
        self.warmup = args.warmup
        self.quiet = args.quiet
        self.alternate = len(commands) > 1 and not args.back_to_back
        self.folder = writer.create_run_dir(args.out, args.reports)
        if args.out is None:
            writer.point_latest(self.folder)
        (self.folder / "script").mkdir()
        self.writer = writer.ResultsWriter(self.folder)
        self.children = [
            Child(
                name,
                command,
                self.folder / "script" / f"{name}.records.jsonl",
                self.folder / "script" / f"{name}.stderr.txt",
                gated=self.alternate or args.flame,
            )
            for name, command in zip(self.names, commands, strict=True)
        ]
        self.sampler = ScriptSampler(self.folder / "flame", args.rate, binary) if binary else None
        order = "alternate" if self.alternate else ("back-to-back" if len(commands) > 1 else "single")
        self.user_phases = set()
        self.meta = {
            "run_id": self.folder.name,
            **metadata.collect(),
            "workload": {"name": "script"},
            "dataset": {"label": "the script's own data"},
            "status": "running",
            "profile": {"command": "profile", "warmup": self.warmup, "order": order, "flame": {}},
            "scripts": {c.name: describe(c.command) for c in self.children},
            "implementations": {
                c.name: {"spec": " ".join(c.command), "status": "not run", "reason": "", "epochs_done": 0, "setups": []}
                for c in self.children
            },
            "user_phases": [],
        }
        self.save_meta()

    def save_meta(self, status: str = None) -> None:
        if status:
            self.meta["status"] = status
        self.meta["user_phases"] = sorted(self.user_phases)
        self.writer.write_meta(self.meta)

    def note(self, text: str) -> None:
        print(f"perfsuite: {text}", file=sys.stderr, flush=True)

    # --- processes --------------------------------------------------------------------------------
    def start(self, child: Child) -> None:
        env = {**os.environ, RECORD_ENV: str(child.records)}
        env.pop(GATE_ENV, None)
        fds = ()
        gate_read = None
        if child.gated:
            gate_read, child.gate_write = os.pipe()
            env[GATE_ENV] = str(gate_read)
            fds = (gate_read,)
        child.records.touch()
        try:
            child.proc = subprocess.Popen(child.command, env=env, stderr=subprocess.PIPE, pass_fds=fds)
        except OSError as exc:
            raise UsageError(f"{child.command[0]}: cannot start it ({exc.strerror})") from exc
        finally:
            if gate_read is not None:
                os.close(gate_read)
        self.meta["implementations"][child.name]["status"] = "running"
        child.tee = threading.Thread(target=self._tee, args=(child,), daemon=True)
        child.tee.start()
        self.save_meta()

    def _tee(self, child: Child) -> None:
        """Copy the script's stderr to ours and to its log, keeping the end of it for the failure message."""
        out = getattr(sys.stderr, "buffer", None)
        with open(child.stderr_log, "wb") as log:
            while True:
                chunk = os.read(child.proc.stderr.fileno(), 65536)
                if not chunk:
                    return
                log.write(chunk)
                log.flush()
                child.tail = (child.tail + chunk)[-4096:]
                try:
                    if out is not None:
                        out.write(chunk)
                        out.flush()
                    else:
                        sys.stderr.write(chunk.decode(errors="replace"))
                except (OSError, ValueError):
                    pass

    def release(self, child: Child) -> None:
        """Let the script's next epoch run (with ``--flame``, py-spy attaches before its first)."""
        if self.sampler is not None and not child.sampled:
            child.sampled = True
            try:
                self.sampler.attach(child.name, child.proc.pid)
            except pyspy.SamplerError as exc:
                self.sampler.notes.append(f"{child.name}: not sampled: {exc}")
        child.released += 1
        with contextlib.suppress(OSError):
            os.write(child.gate_write, b"g")

    def close_gate(self, child: Child) -> None:
        if child.gate_write is not None:
            os.close(child.gate_write)
            child.gate_write = None

    # --- records ----------------------------------------------------------------------------------
    def read(self, child: Child) -> None:
        """Append every complete line the script added to its records file since the last read."""
        try:
            with open(child.records, "rb") as fh:
                fh.seek(child.offset)
                data = fh.read()
        except OSError:
            return
        child.offset += len(data)
        data = child.partial + data
        lines = data.split(b"\n")
        child.partial = lines.pop()
        for line in lines:
            if line.strip():
                self._line(child, line)

    def _line(self, child: Child, line: bytes) -> None:
        try:
            found = json.loads(line)
        except ValueError:
            return
        if "hello" in found:
            child.hello = True
            if child.gated and not found.get("gated"):
                child.ungated = True
        elif "begin" in found:
            child.begins += 1
        elif "wall" in found:
            if child.gated and child.released < child.begins and not child.ungated:
                child.ungated = True  # an epoch ran that was never let run: the script does not wait at its gate
            self.append(child, found)

    def append(self, child: Child, found: dict) -> None:
        number = int(found["epoch"])
        user = {str(name): tuple((int(s), float(sec)) for s, sec in pairs) for name, pairs in found["user"].items()}
        record = EpochRecord(
            round=0,
            epoch=number,
            warmup=number < self.warmup,
            wall=float(found["wall"]),
            phases=tuple(tuple(float(v) for v in row) for row in found["phases"]),
            losses=tuple(float(v) for v in found.get("losses") or ()),
            user_phases=user,
        )
        row = self.writer.append_epoch(child.name, record)
        child.epochs.append(row)
        self.meta["implementations"][child.name]["epochs_done"] = len(child.epochs)
        if user.keys() - self.user_phases:
            self.user_phases |= user.keys()
            self.save_meta()
        if not self.quiet:
            shares = " ".join(f"{p} {row[f'{p}_seconds'] / row['wall_seconds']:.0%}" for p in (*STANDARD, "other"))
            self.note(
                f"{child.name} epoch {number}{' (warm-up)' if record.warmup else ''}: {row['wall_seconds']:.3f} s, "
                f"{row['steps']} steps · {shares}"
            )

    # --- the run ----------------------------------------------------------------------------------
    def run(self) -> None:
        """Run the scripts (alternately when gated, else one after the other), reading records as they come."""
        if self.alternate:
            for child in self.children:
                self.start(child)
            self._alternate()
        else:
            for child in self.children:
                self.start(child)
                while not child.exited:
                    self.read(child)
                    if child.gated and child.waiting:
                        self.release(child)  # --flame: gated only so that py-spy attaches at the first epoch
                    time.sleep(POLL_SECONDS)
                self._finish_child(child)

    def _alternate(self) -> None:
        live = list(self.children)
        while live:
            for child in live:
                self.read(child)
            for child in [c for c in live if c.exited]:
                self._finish_child(child)
                live.remove(child)
            busy = [c for c in live if not c.waiting]
            if not busy and live:
                turn = min(live, key=lambda c: (c.released, self.children.index(c)))
                self.release(turn)
            time.sleep(POLL_SECONDS)

    def _finish_child(self, child: Child) -> None:
        child.proc.wait()
        if child.tee is not None:
            child.tee.join(timeout=5)
        self.read(child)
        self.close_gate(child)
        self.draw_flames(child)
        entry = self.meta["implementations"][child.name]
        code = child.proc.returncode
        self.meta["scripts"][child.name].update(exit_status=code, last_stderr_line=child.last_stderr_line())
        if code != 0:
            entry.update(status="failed", reason=self.failure(child))
        elif not child.begins:
            entry.update(status="failed", reason=self.never_opened(child))
        else:
            entry.update(status="ok")
        self.save_meta()

    def draw_flames(self, child: Child) -> None:
        """With ``--flame``: stop sampling the ended script and draw its flame graphs."""
        if self.sampler is not None and child.name in self.sampler.recorders:
            script = script_of(child.command)
            roots = ((script.resolve().parent,) if script is not None else ()) + (Path.cwd(),)
            self.meta["profile"]["flame"][child.name] = self.sampler.finish(child.name, roots)

    def failure(self, child: Child) -> str:
        code = child.proc.returncode
        how = f"was killed by signal {_signal_name(-code)}" if code < 0 else f"exited with status {code}"
        last = child.last_stderr_line()
        kept = len(child.epochs)
        return (
            f"{child.name} ({' '.join(child.command)}) {how}{f': {last}' if last else ''}; "
            f"{kept} finished epoch{'' if kept == 1 else 's'} kept"
        )

    def never_opened(self, child: Child) -> str:
        why = "it never entered perfsuite.record.epoch()" if child.hello else "it never imported perfsuite.record"
        return f"{child.name} ({' '.join(child.command)}) never opened an epoch ({why}): nothing was recorded"

    def interrupt(self) -> None:
        """Ctrl-C or SIGTERM: stop the scripts, keep what they finished."""
        for child in self.children:
            self.close_gate(child)
            if child.proc is not None and child.proc.poll() is None:
                child.proc.send_signal(signal.SIGINT)
        for child in self.children:
            if child.proc is None:
                continue
            try:
                child.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()
            self.read(child)
            self.draw_flames(child)
            entry = self.meta["implementations"][child.name]
            if entry["status"] == "running":
                entry["status"] = "interrupted"

    def caveats(self) -> list:
        notes = list(self.sampler.notes) if self.sampler is not None else []
        if len(self.children) > 1 and not self.alternate:
            notes.append(DRIFT_CAVEAT)
        elif self.alternate:
            ungated = [c.name for c in self.children if c.ungated]
            if ungated:
                notes.append(
                    f"{', '.join(ungated)} did not wait at its gate (is perfsuite.record current?): " + DRIFT_CAVEAT
                )
            counts = {c.name: len(c.epochs) for c in self.children}
            if len(set(counts.values())) > 1:
                most = max(counts.values())
                alone = min(counts.values())
                notes.append(
                    f"the scripts finished {', '.join(f'{n}: {k}' for n, k in counts.items())} epochs; the last "
                    f"{most - alone} ran with nothing to alternate with, so only epochs 0–{alone - 1} are paired"
                    if alone
                    else "one script finished no epoch: nothing is paired"
                )
        measured = [c.name for c in self.children if c.epochs and len(c.epochs) <= self.warmup]
        if measured:
            notes.append(
                f"{', '.join(measured)}: every finished epoch was a warm-up epoch (--warmup {self.warmup}), so the "
                "summary has no measured epoch; run more epochs or use --warmup 0"
            )
        return notes

    def finish(self, status: str):
        """Close the files and write ``summary.json`` and the report (when any epoch was recorded)."""
        self.writer.close()
        self.save_meta(status)
        if any(c.epochs for c in self.children):
            measured = [c.name for c in self.children if len(c.epochs) > self.warmup]
            return write_report(self.folder, measured[0] if measured else None)  # the first script is the baseline
        return None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def profile(args) -> int:
    """``perfsuite profile``: run the command(s) with recording on; one line and exit 1 on a failed script."""
    commands = split_commands(args.command)
    session = ScriptProfile(args, commands)
    try:
        session.run()
    except KeyboardInterrupt:
        session.interrupt()
        session.note(f"interrupted; the finished epochs are kept in {session.folder}")
        session.finish("interrupted")
        raise
    failures = [c for c in session.children if c.exited and (c.proc.returncode != 0 or not c.begins)]
    page = session.finish("failed" if failures else "complete")
    for note in session.caveats():
        session.note(note)
    print(f"results: {session.folder}")
    if page is not None:
        print(f"report: {page.resolve()}")
    if failures:
        reasons = [session.meta["implementations"][c.name]["reason"] for c in failures]
        raise RunFailure("; ".join(reasons) + f" (in {session.folder})")
    return 0
