"""The run folder of ``perfsuite flame`` and ``perfsuite trace``.

A profiling run is a run folder like any other (``meta.json``,
``epochs.csv``, ``phases.csv``, ``steps.csv``, ``summary.json``,
``index.html``), holding the timer records of the epochs that were profiled
(warm-up epochs flagged), so every profile sits beside the timers of the
same epochs and ``perfsuite report`` shows both. The profiles themselves go
to ``flame/`` and ``trace/`` inside it (see :mod:`perfsuite.results.artifacts`).
"""

from contextlib import contextmanager

from perfsuite.analysis.summary import write_summary
from perfsuite.core import data, metadata, registry, workloads
from perfsuite.core.options import timeout_from, workload_from
from perfsuite.profile.worker import WorkerClient
from perfsuite.render.progress import RunProgress
from perfsuite.render.report import write_report
from perfsuite.results import writer


def _specs(text) -> list:
    return registry.parse_list(text) if text else sorted(registry.builtin())


class ProfileRun:
    """Options, implementations and run folder of one profiling command."""

    def __init__(self, args, command: str, options: dict, check=None, **given):
        """Resolve the options and create the run folder; ``check(names)`` may refuse the implementations first.

        ``given`` may hold what another command already resolved (``perfsuite ab --memory``):
        ``workload``, ``impls`` (:class:`~perfsuite.core.registry.ImplSpec` list), ``sides``
        (``{name: folder}`` the workers import those implementations from) and ``folder``
        (the run folder to create, instead of ``--out``).
        """
        self.workload = given.get("workload") or workload_from(args, repeats=1)
        self.timeout = timeout_from(args)
        self.dataset = data.resolve(args.dataset, args.data_dir)
        self.impls = given.get("impls") or workloads.resolve_impls(
            _specs(args.impls), self.workload, explicit=bool(args.impls)
        )
        self.sides = given.get("sides") or {}
        if check:
            check([spec.name for spec in self.impls])
        self.progress = RunProgress(quiet=args.quiet)
        if self.dataset.note and "folder" not in given:
            self.progress.note(f"perfsuite: {self.dataset.note}")
        self.folder = writer.create_run_dir(given.get("folder") or args.out, args.reports)
        if args.out is None and "folder" not in given:
            writer.point_latest(self.folder)
        self.writer = writer.ResultsWriter(self.folder)
        self.meta = {
            "run_id": self.folder.name,
            **metadata.collect(),
            "workload": self.workload.to_dict(),
            "dataset": self.dataset.to_dict(),
            "status": "running",
            "profile": {"command": command, **options},
            "implementations": {},
        }
        self.save_meta()

    def set_status(self, name: str, spec: str, status: str, reason: str = "", **facts) -> None:
        """Record an implementation's status (``ok``, ``failed``, ``unavailable``, ``not run``) in ``meta.json``."""
        entry = self.meta["implementations"].setdefault(
            name, {"spec": spec, "epochs_done": 0, "setups": [], "info": {}}
        )
        entry.update(status=status, reason=reason, **facts)
        self.save_meta()
        if status in ("failed", "unavailable", "not run"):
            word = "skipped" if status == "unavailable" else status
            self.progress.note(f"perfsuite: {name} {word}: {reason}")

    def available(self):
        """``(index, spec)`` of every implementation that can run here; the others are marked unavailable."""
        for index, spec in enumerate(self.impls):
            if spec.unavailable_reason:
                self.set_status(spec.name, spec.spec, "unavailable", spec.unavailable_reason)
            else:
                yield index, spec

    @contextmanager
    def recording(self, steps: int):
        """Show progress over ``steps``; on Ctrl-C keep what was recorded (status ``interrupted``) and re-raise."""
        self.progress.start(steps)
        try:
            yield
        except KeyboardInterrupt:
            self.progress.stop()
            self.progress.note(f"perfsuite: interrupted; what was recorded is kept in {self.folder}")
            self.finish("interrupted")
            raise
        finally:
            self.progress.stop()

    def record(self, name: str, records) -> None:
        """Append epochs' timer records to the run folder."""
        for record in records:
            self.writer.append_epoch(name, record)
        self.meta["implementations"][name]["epochs_done"] += len(records)

    def save_meta(self, status: str = None) -> None:
        """Write ``meta.json`` (with ``status`` when given)."""
        if status:
            self.meta["status"] = status
        self.writer.write_meta(self.meta)

    def start_worker(self, spec) -> tuple:
        """Start and set up a profiling worker for ``spec``; its status becomes running.

        Returns ``(client, ready)``, ``ready`` being what the worker said when it
        started. The caller closes the client.
        """
        client = WorkerClient(spec.spec, self.workload, self.dataset, self.timeout, self.sides.get(spec.name))
        try:
            self.say(f"{spec.name} · starting worker")
            ready = client.start()
            setup = client.call("setup")
        except BaseException:
            client.close()
            raise
        self.set_status(
            spec.name,
            spec.spec,
            "running",
            start_seconds=ready["start_seconds"],
            setups=[setup],
            info=setup.get("info", {}),
        )
        return client, ready

    def say(self, text: str) -> None:
        """Show what is being done on the live status line (a terminal without ``--quiet`` only)."""
        self.progress.status(text)

    def finish(self, status: str):
        """Close the files, write ``summary.json`` and the report; returns the report's path."""
        self.writer.close()
        self.save_meta(status)
        try:
            return write_report(self.folder)
        except BaseException:
            write_summary(self.folder)
            raise
