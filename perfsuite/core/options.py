"""The command line's option groups and what they mean, defined once and used upward.

The parser (:mod:`perfsuite.cli.main`), the torchrun rank entry and the
profiling commands add the same groups with these functions, as
pytest-benchmark's ``plugin.add_global_options`` is used by its ``cli``;
:func:`workload_from`, :func:`timeout_from` and :func:`sampling_from` turn
parsed options into the validated objects the layers below take.
"""

import argparse

from perfsuite.core import workloads
from perfsuite.core.errors import UsageError
from perfsuite.core.sampling import DEFAULT_MAX_EPOCHS, SamplingTarget, sampling_target
from perfsuite.core.workload import DEFAULT_WORKLOAD, Workload, default_threads

DEFAULT_TIMEOUT = 900.0
"""Seconds a worker may take for one step of the protocol when ``--timeout`` is not given."""


def workload_options(parser: argparse.ArgumentParser, epochs: bool = True) -> None:
    """Add the workload group (batch size, width, optimiser, epochs, subset, seed, threads, ranks)."""
    w = Workload.__dataclass_fields__
    g = parser.add_argument_group("workload (defaults: the article's configuration)")
    g.add_argument(
        "--workload",
        default=DEFAULT_WORKLOAD,
        metavar="NAME",
        help=f"what is trained: {', '.join(workloads.names())}, module:Class or file.py:Class "
        f"(default {DEFAULT_WORKLOAD}, the article's MLP; perfsuite list shows them)",
    )
    g.add_argument("--batch-size", type=int, default=w["batch_size"].default, help="samples per step (default 128)")
    g.add_argument("--hidden", type=int, default=w["hidden"].default, help="hidden layer width (default 128)")
    g.add_argument("--lr", type=float, default=w["lr"].default, help="learning rate (default 0.3)")
    g.add_argument(
        "--momentum",
        type=float,
        default=w["momentum"].default,
        help="momentum beta of v = beta v + (1-beta) g (default 0.9)",
    )
    g.add_argument("--loss", default=w["loss"].default, help="ce (cross entropy, default) or mse")
    if epochs:
        g.add_argument("--epochs", type=int, default=w["epochs"].default, help="measured epochs per round (default 5)")
        g.add_argument(
            "--warmup",
            type=int,
            default=w["warmup"].default,
            help="warm-up epochs per round, recorded but excluded (default 1)",
        )
        g.add_argument(
            "--repeats",
            type=int,
            default=w["repeats"].default,
            help="rounds, each restarting from the initial parameters (default 1)",
        )
    g.add_argument(
        "--subset",
        type=float,
        default=None,
        help="fraction of the training split to use, in (0, 1] (default: the workload's, 1 for mnist-mlp, "
        "0.1 for mnist-cnn)",
    )
    g.add_argument(
        "--seed",
        type=int,
        default=w["seed"].default,
        help="seed of the initial parameters and permutations (default 0)",
    )
    g.add_argument(
        "--threads",
        type=int,
        default=None,
        help=f"torch threads per worker (default: usable CPUs, here {default_threads()})",
    )
    g.add_argument(
        "--nproc",
        type=int,
        default=w["nproc"].default,
        help="ranks of multi-rank implementations (ddp), launched by torchrun; they share --threads (default 2)",
    )


def fresh_workers_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--fresh-workers``: every round in new worker processes (``run`` and ``ab``)."""
    parser.add_argument(
        "--fresh-workers",
        action="store_true",
        help="start every round (--repeats) in new worker processes, so rounds replicate what differs between "
        "two processes of the same code, and take the round as the unit of the intervals (see docs/method.md)",
    )


def fresh_workers_from(args, workload: Workload) -> bool:
    """Whether ``--fresh-workers`` was given; :class:`UsageError` when there is only one round to start afresh."""
    fresh = bool(getattr(args, "fresh_workers", False))
    if fresh and workload.repeats < 2:
        raise UsageError(f"--fresh-workers: give --repeats 2 or more (not {workload.repeats}), rounds to start afresh")
    return fresh


def data_options(parser: argparse.ArgumentParser) -> None:
    """Add the data group (``--data-dir``, ``--dataset``)."""
    g = parser.add_argument_group("data")
    g.add_argument(
        "--data-dir", default=None, help="torchvision root holding MNIST/raw/ (default: $PERFSUITE_DATA, else ./data)"
    )
    g.add_argument("--dataset", default="auto", help="auto (MNIST if found, else synthetic), mnist or synthetic")


def impls_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    """Add ``--impls`` with ``help_text`` and how implementations are named."""
    parser.add_argument(
        "--impls",
        default=None,
        help=help_text + "; names, package.module:Class or path/to/file.py:Class, comma-separated",
    )


def precision_options(parser: argparse.ArgumentParser) -> None:
    """Add the adaptive sampling group: ``--precision``, ``--budget``, ``--max-epochs`` (see :func:`sampling_from`)."""
    g = parser.add_argument_group(
        "adaptive sampling (off without --precision: then every implementation gets --epochs per round)"
    )
    g.add_argument(
        "--precision",
        default=None,
        metavar="FRACTION",
        help="keep measuring until every implementation's 95%% interval (its paired speedup over the baseline; "
        "the baseline's median epoch) has a half-width under this fraction of its value, e.g. 0.03 or 3%%; "
        "--epochs x --repeats is the minimum of measured epochs",
    )
    g.add_argument(
        "--budget",
        default=None,
        metavar="DURATION",
        help="measure for at most this long (no pass of epochs starts that would end beyond it), counted from "
        "the first measured epoch; worker start-up and the first round's set-up and warm-up come on top: "
        "120, 120s or 2m (default: no limit)",
    )
    g.add_argument(
        "--max-epochs",
        type=int,
        default=None,
        metavar="N",
        help=f"most measured epochs per implementation (default {DEFAULT_MAX_EPOCHS})",
    )


def sampling_from(args, workload: Workload) -> SamplingTarget | None:
    """The adaptive sampling target the options ask for (validated), or ``None`` for a fixed number of epochs."""
    return sampling_target(
        getattr(args, "precision", None),
        getattr(args, "budget", None),
        getattr(args, "max_epochs", None),
        workload.epochs * workload.repeats,
    )


def timeout_option(parser) -> None:
    """Add ``--timeout`` (validated later by :func:`timeout_from`)."""
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help=f"seconds a worker may take for one step of the protocol (default {DEFAULT_TIMEOUT:g})",
    )


def timeout_from(args) -> float:
    """``--timeout`` in seconds, validated; :data:`DEFAULT_TIMEOUT` when it is not given."""
    if args.timeout is None:
        return DEFAULT_TIMEOUT
    if not args.timeout > 0:
        raise UsageError(f"--timeout {args.timeout:g}: must be a positive number of seconds")
    return args.timeout


def workload_from(args, **overrides) -> Workload:
    """The :class:`Workload` the options describe (validated).

    ``--workload`` must name a known workload; without ``--subset`` the workload's own default subset is used.
    """
    spec = getattr(args, "workload", None) or DEFAULT_WORKLOAD
    definition = workloads.load(spec)
    names = ("batch_size", "hidden", "lr", "momentum", "loss", "seed", "nproc")
    fields = {name: getattr(args, name) for name in names}
    fields["name"] = workloads.canonical(spec)
    subset = getattr(args, "subset", None)
    fields["subset"] = definition.default_subset if subset is None else subset
    for name in ("epochs", "warmup", "repeats"):
        if hasattr(args, name):
            fields[name] = getattr(args, name)
    if args.threads is not None:
        fields["threads"] = args.threads
    fields.update(overrides)
    return Workload(**fields)
