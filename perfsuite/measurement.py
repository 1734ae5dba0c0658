"""One interleaved measurement into a run folder: ``meta.json`` kept current, every epoch on disk.

Shared by ``perfsuite run`` (one folder) and ``perfsuite sweep`` (a folder
per point), so both record a run the same way.
"""

from pathlib import Path

from perfsuite import metadata, results, roofline
from perfsuite.runner import Runner
from perfsuite.summary import write_summary


def measure(folder: Path, workload, dataset, impls, progress, timeout: float, with_roofline: bool = True,
            extra_meta: dict = None, on_started=None) -> tuple:
    """Run ``impls`` interleaved into the existing, empty run ``folder``.

    ``meta.json`` is written before the first worker starts and rewritten on
    every change of an implementation's status; ``on_started`` is called once
    it exists. A complete run measures its roofline again after the last
    epoch and keeps each shape's better rate (:func:`roofline.for_run`).
    Whatever happens (a failure, Ctrl-C), the files are closed, the final
    status is written and ``summary.json`` is computed from the epochs on
    disk before the exception, if any, goes on. Returns ``(status, handles,
    summary)``.
    """
    writer = results.ResultsWriter(folder)
    meta = {"run_id": folder.name, **metadata.collect(), "workload": workload.to_dict(),
            "dataset": dataset.to_dict(), "status": "running", **(extra_meta or {})}
    if with_roofline:
        meta["roofline"] = roofline.for_run(workload, dataset, timeout, progress)

    def save_meta(status=None):
        meta["implementations"] = {h.name: h.summary() for h in runner.handles}
        if status:
            meta["status"] = status
        writer.write_meta(meta)

    runner = Runner(workload, dataset, impls, sink=writer.append_epoch, progress=progress, timeout=timeout,
                    on_change=save_meta)
    save_meta()
    if on_started:
        on_started()
    status = "interrupted"
    try:
        handles = runner.run()
        status = "complete" if all(h.status in ("ok", "unavailable") for h in handles) else "failed"
        if with_roofline and status == "complete" and "floor_seconds" in meta["roofline"]:
            meta["roofline"] = roofline.for_run(workload, dataset, timeout, progress, earlier=meta["roofline"])
    finally:
        writer.close()
        save_meta(status)
        summary = write_summary(folder)
    return status, handles, summary
