"""The Overseer runner: write handlers with this library, run them with ``overseer-runner``.

    from runner import Registry, abort, fault

    registry = Registry()

    @registry.handler("resize")
    def resize(job):
        ...
        return {"width": 640}
"""

from runner.context import Job
from runner.outcomes import Aborted, Faulted, abort, fault
from runner.registry import Handler, Registry

__all__ = ["Aborted", "Faulted", "Handler", "Job", "Registry", "abort", "fault"]
