"""``perfsuite check``: do the implementations compute the same training?

Every implementation trains one epoch from the same initial parameters on
the same batches; each is compared with the reference (``store``): per-step
losses within a relative tolerance over the first steps, and final training
accuracy within a few tenths of a percentage point.
"""

from dataclasses import dataclass, replace

import numpy as np

REFERENCE = "store"
LOSS_STEPS = 100
LOSS_RTOL = 1e-4
ACCURACY_PP = 0.5


@dataclass(frozen=True)
class Verdict:
    """How one implementation compares with the reference."""

    impl: str
    ok: bool
    max_rel_loss_diff: float
    accuracy_diff_pp: float
    train_accuracy: float
    problem: str | None = None


def check_workload(workload):
    """The workload a check runs: one epoch, no warm-up, one round."""
    return replace(workload, epochs=1, warmup=0, repeats=1)


def compare(
    name: str,
    record,
    reference,
    steps: int = LOSS_STEPS,
    rtol: float = LOSS_RTOL,
    accuracy_pp: float = ACCURACY_PP,
    reference_name: str = REFERENCE,
) -> Verdict:
    """Compare one implementation's :class:`~perfsuite.results.record.EpochRecord` with the reference's."""
    ours = np.asarray(record.losses, dtype=np.float64)
    ref = np.asarray(reference.losses, dtype=np.float64)
    n = min(steps, len(ref))
    acc_diff = 100.0 * abs(record.train_accuracy - reference.train_accuracy)
    if len(ours) != len(ref):
        return Verdict(
            name,
            False,
            float("nan"),
            acc_diff,
            record.train_accuracy,
            f"ran {len(ours)} steps, {reference_name} ran {len(ref)}",
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(ours[:n] - ref[:n]) / np.abs(ref[:n])
    rel = np.where(np.isfinite(rel), rel, np.inf)
    worst = float(rel.max()) if n else 0.0
    problem = None
    bad = np.flatnonzero(rel > rtol)
    if bad.size:
        k = int(bad[0])
        problem = (
            f"step {k}: loss {ours[k]:.7g} vs {reference_name} {ref[k]:.7g} "
            f"(relative difference {rel[k]:.2e} > {rtol:g})"
        )
    elif acc_diff > accuracy_pp:
        problem = (
            f"final train accuracy {100 * record.train_accuracy:.2f}% vs {reference_name} "
            f"{100 * reference.train_accuracy:.2f}% ({acc_diff:.2f} pp > {accuracy_pp:g} pp)"
        )
    return Verdict(name, problem is None, worst, acc_diff, record.train_accuracy, problem)


def verdicts(records: dict, failed: dict, reference_name: str = REFERENCE) -> list:
    """Verdicts for every implementation in ``records`` (name -> epoch record) and ``failed``.

    ``reference_name`` is the workload's reference implementation (``store`` for the built-in workloads).
    """
    reference = records.get(reference_name)
    out = []
    for name, record in records.items():
        if name == reference_name:
            continue
        out.append(compare(name, record, reference, reference_name=reference_name))
    for name, reason in failed.items():
        out.append(Verdict(name, False, float("nan"), float("nan"), float("nan"), f"did not run: {reason}"))
    return out
