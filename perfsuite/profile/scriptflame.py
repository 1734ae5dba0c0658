"""``perfsuite profile --flame``: py-spy samples each script for its whole life; flame graphs by phase.

py-spy attaches to the script's process when it is about to open its first
epoch — the script waits at its gate until py-spy samples it, so imports and
set-up, which py-spy samples slowly (every new shared library makes it read
the process's memory maps again), are left out — and stops when the script
exits (:class:`perfsuite.profile.pyspy.Recorder`, ``--format raw --idle``, at
a raised priority where allowed). From the
collapsed stacks this writes into ``RUN_DIR/flame/``:

* ``<name>.collapsed.txt`` — py-spy's own collapsed stacks, the raw evidence;
* ``<name>.svg`` — the whole process's flame graph from its first epoch on (what ran between epochs too);
* ``<name>.phases.svg``, ``<name>.<phase>.svg``, ``<name>.phases.collapsed.txt``
  and ``.phases.speedscope.json`` — the samples inside epochs with the phases as
  the first towers above ``epoch``, as ``perfsuite flame`` draws them
  (:mod:`perfsuite.profile.phaseflames`); the phase of a sample is read from the
  script's ``record`` scopes (:mod:`perfsuite.profile.scopes`).

The sampled shares of the phases (samples in a phase over samples inside
epochs) go to ``meta.json`` beside the timers'. A sampler that fails once the
script ran costs its graphs, not the recorded epochs: it becomes a note.
"""

from dataclasses import dataclass, field
from pathlib import Path

from perfsuite.profile import flamesvg, folded, phaseflames, pyspy
from perfsuite.profile.scopes import ScriptAttribution
from perfsuite.profile.stacks import parse_collapsed

DEFAULT_RATE = 100
"""py-spy samples per second of ``perfsuite profile --flame`` (py-spy's own default)."""


@dataclass
class ScriptSampler:
    """py-spy recordings of the scripts of one ``perfsuite profile`` call, and what was drawn from them."""

    flame_dir: Path
    rate: int = DEFAULT_RATE
    binary: str = field(default_factory=pyspy.find_pyspy)
    recorders: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def attach(self, name: str, pid: int) -> None:
        """Start sampling process ``pid`` (script ``name``); returns once py-spy samples it."""
        self.flame_dir.mkdir(parents=True, exist_ok=True)
        out = self.flame_dir / f"{name}.collapsed.txt"
        recorder = pyspy.Recorder(self.binary, pid, "raw", out, self.rate, nice=pyspy.sampler_nice())
        recorder.start()
        self.recorders[name] = recorder

    def finish(self, name: str, roots: tuple) -> dict:
        """Stop sampling ``name`` (after its process ended), draw its graphs; their record for ``meta.json``.

        ``roots``: the folders relative file names in its stacks are found in (:class:`ScriptAttribution`).
        """
        recorder = self.recorders.pop(name, None)
        if recorder is None:
            return {}
        try:
            stacks = _stacks(recorder.stop())
        except pyspy.SamplerError as exc:
            self.notes.append(f"{name}: no flame graph: {exc}")
            return {"error": str(exc)}
        return self.draw(name, stacks, roots)

    def draw(self, name: str, stacks: list, roots: tuple) -> dict:
        """Write the whole-process and phase flame graphs of ``stacks``; returns counts, shares and file names."""
        rooted = folded.phase_rooted(stacks, ScriptAttribution(tuple(map(Path, roots))))
        per_phase = {}
        for frames, count in rooted:
            per_phase[frames[1]] = per_phase.get(frames[1], 0) + count
        inside = sum(per_phase.values())
        files = phaseflames.write_phase_graphs(self.flame_dir, name, rooted)
        self.notes.extend(files.pop("notes"))
        whole = [f"{';'.join(map(folded.frame_text, frames))} {count}" for frames, count in stacks]
        files["process_svg"] = None
        if whole and not flamesvg.missing():
            try:
                files["process_svg"] = flamesvg.write(self.flame_dir / f"{name}.svg", whole, f"{name}: whole process")
            except flamesvg.FlameSvgError as exc:
                self.notes.append(str(exc))
        return {
            "rate": self.rate,
            "samples": sum(count for _, count in stacks),
            "inside_epochs": inside,
            "sampled_shares": {phase: n / inside for phase, n in sorted(per_phase.items())},
            "files": files,
        }

    def kill(self) -> None:
        """End every recording at once (an interrupted profile)."""
        for recorder in self.recorders.values():
            recorder.kill()
        self.recorders.clear()


def _stacks(path: Path) -> list:
    """py-spy's collapsed stacks of a script, without the samples that hold no frame (before Python runs)."""
    lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    return parse_collapsed([line for line in lines if line.rpartition(" ")[0].strip()], str(path))
