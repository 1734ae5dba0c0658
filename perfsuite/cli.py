"""The ``perfsuite`` command line: verb subcommands, one-line errors.

Bad input and failures print one line (``perfsuite: error: …``) and exit
with status 2 (usage) or 1 (failure); ``--debug`` shows the traceback.
"""

import argparse
import sys

from perfsuite import __version__
from perfsuite.errors import PerfsuiteError, UsageError
from perfsuite.workload import Workload, default_threads


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exits with status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _workload_options(parser: argparse.ArgumentParser, epochs: bool = True) -> None:
    w = Workload.__dataclass_fields__
    g = parser.add_argument_group("workload (defaults: the article's configuration)")
    g.add_argument("--batch-size", type=int, default=w["batch_size"].default, help="samples per step (default 128)")
    g.add_argument("--hidden", type=int, default=w["hidden"].default, help="hidden layer width (default 128)")
    g.add_argument("--lr", type=float, default=w["lr"].default, help="learning rate (default 0.3)")
    g.add_argument("--momentum", type=float, default=w["momentum"].default, help="momentum beta of v = beta v + (1-beta) g (default 0.9)")
    g.add_argument("--loss", default=w["loss"].default, help="ce (cross entropy, default) or mse")
    if epochs:
        g.add_argument("--epochs", type=int, default=w["epochs"].default, help="measured epochs per round (default 5)")
        g.add_argument("--warmup", type=int, default=w["warmup"].default, help="warm-up epochs per round, recorded but excluded (default 1)")
        g.add_argument("--repeats", type=int, default=w["repeats"].default, help="rounds, each restarting from the initial parameters (default 1)")
    g.add_argument("--subset", type=float, default=w["subset"].default, help="fraction of the training split to use, in (0, 1] (default 1)")
    g.add_argument("--seed", type=int, default=w["seed"].default, help="seed of the initial parameters and permutations (default 0)")
    g.add_argument("--threads", type=int, default=None, help=f"torch threads per worker (default: usable CPUs, here {default_threads()})")
    g.add_argument("--nproc", type=int, default=w["nproc"].default,
                   help="ranks of multi-rank implementations (ddp), launched by torchrun; they share --threads (default 2)")


def _data_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("data")
    g.add_argument("--data-dir", default=None, help="torchvision root holding MNIST/raw/ (default: $PERFSUITE_DATA, else ./data)")
    g.add_argument("--dataset", default="auto", help="auto (MNIST if found, else synthetic), mnist or synthetic")


def _measurement_output(p, out_help: str, reports_help: str, roofline_help: str) -> None:
    """The output options shared by ``run`` and ``sweep``."""
    out = p.add_argument_group("output")
    out.add_argument("--out", default=None, help=out_help)
    out.add_argument("--reports", default="reports", help=reports_help)
    out.add_argument("--timeout", type=float, default=None, help="seconds a worker may take for one step of the protocol (default 900)")
    out.add_argument("--quiet", action="store_true", help="no live progress display")
    out.add_argument("--no-roofline", action="store_true", help=roofline_help)


def _impls_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--impls", default=None, help=help_text + "; names, package.module:Class or path/to/file.py:Class, comma-separated")


def timeout_from(args) -> float:
    """``--timeout`` in seconds, validated; the runner's default when it is not given."""
    from perfsuite.runner import DEFAULT_TIMEOUT

    if args.timeout is None:
        return DEFAULT_TIMEOUT
    if not args.timeout > 0:
        raise UsageError(f"--timeout {args.timeout:g}: must be a positive number of seconds")
    return args.timeout


def workload_from(args, **overrides) -> Workload:
    """The :class:`Workload` the options describe (validated)."""
    fields = {name: getattr(args, name) for name in ("batch_size", "hidden", "lr", "momentum", "loss", "subset", "seed", "nproc")}
    for name in ("epochs", "warmup", "repeats"):
        if hasattr(args, name):
            fields[name] = getattr(args, name)
    if args.threads is not None:
        fields["threads"] = args.threads
    fields.update(overrides)
    return Workload(**fields)


