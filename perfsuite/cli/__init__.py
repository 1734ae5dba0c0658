"""The ``perfsuite`` command line: the parser, every command handler and the torchrun entry."""

from perfsuite.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
