"""Short measurements of the machine that the analysis models need: matmul throughput and all-reduce time.

The roofline probe runs in a short-lived process of its own with the run's
thread count (:func:`measure_in_process`), before any worker starts and again
after the last epoch of a complete run (:func:`for_run`); the all-reduce
benchmark runs inside the ranks of a multi-rank implementation
(:func:`benchmark_allreduce`). The models they feed are
:mod:`perfsuite.analysis.roofline` and :mod:`perfsuite.analysis.commmodel`.
"""

import math
import statistics
import time

import torch
import torch.distributed as dist

from perfsuite.analysis.commmodel import BENCH_SIZES, BYTES_PER_VALUE, ring_factor
from perfsuite.analysis.roofline import SQUARE, Shape, best_of, describe, floor_record, not_counted, workload_shapes
from perfsuite.core import workloads
from perfsuite.measure import processes

BUDGET_SECONDS = 1.2
"""Total time the throughput measurement may spend (split evenly between the shapes)."""

MIN_BATCH_SECONDS = 0.002
"""Calls are timed in batches of at least this long, so the clock's resolution does not matter."""

CALIBRATION_CALLS = 3
"""Single calls timed (after one warm-up call) to size the batches; the fastest one counts."""

MIN_BATCHES = 2
"""Batches timed per shape even when the budget is spent (the best one gives the rate)."""


def _operands(shape: Shape):
    g = torch.Generator().manual_seed(0)
    a = (
        torch.randn(shape.k, shape.m, generator=g).t()
        if shape.transposed_a
        else torch.randn(shape.m, shape.k, generator=g)
    )
    return a, torch.randn(shape.k, shape.n, generator=g), torch.empty(shape.m, shape.n)


def _operation(shape: Shape):
    """A call that runs ``shape`` once: the matmul into a preallocated output, or the convolution (pass)."""
    if shape.conv:
        return _convolution(*shape.conv)
    a, b, out = _operands(shape)
    return lambda: torch.mm(a, b, out=out)


def _convolution(batch: int, c_in: int, c_out: int, side: int, kind: str):
    """A 3×3 convolution pass (``forward``, ``weight`` or ``input`` gradient) as autograd runs it."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, c_in, side, side, generator=g)
    w = torch.randn(c_out, c_in, 3, 3, generator=g)
    if kind == "forward":
        return lambda: torch.nn.functional.conv2d(x, w)
    grad = torch.randn(batch, c_out, side - 2, side - 2, generator=g)
    mask = [kind == "input", kind == "weight", False]
    backward = torch.ops.aten.convolution_backward
    return lambda: backward(grad, x, w, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1, mask)


def time_shape(shape: Shape, seconds: float) -> dict:
    """GFLOP/s of ``shape`` (best and median batch of calls) within about ``seconds``."""
    call = _operation(shape)
    call()
    singles = []
    for _ in range(CALIBRATION_CALLS):
        start = time.perf_counter()
        call()
        singles.append(time.perf_counter() - start)
    calls = max(1, math.ceil(MIN_BATCH_SECONDS / max(min(singles), 1e-9)))
    per_call = []
    deadline = time.perf_counter() + seconds
    while len(per_call) < MIN_BATCHES or time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(calls):
            call()
        per_call.append((time.perf_counter() - start) / calls)
    return {
        **shape.to_dict(),
        "calls": calls * len(per_call),
        "best_gflops": shape.flops / min(per_call) / 1e9,
        "median_gflops": shape.flops / statistics.median(per_call) / 1e9,
    }


def measure(
    threads: int,
    batch: int = 0,
    hidden: int = 0,
    square: int = SQUARE,
    budget: float = BUDGET_SECONDS,
    shapes: list = None,
) -> dict:
    """Set ``threads`` torch threads and time every shape; returns the throughput record.

    ``shapes`` defaults to the MLP's five at ``batch`` and ``hidden`` and the ``square`` one.
    """
    torch.set_num_threads(threads)
    shapes = shapes or workload_shapes(batch, hidden, square)
    start = time.perf_counter()
    rates = [time_shape(s, budget / len(shapes)) for s in shapes]
    return {"threads": torch.get_num_threads(), "shapes": rates, "measure_seconds": time.perf_counter() - start}


def _child(conn, threads: int, shapes: list, budget: float) -> None:
    """Entry point of the measuring process: one ``measure`` answer, then ``stop``."""
    processes.child_main(
        conn, lambda: (None, {}), lambda state, command, args: measure(threads, budget=budget, shapes=shapes)
    )


def measure_in_process(
    workload, samples: int, timeout: float = 120.0, square: int = SQUARE, budget: float = BUDGET_SECONDS
) -> dict:
    """Measure the roofline in a fresh process with the workload's thread count.

    The shapes are the workload definition's matrix products at its batch size
    (:mod:`perfsuite.core.workloads`) and a large square one. Returns the
    :func:`~perfsuite.analysis.roofline.floor_record`, or ``{"error": reason}``
    when the measurement could not be made or the workload counts no flops
    (the run goes on without a floor).
    """
    definition = workloads.of(workload)
    missing = not_counted(definition)
    if missing:
        return {"error": missing}
    batch = min(workload.batch_size, samples)
    shapes = workload_shapes(batch, workload.hidden, square, definition)
    process, conn = processes.spawn(_child, (workload.threads, shapes, budget), "perfsuite-roofline")
    try:
        processes.receive(process, conn, "ready", timeout)
        conn.send(("measure",))
        payload = processes.receive(process, conn, "measure", timeout)
    except processes.WorkerLost as lost:
        return {"error": lost.reason}
    finally:
        processes.stop_process(process, conn)
    return floor_record(payload, samples, workload.hidden, workload.batch_size, definition)


def for_run(workload, dataset, timeout: float, progress=None, earlier: dict = None) -> dict:
    """The roofline record of a run on ``dataset`` (a note on ``progress`` when it could not be measured).

    Given ``earlier``, the record of the same run's first measurement, this is
    the second one: the two are combined, each shape at its better rate
    (:func:`best_of`), and a failure leaves the first in place.
    """
    samples = workload.train_size(dataset.n_train)
    record = measure_in_process(workload, samples, timeout)
    if "error" in record and progress is not None:
        progress.note(
            f"perfsuite: {describe(record)}; the run goes on without a compute floor"
            if earlier is None
            else f"perfsuite: measuring the roofline again failed ({record['error']}); the first measurement counts"
        )
    if earlier is None:
        return record
    return best_of([earlier, record], samples, workload.hidden, workload.batch_size, workloads.of(workload))


def benchmark_allreduce(sizes=BENCH_SIZES, repeats: int = 15, warmup: int = 3) -> list:
    """Median seconds of ``all_reduce`` of float32 buffers of ``sizes`` bytes on the default group.

    Every rank must call it (it is collective). Returns one dict per size
    with ``bytes``, ``seconds`` and the bus bandwidth (``ring_factor`` x bytes / seconds).
    """
    world = dist.get_world_size()
    found = []
    for size in sizes:
        buffer = torch.ones(max(1, size // BYTES_PER_VALUE))
        times = []
        for i in range(warmup + repeats):
            dist.barrier()
            start = time.perf_counter()
            dist.all_reduce(buffer)
            if i >= warmup:
                times.append(time.perf_counter() - start)
        seconds = statistics.median(times)
        found.append(
            {
                "bytes": int(buffer.numel() * BYTES_PER_VALUE),
                "seconds": seconds,
                "bus_bytes_per_second": ring_factor(world) * buffer.numel() * BYTES_PER_VALUE / seconds,
            }
        )
    return found
