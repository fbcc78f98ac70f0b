"""The ``overseer`` command line: submit graphs, watch them, look at them, steer them."""

from overseer.cli.app import main

__all__ = ["main"]
