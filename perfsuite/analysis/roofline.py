"""The machine's roofline for the workload: measured matmul throughput, the epoch's arithmetic, the floor.

Arithmetic of one epoch, counting a multiply-add as 2 flops, with ``N`` the
samples of the epoch, ``h`` the hidden width, ``S = ceil(N / batch)`` the
steps and ``P = 784·h + h + 10·h + 10`` the parameters::

    forward  = 2·N·(784·h + 10·h)                 the two layers' matmuls
    backward = 2·N·(784·h + 10·h) + 2·N·10·h      weight gradients xᵀ·dh and aᵀ·g, plus the hidden
                                                  activation gradient g·W2ᵀ (no input gradient)
    update   = 5·P·S                              v = βv + (1−β)g (3 flops), p −= lr·v (2 flops)
    total    = forward + backward + update

Bias additions, ReLU, softmax and the loss are not counted (O(N·h): under 1%
of the total at h = 128). For the article's workload (N = 60,000, h = 128,
batch 128) the total is 24.78 GFLOP.

Other workloads count their own arithmetic the same way: each definition
(:mod:`perfsuite.core.workloads`) gives its flops per sample, its parameter
count and the products of one step (``mnist-cnn``: 71.6 MFLOP per sample at
h = 128, each convolution pass timed as itself at the flops of its im2col
product, see
:class:`~perfsuite.core.workloads.MnistCnn`); the functions below take that
``definition`` and default to the MLP's.

The **peak** is the highest single-precision matmul throughput measured at the
run's thread count, over the workload's own five matmul shapes (batch x 784
@ 784 x h and the others above) and a large square one. The **compute floor**
is ``total / peak`` seconds: no loop can train an epoch faster on this
machine. Each implementation is then given its achieved GFLOP/s
(``total / epoch seconds``), its share of the peak and its epoch time as a
multiple of the floor. The **matmul floor** is the time the epoch's matmuls
take at the rates measured for their own shapes: what a perfect loop at
this batch size would need (it is above the compute floor when small shapes
run below the peak).

The measurement (:mod:`perfsuite.measure.probes`) runs in a short-lived
process of its own with the run's thread count, before any worker starts, so it
sees the same thread pool size; it takes about one second (``--no-roofline``
skips it). A busy stretch of a shared machine lowers a measurement, which
would lower the peak and flatter every floor multiple of the run, so a run
that completes measures again after its last epoch and each shape counts
at the better of its two rates (:func:`best_of`).
"""

import math
from dataclasses import dataclass

from perfsuite.core import workloads

SQUARE = 1024
"""Size of the large square matmul (1024³: big enough for the blocked kernels, small enough for the budget)."""


UPDATE_FLOPS_PER_PARAMETER = workloads.UPDATE_FLOPS_PER_PARAMETER
"""v = βv + (1−β)g is 3 flops, p −= lr·v is 2 flops, per parameter per step."""


@dataclass(frozen=True)
class Shape:
    """One matmul ``(m x k) @ (k x n)``; ``transposed_a`` stores the left operand as k x m (like xᵀ).

    With ``conv`` = ``(batch, c_in, c_out, side_in, kind)`` it is a 3×3 convolution instead, timed as the
    operation itself (``kind``: ``forward``, ``weight`` or ``input`` gradient) with the flops of its im2col
    product ``m x k x n`` (``batch·side_out²`` x ``c_in·9`` x ``c_out``, or as the gradient's product).
    """

    name: str
    m: int
    k: int
    n: int
    transposed_a: bool = False
    per_step: bool = True
    conv: tuple | None = None

    @property
    def flops(self) -> int:
        """Floating-point operations of one product (2·m·k·n)."""
        return 2 * self.m * self.k * self.n

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "m": self.m,
            "k": self.k,
            "n": self.n,
            "transposed_a": self.transposed_a,
            "per_step": self.per_step,
            **({"conv": list(self.conv)} if self.conv else {}),
        }


MLP = workloads.MnistMlp()


def parameters(hidden: int) -> int:
    """Number of trained parameters of the MLP: W1, b1, W2, b2."""
    return MLP.parameter_count(hidden)


def epoch_flops(samples: int, hidden: int, batch_size: int, definition=MLP) -> dict | None:
    """Flops of one epoch over ``samples`` samples (see the module docstring; ``None``: the workload counts none)."""
    return workloads.epoch_flops(definition, samples, hidden, batch_size)


def workload_shapes(batch: int, hidden: int, square: int = SQUARE, definition=MLP) -> list:
    """The matmuls of one training step at ``batch`` rows (the MLP's five by default), and the large square one."""
    shapes = [
        Shape(name, m, k, n, transposed_a=t, conv=tuple(conv[0]) if conv else None)
        for name, m, k, n, t, *conv in definition.gemms(batch, hidden)
    ]
    return shapes + [Shape(f"square {square}", square, square, square, per_step=False)]


