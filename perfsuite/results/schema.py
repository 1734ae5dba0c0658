"""The run folder's files and columns, by schema version.

``reports/<run-id>/`` holds

* ``phases.csv``  — impl, round, epoch, step, phase, seconds, rank (one row per phase of each step);
* ``steps.csv``   — impl, round, epoch, step, loss, rank;
* ``epochs.csv``  — one row per epoch (and rank): warm-up flag, wall, per-phase and other seconds,
  loss, accuracy, sub-phase seconds (``comm_seconds``), rank, facts (a JSON object of what the
  implementation reported about the epoch, e.g. ``{"graphs_compiled": 0}``; empty when nothing);
* ``machine.csv`` — impl, round, epoch and the machine's state around that epoch, as the parent saw it
  between epochs (see :data:`MACHINE_COLUMNS`; absent in folders written before it existed);
* ``calibration.csv`` — round, epoch and the calibration probe's rates measured before that pass
  (see :data:`CALIBRATION_COLUMNS`; absent in older folders);
* ``meta.json``   — schema version, machine, software, workload, dataset, implementations, status;
* ``summary.json``— statistics computed from the CSV files (see :mod:`perfsuite.analysis.summary`).

Rows are appended and flushed to disk after every epoch, so an interrupted
run keeps every epoch it finished. JSON files are replaced atomically.

Schema 2 added, at the end of the rows so readers that select columns by
name keep working: a ``rank`` column in the three CSV files (0 for
single-process implementations; a multi-rank implementation writes one set of
rows per rank), ``phase`` rows ``comm`` in ``phases.csv`` for implementations
that measure it (a sub-interval of ``backward``, already counted in it), and
``comm_seconds`` in ``epochs.csv`` (empty when not measured), then the
optional ``facts`` column (folders written before it simply lack it). Schema-1
folders have none of these; :func:`with_rank` reads them as rank 0.
"""

from perfsuite.core.interface import OTHER, PHASES, SUBPHASES

SCHEMA_VERSION = 2
RANK = "rank"
PHASES_COLUMNS = ["impl", "round", "epoch", "step", "phase", "seconds"]
STEPS_COLUMNS = ["impl", "round", "epoch", "step", "loss"]
EPOCHS_COLUMNS = (
    ["impl", "round", "epoch", "warmup", "steps", "wall_seconds"]
    + [f"{p}_seconds" for p in PHASES]
    + [f"{OTHER}_seconds", "coverage", "mean_loss", "final_loss", "train_accuracy", "test_accuracy"]
)
"""The columns every schema has (what readers may require); schema 2 writes more, see below."""
SUBPHASE_COLUMNS = [f"{name}_seconds" for name in SUBPHASES]
FACTS = "facts"
"""Optional ``epochs.csv`` column: the epoch's facts as a JSON object (empty when there are none)."""
WRITTEN_COLUMNS = {
    "phases.csv": PHASES_COLUMNS + [RANK],
    "steps.csv": STEPS_COLUMNS + [RANK],
    "epochs.csv": EPOCHS_COLUMNS + SUBPHASE_COLUMNS + [RANK, FACTS],
}
MACHINE_COLUMNS = [
    "impl",
    "round",
    "epoch",
    "seconds",
    "steal_share",
    "iowait_share",
    "loadavg_1m",
    "other_running",
    "cpu_mhz",
    "note",
]
"""``machine.csv``: one row per epoch the parent asked a worker for (no rank). ``seconds`` is the
parent's wall time from sending the epoch to receiving it; ``steal_share`` and ``iowait_share`` the
shares of all CPU time (``/proc/stat`` deltas over that interval); ``loadavg_1m`` the 1-minute load
average and ``other_running`` the processes in state R outside this run's own process tree, both read
after the epoch; ``cpu_mhz`` the mean current frequency of the CPUs (``scaling_cur_freq``, else
``/proc/cpuinfo``). A reading that failed is empty (NaN); ``note`` gives the reason the first time."""
CALIBRATION_COLUMNS = ["round", "epoch", "threads", "sgemm_gflops", "copy_gbps", "probe_seconds", "note"]
"""``calibration.csv``: one row per pass, measured in the parent before the pass ``(round, epoch)``
starts: a fixed sgemm's GFLOP/s, a memory copy's GB/s (bytes copied per second), the probe's own
wall seconds, and ``note`` (why a rate is empty, the first time)."""
MEMORY_PHASES = "memory/phases.csv"
MEMORY_PHASES_COLUMNS = [
    "impl",
    "epoch",
    "phase",
    "steps",
    "ranges",
    "allocations",
    "allocated_bytes",
    "frees",
    "freed_bytes",
    "peak_bytes",
    "peak_bytes_median",
]
"""``memory/phases.csv`` (``perfsuite memory``): one row per implementation, profiled epoch and phase
(the five phases and ``other``) from torch.profiler's memory events: tensor allocations and frees with
their bytes, and the live bytes' high-water above the start of a range of the phase (largest and
median over the epoch's ``ranges`` of that phase); see :mod:`perfsuite.profile.allocations`."""
MEMORY_EPOCHS = "memory/epochs.csv"
MEMORY_EPOCHS_COLUMNS = [
    "impl",
    "epoch",
    "mode",
    "steps",
    "wall_seconds",
    "rss_peak_bytes",
    "rss_reset",
    "live_peak_bytes",
    "net_bytes",
    "tensor_peak_bytes",
    "allocations",
]
"""``memory/epochs.csv``: one row per epoch of ``perfsuite memory``. ``mode`` is ``plain`` (no
profiler: the reference of the overhead and the RSS), ``profiled`` (torch.profiler with memory
events) or ``memray`` (under ``memray.Tracker``). ``rss_peak_bytes`` is the process's resident-set
high-water mark, reset before the epoch when ``rss_reset`` is 1. ``live_peak_bytes`` is the live
bytes' high-water above the epoch's start (tensor bytes for ``profiled``, the whole heap for
``memray``), ``net_bytes`` their change over the epoch; for ``memray``, ``tensor_peak_bytes`` is
the high-water of its live ``posix_memalign`` blocks alone (tensor storage) and ``allocations``
every allocation it saw."""
MEMRAY_PHASES = "memory/memray.csv"
MEMRAY_PHASES_COLUMNS = ["impl", "epoch", "phase", "allocations", "bytes", "tensor_allocations", "tensor_bytes"]
"""``memory/memray.csv``: memray's allocations per phase of its epoch (the harness's phase frame on the
allocation's stack), all of them and the ``posix_memalign`` ones (tensor storage)."""
SIDE_FILES = {
    "machine.csv": MACHINE_COLUMNS,
    "calibration.csv": CALIBRATION_COLUMNS,
    MEMORY_PHASES: MEMORY_PHASES_COLUMNS,
    MEMORY_EPOCHS: MEMORY_EPOCHS_COLUMNS,
    MEMRAY_PHASES: MEMRAY_PHASES_COLUMNS,
}
"""Optional files a run folder may hold, written as epochs and passes happen."""
FILES = ("phases.csv", "steps.csv", "epochs.csv", "machine.csv", "calibration.csv", "meta.json", "summary.json")
SWEEP_FILE = "sweep.json"
"""The file that marks a sweep folder and lists its points (see :mod:`perfsuite.measure.sweep`)."""
SWEEP_SCHEMA_VERSION = 1


def with_rank(frame):
    """``frame`` (a CSV of any schema) with a ``rank`` column: schema-1 rows are rank 0."""
    if RANK not in frame.columns:
        frame = frame.assign(**{RANK: 0})
    return frame
