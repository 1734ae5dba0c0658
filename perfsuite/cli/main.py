"""The ``perfsuite`` command line: verb subcommands, one-line errors.

Bad input and failures print one line (``perfsuite: error: …``) and exit
with status 2 (usage) or 1 (failure); ``--debug`` shows the traceback.
Ctrl-C (exit 130) and SIGTERM (exit 143, what ``timeout``, CI runners and
container stops send) end a command the same way: finished epochs are kept,
the run is marked ``interrupted`` and gets its summary and report.
"""

import argparse
import signal
import sys
import threading
from contextlib import contextmanager

from perfsuite.cli import commands
from perfsuite.core import options
from perfsuite.core.errors import PerfsuiteError
from perfsuite.core.metadata import VERSION
from perfsuite.measure.sweep import VARIABLES
from perfsuite.profile import memory
from perfsuite.profile.flame import DEFAULT_EPOCHS, DEFAULT_RATE
from perfsuite.profile.scriptflame import DEFAULT_RATE as SCRIPT_RATE
from perfsuite.profile.trace import DEFAULT_TOP


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exits with status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _measurement_output(p, out_help: str, reports_help: str, roofline_help: str) -> None:
    """The output options shared by ``run`` and ``sweep``."""
    out = p.add_argument_group("output")
    out.add_argument("--out", default=None, help=out_help)
    out.add_argument("--reports", default="reports", help=reports_help)
    options.timeout_option(out)
    out.add_argument("--quiet", action="store_true", help="no live progress display")
    out.add_argument("--no-roofline", action="store_true", help=roofline_help)


def _profile_options(parser, what: str) -> None:
    """The options ``flame`` and ``trace`` share: implementations, workload, data, output."""
    options.impls_option(parser, f"implementations to {what} (default: every registered one)")
    options.workload_options(parser, epochs=False)
    options.data_options(parser)
    out = parser.add_argument_group("output")
    out.add_argument("--out", default=None, help="run folder to write (default: REPORTS/<run-id>)")
    out.add_argument(
        "--reports", default="reports", help="folder of run folders, with a 'latest' link (default ./reports)"
    )
    out.add_argument(
        "--timeout", type=float, default=None, help="seconds a worker may take for one command (default 900)"
    )
    out.add_argument("--quiet", action="store_true", help="print only the results")


