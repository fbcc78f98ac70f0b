"""No-op handlers for the benchmark: every job type the shapes use returns at once."""

from __future__ import annotations

from runner import Job, Registry

registry = Registry()


@registry.handler("noop")
def noop(job: Job) -> None:
    return None