def floor_record(throughput: dict, samples: int, hidden: int, batch_size: int, definition=MLP) -> dict:
    """The roofline of a run: measured rates, peak, the epoch's flops, the compute and matmul floors."""
    flops = epoch_flops(samples, hidden, batch_size, definition)
    rates = throughput["shapes"]
    peak = max(r["best_gflops"] for r in rates)
    per_step = [r for r in rates if r["per_step"]]
    step_flops = sum(2 * r["m"] * r["k"] * r["n"] for r in per_step)
    step_seconds = sum(2 * r["m"] * r["k"] * r["n"] / (r["best_gflops"] * 1e9) for r in per_step)
    matmul_flops = flops["forward"] + flops["backward"]
    return {
        **throughput,
        "peak_gflops": peak,
        "peak_shape": max(rates, key=lambda r: r["best_gflops"])["name"],
        "workload_shapes_gflops": step_flops / step_seconds / 1e9,
        "flops": flops,
        "floor_seconds": flops["total"] / (peak * 1e9),
        "matmul_floor_seconds": matmul_flops / (step_flops / step_seconds),
        "formula": definition.formula,
    }


def not_counted(definition) -> str | None:
    """Why a workload has no roofline (it declares no flop count or no matrix products), or ``None``."""
    if definition.sample_flops(1) is None or definition.parameter_count(1) is None or not definition.gemms(1, 1):
        return f"workload {definition.name} declares no flop count (sample_flops, parameter_count, gemms)"
    return None


def best_of(records: list, samples: int, hidden: int, batch_size: int, definition=MLP) -> dict:
    """One roofline from several measurements of a run: each shape at the best of its measured rates.

    Failed measurements (``{"error": ...}``) are skipped; with none left the
    first record is returned as it is. ``measured_peaks_gflops`` keeps every
    measurement's own peak (``None`` for a failed one).
    """
    good = [r for r in records if "floor_seconds" in r]
    if not good:
        return records[0]
    best = {}
    for record in good:
        for rate in record["shapes"]:
            if rate["name"] not in best or rate["best_gflops"] > best[rate["name"]]["best_gflops"]:
                best[rate["name"]] = rate
    throughput = {
        "threads": good[0]["threads"],
        "shapes": [best[r["name"]] for r in good[0]["shapes"]],
        "measure_seconds": sum(r["measure_seconds"] for r in good),
    }
    combined = floor_record(throughput, samples, hidden, batch_size, definition)
    combined["measured_peaks_gflops"] = [r.get("peak_gflops") for r in records]
    return combined


def impl_figures(roofline: dict, epoch_seconds: float) -> dict:
    """Achieved GFLOP/s, share of the peak and multiple of the floor of one median epoch time."""
    achieved = roofline["flops"]["total"] / epoch_seconds / 1e9 if epoch_seconds > 0 else math.nan
    return {
        "achieved_gflops": achieved,
        "share_of_peak": achieved / roofline["peak_gflops"],
        "floor_multiple": epoch_seconds / roofline["floor_seconds"],
        "matmul_floor_multiple": epoch_seconds / roofline["matmul_floor_seconds"],
    }


def annotate(summary: dict, meta: dict) -> dict:
    """Add the run's roofline to ``summary`` and each implementation's figures against it."""
    roofline = meta.get("roofline")
    if not roofline:
        return summary
    if "floor_seconds" not in roofline:
        summary["roofline"] = {"error": roofline.get("error", "not measured")}
        return summary
    summary["roofline"] = {
        key: roofline[key]
        for key in (
            "peak_gflops",
            "peak_shape",
            "workload_shapes_gflops",
            "floor_seconds",
            "matmul_floor_seconds",
            "flops",
            "threads",
        )
    }
    if "measured_peaks_gflops" in roofline:
        summary["roofline"]["measured_peaks_gflops"] = roofline["measured_peaks_gflops"]
    for entry in summary["implementations"].values():
        if entry.get("epoch_seconds"):
            entry["roofline"] = impl_figures(roofline, entry["epoch_seconds"])
    return summary


def describe(roofline: dict) -> str:
    """One line: peak, flops per epoch and the floor (or why there is none)."""
    if "floor_seconds" not in roofline:
        return f"roofline not measured: {roofline.get('error', 'unknown reason')}"
    return (
        f"compute floor {roofline['floor_seconds']:.3f} s = {roofline['flops']['total'] / 1e9:.2f} GFLOP per epoch "
        f"at the measured peak {roofline['peak_gflops']:.0f} GFLOP/s ({roofline['peak_shape']}, "
        f"{roofline['threads']} thread{'' if roofline['threads'] == 1 else 's'}{_measurements(roofline)}); "
        f"matmul floor at the workload's shapes "
        f"{roofline['matmul_floor_seconds']:.3f} s"
    )


def _measurements(roofline: dict) -> str:
    """ ", best of N measurements (peaks …)" when the roofline combines several, else ""."""
    peaks = roofline.get("measured_peaks_gflops") or []
    if len(peaks) < 2:
        return ""
    shown = ", ".join("failed" if p is None else f"{p:.0f}" for p in peaks)
    return f"; best of {len(peaks)} measurements, at the start and end of the run: {shown}"
