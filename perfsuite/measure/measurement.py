"""One interleaved measurement into a run folder: ``meta.json`` kept current, every epoch on disk.

Shared by ``perfsuite run`` (one folder) and ``perfsuite sweep`` (a folder
per point), so both record a run the same way.
"""

from pathlib import Path

from perfsuite.core import metadata
from perfsuite.core.clock import Clock, monotonic
from perfsuite.core.errors import UsageError
from perfsuite.measure import machine, probes
from perfsuite.measure.runner import Runner
from perfsuite.measure.sampling import plan_for
from perfsuite.results import writer


def measure(
    folder: Path,
    workload,
    dataset,
    impls,
    progress,
    timeout: float,
    with_roofline: bool = True,
    extra_meta: dict = None,
    on_started=None,
    sampling=None,
    shuffle=None,
    sides: dict = None,
    fresh_workers: bool = False,
    clock: Clock = monotonic,
) -> tuple:
    """Run ``impls`` interleaved into the existing, empty run ``folder``.

    ``meta.json`` is written before the first worker starts and rewritten on
    every change of an implementation's status; ``on_started`` is called once
    it exists. A complete run measures its roofline again after the last
    epoch and keeps each shape's better rate (:func:`probes.for_run`).
    Whatever happens (a failure, Ctrl-C), the files are closed and the final
    status is written before the exception, if any, goes on. Returns ``(status, handles)``;
    the caller writes ``summary.json`` (:func:`perfsuite.analysis.summary.write_summary`).

    With a ``sampling`` target (:class:`~perfsuite.core.sampling.SamplingTarget`)
    the run samples adaptively and ``meta.json`` records the plan's
    ``sampling`` record; a budget that cannot hold one measured epoch of each
    implementation raises :class:`~perfsuite.core.errors.UsageError` once
    the files are written.

    Between epochs the parent records the machine's state (``machine.csv``)
    and, before every pass, a calibration probe at the workload's thread
    count (``calibration.csv``; :mod:`perfsuite.measure.machine`).

    ``shuffle`` (a ``random.Random``) permutes the order of every pass and
    ``sides`` maps display names to the folders their workers import from
    (both for ``perfsuite ab``; see :class:`~perfsuite.measure.runner.Runner`).
    ``fresh_workers`` starts every round after the first in new worker
    processes (``meta.json``'s ``fresh_workers`` says so; the analyses then
    take the round as their unit). When every round has run, ``meta.json``'s
    ``measuring_seconds`` is the ``clock`` time from the first worker's start to
    the last round's workers stopped, what the design cost (roofline probes aside).
    """
    out = writer.ResultsWriter(folder)
    meta = {
        "run_id": folder.name,
        **metadata.collect(),
        "workload": workload.to_dict(),
        "dataset": dataset.to_dict(),
        "status": "running",
        "fresh_workers": bool(fresh_workers),
        **(extra_meta or {}),
    }
    if with_roofline:
        meta["roofline"] = probes.for_run(workload, dataset, timeout, progress)

    def save_meta(status=None):
        meta["implementations"] = {h.name: h.summary() for h in runner.handles}
        if plan.adaptive:
            meta["sampling"] = plan.to_dict({h.name: h.status for h in runner.handles})
        if status:
            meta["status"] = status
        out.write_meta(meta)

    plan = plan_for(workload, sampling)
    runner = Runner(
        workload,
        dataset,
        impls,
        sink=out.append_epoch,
        progress=progress,
        timeout=timeout,
        on_change=save_meta,
        plan=plan,
        monitor=machine.RunMonitor(out, machine.MachineSampler(), machine.CalibrationProbe(workload.threads)),
        shuffle=shuffle,
        sides=sides,
        fresh_workers=fresh_workers,
    )
    save_meta()
    if on_started:
        on_started()
    status = "interrupted"
    started = clock()
    try:
        handles = runner.run()
        meta["measuring_seconds"] = clock() - started
        status = "complete" if all(h.status in ("ok", "unavailable") for h in handles) else "failed"
        if plan.refusal:
            status = "failed"
        if with_roofline and status == "complete" and "floor_seconds" in meta["roofline"]:
            meta["roofline"] = probes.for_run(workload, dataset, timeout, progress, earlier=meta["roofline"])
    finally:
        out.close()
        save_meta(status)
    if plan.refusal:
        raise UsageError(f"{plan.refusal} (the epochs measured are kept in {folder})")
    return status, handles
