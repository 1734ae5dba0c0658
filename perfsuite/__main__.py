"""``python -m perfsuite`` runs the command-line interface."""

from perfsuite.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
