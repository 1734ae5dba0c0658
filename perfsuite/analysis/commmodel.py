"""How gradient all-reduce grows with ranks and parameter count: a measured, simple model.

Every step of data-parallel training all-reduces every gradient once:
``bytes = 4 x parameters`` (float32). A ring all-reduce over N ranks sends and
receives ``2 (N-1)/N x bytes`` per rank in ``2 (N-1)`` latency-bound rounds, so

    t(N, P) = 2 (N-1) x alpha + 2 (N-1)/N x 4 P / bandwidth

:func:`benchmark_allreduce` measures all-reduce times of a few sizes on the
running process group (at the start of every ``ddp`` run, over loopback
here); :func:`fit` turns them into ``alpha`` (latency per round) and the
per-rank ``bandwidth`` (bytes/s); :func:`model` predicts the comm time per step
for other rank counts and model widths. Loopback is memory-speed: for a
real network, replace ``bandwidth`` by the link's.
"""

import numpy as np

from perfsuite.core.workload import CLASSES, INPUTS

BYTES_PER_VALUE = 4
BENCH_SIZES = (1024, 1 << 20, 8 << 20)
RANKS = (2, 4, 8, 16, 64)
WIDTHS = (128, 1024, 8192)


def parameter_count(hidden: int) -> int:
    """Parameters of the workload's MLP: Linear(784, hidden) + Linear(hidden, 10)."""
    return INPUTS * hidden + hidden + hidden * CLASSES + CLASSES


def bytes_per_step(hidden: int) -> int:
    """Bytes of gradient each rank all-reduces per step (float32)."""
    return BYTES_PER_VALUE * parameter_count(hidden)


def ring_factor(ranks: int) -> float:
    """Share of the buffer each rank sends (and receives) in a ring all-reduce: 2 (N-1)/N."""
    return 2.0 * (ranks - 1) / ranks


def fit(points: list, ranks: int) -> dict:
    """``alpha`` (seconds per round) and ``bandwidth`` (bytes/s per rank) from benchmark points of ``ranks``.

    A straight line through (ring bytes, seconds), weighted so that small and
    large messages count alike (relative errors).
    """
    sizes = np.array([p["bytes"] for p in points], dtype=np.float64)
    seconds = np.array([p["seconds"] for p in points], dtype=np.float64)
    slope, intercept = np.polyfit(ring_factor(ranks) * sizes, seconds, 1, w=1.0 / seconds)  # relative errors
    rounds = 2 * (ranks - 1)
    return {
        "alpha_seconds": max(float(intercept), 0.0) / rounds,
        "bandwidth_bytes_per_second": 1.0 / slope if slope > 0 else float("inf"),
        "fitted_on_ranks": ranks,
    }


def predict(params: int, ranks: int, fitted: dict) -> float:
    """Modelled seconds of one step's gradient all-reduce of ``params`` float32 values over ``ranks``."""
    if ranks < 2:
        return 0.0
    volume = ring_factor(ranks) * BYTES_PER_VALUE * params
    return 2 * (ranks - 1) * fitted["alpha_seconds"] + volume / fitted["bandwidth_bytes_per_second"]


def model(benchmark: list, ranks: int, hidden: int, measured_comm_per_step=None) -> dict:
    """The comm model of a run: bytes per step, fitted loopback figures, predictions by ranks and width."""
    fitted = fit(benchmark, ranks)
    params = parameter_count(hidden)
    return {
        "formula": "t(N, P) = 2(N-1) alpha + 2(N-1)/N * 4 P / bandwidth",
        "parameters": params,
        "bytes_per_step": BYTES_PER_VALUE * params,
        "ring_bytes_per_rank_per_step": ring_factor(ranks) * BYTES_PER_VALUE * params,
        "benchmark": benchmark,
        **fitted,
        "predicted_comm_seconds_per_step": predict(params, ranks, fitted),
        "measured_comm_seconds_per_step": measured_comm_per_step,
        "predictions": [
            {
                "ranks": n,
                "hidden": h,
                "parameters": parameter_count(h),
                "bytes_per_step": bytes_per_step(h),
                "comm_seconds_per_step": predict(parameter_count(h), n, fitted),
            }
            for h in WIDTHS
            for n in RANKS
        ],
    }