def build_parser() -> ArgumentParser:
    """The full argument parser with every subcommand."""
    parser = ArgumentParser(prog="perfsuite", description="Where does a PyTorch training step spend its time?")
    parser.add_argument("--version", action="version", version=f"perfsuite {VERSION}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    sub.required = True

    run = sub.add_parser("run", help="measure implementations phase by phase and write a run folder")
    options.impls_option(run, "implementations to run (default: every registered one)")
    options.workload_options(run)
    options.fresh_workers_option(run)
    options.precision_options(run)
    options.data_options(run)
    _measurement_output(
        run,
        "run folder to write (default: REPORTS/<run-id>)",
        "folder of run folders, with a 'latest' link (default ./reports)",
        "skip measuring the matmul peak and the compute floor (before and after the epochs: "
        "about 1 s plus a process start each)",
    )
    run.set_defaults(func=commands.run)

    swp = sub.add_parser(
        "sweep", help="run the same measurement at several batch sizes, thread counts, widths or subsets"
    )
    swp.add_argument(
        "--vary",
        action="append",
        default=[],
        metavar="NAME=V1,V2,…",
        help=f"a workload setting and its values ({', '.join(VARIABLES)}); give one or two",
    )
    options.impls_option(swp, "implementations to measure at every point (default: every registered one)")
    options.workload_options(swp)
    options.data_options(swp)
    _measurement_output(
        swp,
        "sweep folder to write (default: REPORTS/<sweep-id>)",
        "folder to create the sweep folder in (default ./reports)",
        "skip measuring the matmul peak and the compute floor at each point",
    )
    swp.add_argument(
        "--memory",
        action="store_true",
        help="measure memory at each point instead of time (perfsuite memory's method, 1 warm-up and 2 plain + "
        f"2 profiled epochs, no memray, at most --subset {memory.DEFAULT_SUBSET:g}): memory against batch size",
    )
    swp.set_defaults(func=commands.sweep)

    check = sub.add_parser("check", help="check that implementations train identically (losses and accuracy vs store)")
    options.impls_option(check, "implementations to check against store (default: every registered one)")
    options.workload_options(check, epochs=False)
    options.data_options(check)
    options.timeout_option(check)
    check.add_argument("--quiet", action="store_true", help="no live progress display")
    check.set_defaults(func=commands.check)

    lst = sub.add_parser("list", help="list implementations and whether they can run here")
    lst.set_defaults(func=commands.list_impls)

    summary = sub.add_parser("summary", help="recompute and print the summary of a run folder")
    summary.add_argument("run_dir", help="a run folder (e.g. reports/latest)")
    summary.set_defaults(func=commands.summary)

    rep = sub.add_parser("report", help="write RUN_DIR/index.html: statistics, charts and evidence of a run")
    rep.add_argument("run_dir", help="a run folder (e.g. reports/latest)")
    rep.add_argument(
        "--baseline", default=None, help="implementation speedups are measured against (default idiomatic)"
    )
    rep.add_argument(
        "--pytest-benchmark",
        action="append",
        default=[],
        metavar="FILE",
        help="pytest-benchmark JSON (pytest --benchmark-json) to show beside the run's figures; copied into "
        "RUN_DIR/benchmark/ (files already named RUN_DIR/benchmark*.json are found without it); repeatable",
    )
    rep.add_argument(
        "--example",
        default=None,
        metavar="DIR",
        help="also write a shareable example of the run into DIR: summary.json, the key charts as PNG and "
        "a README.md with the headline table, machine and date (how reports/example/ is made)",
    )
    rep.set_defaults(func=commands.report)

    cmp = sub.add_parser(
        "compare",
        help="compare two run folders by within-run ratios to a reference; exit 1 on a significant slowdown",
    )
    cmp.add_argument("base_dir", help="the run folder to compare against")
    cmp.add_argument("new_dir", help="the run folder to check against it")
    cmp.add_argument(
        "--reference",
        default="store",
        metavar="NAME",
        help="implementation measured in both runs that the others are divided by, epoch by epoch, "
        "within each run (default store); it is reported, not gated",
    )
    cmp.add_argument(
        "--raw", action="store_true", help="compare raw seconds across the runs instead (exposed to machine drift)"
    )
    cmp.add_argument(
        "--threshold",
        default="5%",
        metavar="T",
        help="equivalence margin, e.g. 5%% (default) or 0.05: 'slower' needs the whole 95%% interval of "
        "new/base above 1+T, 'faster' below 1/(1+T), 'no change' inside; otherwise 'inconclusive'",
    )
    cmp.add_argument(
        "--alpha",
        type=float,
        default=0.05,
        help="significance level of the Mann-Whitney p-values after Benjamini-Hochberg adjustment (default 0.05)",
    )
    cmp.add_argument("--html", default=None, metavar="FILE", help="also write an HTML view of the comparison")
    cmp.set_defaults(func=commands.compare)

    ab = sub.add_parser(
        "ab",
        help="interleave two versions' implementations in one run and compare them pair by pair; "
        "exit 1 on a significant slowdown",
    )
    ab.add_argument("base", metavar="BASE", help="a git revision of the repository here, or a folder (a checkout)")
    ab.add_argument("new", metavar="NEW", help="the version to check against BASE: a git revision or a folder")
    options.impls_option(ab, "implementation names to measure on both sides (default: every one both register)")
    options.workload_options(ab)
    options.fresh_workers_option(ab)
    options.data_options(ab)
    out = ab.add_argument_group("output")
    out.add_argument("--out", default=None, help="run folder to write (default: REPORTS/<run-id>)")
    out.add_argument(
        "--reports", default="reports", help="folder of run folders, with a 'latest' link (default ./reports)"
    )
    options.timeout_option(out)
    out.add_argument("--quiet", action="store_true", help="no live progress display")
    ab.add_argument(
        "--threshold",
        default="5%",
        metavar="T",
        help="equivalence margin, e.g. 5%% (default) or 0.05, as in compare",
    )
    ab.add_argument(
        "--alpha",
        type=float,
        default=0.05,
        help="significance level of the paired Wilcoxon p-values after Benjamini-Hochberg adjustment (default 0.05)",
    )
    ab.add_argument(
        "--seed-order",
        type=int,
        default=0,
        metavar="N",
        help="seed of the random order of the implementations in each pass (default 0)",
    )
    ab.add_argument(
        "--memory",
        action="store_true",
        help="also measure each side's tensor memory (apart from the timing run, in RUN_DIR/memory-run, "
        f"at most --subset {memory.DEFAULT_SUBSET:g}) and fail on more memory beyond the margin",
    )
    ab.set_defaults(func=commands.ab)

    flm = sub.add_parser(
        "flame", help="py-spy flame graphs per implementation; sampled vs timer phase shares; sampling overhead"
    )
    _profile_options(flm, "sample")
    flm.add_argument(
        "--epochs",
        type=int,
        default=DEFAULT_EPOCHS,
        help=f"sampled epochs per py-spy output (default {DEFAULT_EPOCHS})",
    )
    flm.add_argument("--warmup", type=int, default=1, help="warm-up epochs before any sampling (default 1)")
    flm.add_argument(
        "--rate", type=int, default=DEFAULT_RATE, help=f"py-spy samples per second (default {DEFAULT_RATE})"
    )
    flm.add_argument("--native", action="store_true", help="also sample C/C++ frames (py-spy --native)")
    flm.add_argument(
        "--diff",
        action="append",
        default=[],
        metavar="A,B",
        help="also draw B's phase flame graph coloured by each frame's change in share from A "
        "(red: larger in B, blue: smaller); repeatable; A and B must be sampled",
    )
    flm.add_argument(
        "--from",
        dest="from_dir",
        default=None,
        metavar="RUN_DIR",
        help="sample nothing: draw the phase (and --diff) flame graphs again from RUN_DIR's collapsed stacks",
    )
    flm.set_defaults(func=commands.flame)

    mem = sub.add_parser(
        "memory",
        help="tensor allocations and peak live bytes per phase, RSS per epoch, memray cross-check (apart from timing)",
    )
    _profile_options(mem, "measure")
    mem.set_defaults(subset=memory.DEFAULT_SUBSET)
    mem.add_argument(
        "--epochs",
        type=int,
        default=memory.DEFAULT_EPOCHS,
        help=f"plain epochs, then as many profiled for memory (default {memory.DEFAULT_EPOCHS}); "
        f"--subset defaults to {memory.DEFAULT_SUBSET:g} here",
    )
    mem.add_argument("--warmup", type=int, default=1, help="warm-up epochs before any measurement (default 1)")
    mem.add_argument("--no-memray", action="store_true", help="skip the epoch under memray (the cross-check)")
    mem.set_defaults(func=commands.memory)

    trc = sub.add_parser(
        "trace", help="torch.profiler Chrome trace per implementation, ranges per phase, top operators per phase"
    )
    _profile_options(trc, "trace")
    trc.add_argument("--epochs", type=int, default=1, help="traced epochs after the warm-up (default 1)")
    trc.add_argument(
        "--warmup", type=int, default=1, help="warm-up epochs, the profiler's warm-up too, not recorded (default 1)"
    )
    trc.add_argument("--top", type=int, default=DEFAULT_TOP, help=f"operators listed per phase (default {DEFAULT_TOP})")
    trc.set_defaults(func=commands.trace)

    prf = sub.add_parser(
        "profile",
        help="run your own training script with perfsuite.record on: its phases per step, a run folder, a report",
        description="Run COMMAND (e.g. python train.py ARGS…) in its own process with perfsuite.record on and write "
        "a run folder and report from the epochs it marks. Two commands separated by :: run alternately, epoch by "
        "epoch (see docs/profile.md).",
    )
    prf.add_argument(
        "--name", default=None, help="name(s) of the run's implementation rows, comma-separated (default: script stem)"
    )
    prf.add_argument(
        "--warmup", type=int, default=1, help="first epochs of each script flagged warm-up, left out of statistics (1)"
    )
    prf.add_argument(
        "--back-to-back",
        action="store_true",
        help="with two commands, run one after the other instead of alternating epochs (prints the drift caveat)",
    )
    prf.add_argument(
        "--flame",
        action="store_true",
        help="also sample each script with py-spy: flame graphs of the whole process and by phase in RUN_DIR/flame/",
    )
    prf.add_argument(
        "--rate", type=int, default=SCRIPT_RATE, help=f"py-spy samples per second with --flame (default {SCRIPT_RATE})"
    )
    prf_out = prf.add_argument_group("output")
    prf_out.add_argument("--out", default=None, help="run folder to write (default: REPORTS/<run-id>)")
    prf_out.add_argument(
        "--reports", default="reports", help="folder of run folders, with a 'latest' link (default ./reports)"
    )
    prf_out.add_argument("--quiet", action="store_true", help="no line per recorded epoch")
    prf.add_argument(
        "command", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARGS…] [:: COMMAND [ARGS…]]", help="what to run"
    )
    prf.set_defaults(func=commands.profile)

    dat = sub.add_parser("data", help="check or download MNIST")
    dsub = dat.add_subparsers(dest="data_command", metavar="ACTION", parser_class=ArgumentParser)
    dsub.required = True
    dcheck = dsub.add_parser("check", help="validate the MNIST files under the data root")
    dcheck.add_argument("--data-dir", default=None, help="torchvision root holding MNIST/raw/")
    dcheck.set_defaults(func=commands.data_check)
    ddown = dsub.add_parser("download", help="fetch MNIST with torchvision's downloader (needs internet)")
    ddown.add_argument(
        "--data-dir", default=None, help="torchvision root to download into (default: $PERFSUITE_DATA, else ./data)"
    )
    ddown.set_defaults(func=commands.data_download)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command is, so that it ends as Ctrl-C ends it."""


@contextmanager
def terminate_as_interrupt():
    """While the block runs (in the main thread), SIGTERM raises :class:`Terminated`."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminated(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv=None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with terminate_as_interrupt():
            return args.func(args) or 0
    except PerfsuiteError as exc:
        if args.debug:
            raise
        print(f"perfsuite: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt as exc:
        if args.debug:
            raise
        terminated = isinstance(exc, Terminated)
        print(f"perfsuite: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return 128 + (signal.SIGTERM if terminated else signal.SIGINT)
