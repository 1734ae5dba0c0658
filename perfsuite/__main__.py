"""``python -m perfsuite`` and the ``perfsuite`` command: the command line, loaded when it runs."""

import sys


def main(argv=None) -> int:
    """Run the command line; returns the exit status."""
    from perfsuite.cli.main import main as run  # here, not above: every spawned worker re-imports this module

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
