"""The rank entry point that torchrun starts: ``python -m perfsuite.cli.torchrun``.

``--connect SOCKET`` is what ``perfsuite run`` uses for a multi-rank
implementation (:mod:`perfsuite.measure.ddp_worker`); ``--out DIR`` with the
``run`` workload and data options is a standalone job across machines, whose
rank 0 writes the run folder (:mod:`perfsuite.measure.ddp_standalone`).
"""

import argparse
import os
import signal
import sys

from perfsuite.core import options
from perfsuite.measure import ddp_standalone, ddp_worker

PROG = "python -m perfsuite.cli.torchrun"


def parser() -> argparse.ArgumentParser:
    """Options of the rank entry point (standalone mode takes the ``run`` workload and data options)."""
    p = argparse.ArgumentParser(prog=PROG, description=ddp_worker.__doc__.splitlines()[0])
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--connect", help="Unix socket of the perfsuite parent (set by perfsuite run)")
    mode.add_argument("--out", help="standalone: run folder rank 0 writes (new or empty)")
    p.add_argument("--impl", default="ddp", help="multi-rank implementation to run (default ddp)")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds a collective may wait for a peer")
    options.workload_options(p)
    options.data_options(p)
    return p


def main(argv=None) -> int:
    """Entry point under torchrun."""
    args = parser().parse_args(argv)
    if args.connect:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's; it stops the ranks
        ddp_worker.connected(args.connect)
        return 0
    status = ddp_standalone.run(args)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # the folder is written and the group left: skip the teardown (see ddp_standalone)


if __name__ == "__main__":
    sys.exit(main())