def build_parser() -> ArgumentParser:
    """The full argument parser with every subcommand."""
    from perfsuite import commands

    parser = ArgumentParser(prog="perfsuite", description="Where does a PyTorch training step spend its time?")
    parser.add_argument("--version", action="version", version=f"perfsuite {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    sub.required = True

    run = sub.add_parser("run", help="measure implementations phase by phase and write a run folder")
    _impls_option(run, "implementations to run (default: every registered one)")
    _workload_options(run)
    _data_options(run)
    _measurement_output(run, "run folder to write (default: REPORTS/<run-id>)",
                        "folder of run folders, with a 'latest' link (default ./reports)",
                        "skip measuring the matmul peak and the compute floor (before and after the epochs: "
                        "about 1 s plus a process start each)")
    run.set_defaults(func=commands.run)

    from perfsuite import sweep as sweep_mod

    swp = sub.add_parser("sweep", help="run the same measurement at several batch sizes, thread counts, widths or subsets")
    swp.add_argument("--vary", action="append", default=[], metavar="NAME=V1,V2,…",
                     help=f"a workload setting and its values ({', '.join(sweep_mod.VARIABLES)}); give one or two")
    _impls_option(swp, "implementations to measure at every point (default: every registered one)")
    _workload_options(swp)
    _data_options(swp)
    _measurement_output(swp, "sweep folder to write (default: REPORTS/<sweep-id>)",
                        "folder to create the sweep folder in (default ./reports)",
                        "skip measuring the matmul peak and the compute floor at each point")
    swp.set_defaults(func=sweep_mod.run)

    check = sub.add_parser("check", help="check that implementations train identically (losses and accuracy vs store)")
    _impls_option(check, "implementations to check against store (default: every registered one)")
    _workload_options(check, epochs=False)
    _data_options(check)
    check.add_argument("--timeout", type=float, default=None, help="seconds a worker may take for one step of the protocol (default 900)")
    check.add_argument("--quiet", action="store_true", help="no live progress display")
    check.set_defaults(func=commands.check)

    lst = sub.add_parser("list", help="list implementations and whether they can run here")
    lst.set_defaults(func=commands.list_impls)

    summary = sub.add_parser("summary", help="recompute and print the summary of a run folder")
    summary.add_argument("run_dir", help="a run folder (e.g. reports/latest)")
    summary.set_defaults(func=commands.summary)

    from perfsuite import compare as compare_mod
    from perfsuite import report as report_mod

    rep = sub.add_parser("report", help="write RUN_DIR/index.html: statistics, charts and evidence of a run")
    rep.add_argument("run_dir", help="a run folder (e.g. reports/latest)")
    rep.add_argument("--baseline", default=None, help="implementation speedups are measured against (default idiomatic)")
    rep.add_argument("--pytest-benchmark", action="append", default=[], metavar="FILE",
                     help="pytest-benchmark JSON (pytest --benchmark-json) to show beside the run's figures; copied into "
                          "RUN_DIR/benchmark/ (files already named RUN_DIR/benchmark*.json are found without it); repeatable")
    rep.set_defaults(func=report_mod.cmd_report)

    cmp = sub.add_parser("compare", help="compare two run folders; exit 1 on a significant slowdown")
    cmp.add_argument("base_dir", help="the reference run folder")
    cmp.add_argument("new_dir", help="the run folder to check against it")
    cmp.add_argument("--threshold", default="5%", help="slowdown that fails, e.g. 5%% (default) or 0.05")
    cmp.add_argument("--alpha", type=float, default=0.05, help="significance level of the Mann-Whitney test (default 0.05)")
    cmp.add_argument("--html", default=None, metavar="FILE", help="also write an HTML view of the comparison")
    cmp.set_defaults(func=compare_mod.cmd_compare)

    from perfsuite import flame as flame_mod
    from perfsuite import trace as trace_mod
    from perfsuite.profile_run import add_options as _profile_options

    flm = sub.add_parser("flame", help="py-spy flame graphs per implementation; sampled vs timer phase shares; sampling overhead")
    _profile_options(flm, lambda p: _workload_options(p, epochs=False), _data_options, "sample")
    flm.add_argument("--epochs", type=int, default=flame_mod.DEFAULT_EPOCHS, help=f"sampled epochs per py-spy output (default {flame_mod.DEFAULT_EPOCHS})")
    flm.add_argument("--warmup", type=int, default=1, help="warm-up epochs before any sampling (default 1)")
    flm.add_argument("--rate", type=int, default=flame_mod.DEFAULT_RATE, help=f"py-spy samples per second (default {flame_mod.DEFAULT_RATE})")
    flm.add_argument("--native", action="store_true", help="also sample C/C++ frames (py-spy --native)")
    flm.set_defaults(func=flame_mod.cmd_flame)

    trc = sub.add_parser("trace", help="torch.profiler Chrome trace per implementation, ranges per phase, top operators per phase")
    _profile_options(trc, lambda p: _workload_options(p, epochs=False), _data_options, "trace")
    trc.add_argument("--epochs", type=int, default=1, help="traced epochs after the warm-up (default 1)")
    trc.add_argument("--warmup", type=int, default=1, help="warm-up epochs, the profiler's warm-up too, not recorded (default 1)")
    trc.add_argument("--top", type=int, default=trace_mod.DEFAULT_TOP, help=f"operators listed per phase (default {trace_mod.DEFAULT_TOP})")
    trc.set_defaults(func=trace_mod.cmd_trace)

    dat = sub.add_parser("data", help="check or download MNIST")
    dsub = dat.add_subparsers(dest="data_command", metavar="ACTION", parser_class=ArgumentParser)
    dsub.required = True
    dcheck = dsub.add_parser("check", help="validate the MNIST files under the data root")
    dcheck.add_argument("--data-dir", default=None, help="torchvision root holding MNIST/raw/")
    dcheck.set_defaults(func=commands.data_check)
    ddown = dsub.add_parser("download", help="fetch MNIST with torchvision's downloader (needs internet)")
    ddown.add_argument("--data-dir", default=None, help="torchvision root to download into (default: $PERFSUITE_DATA, else ./data)")
    ddown.set_defaults(func=commands.data_download)
    return parser


def main(argv=None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except PerfsuiteError as exc:
        if args.debug:
            raise
        print(f"perfsuite: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("perfsuite: interrupted", file=sys.stderr)
        return 130

