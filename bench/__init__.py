"""The benchmark of Overseer: ``python -m bench.run``; see ``docs/bench.md``."""
