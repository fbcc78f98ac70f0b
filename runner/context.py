"""The job a handler receives."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any


@dataclass(frozen=True)
class Job:
    """One attempt at one job, as its handler sees it.

    ``results`` holds the result of each job this one depends on, keyed by that job's name
    in the graph; it is read from the API server the first time a handler asks for it.
    ``stopping`` is set when the attempt should end early (timeout, cancelled graph, runner
    shutting down), for long handlers that want to stop cleanly between steps.
    """

    name: str
    type: str
    graph: str
    namespace: str
    args: Mapping[str, Any]
    attempt: int
    runner: str
    depends_on: tuple[str, ...] = ()
    stopping: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)
    _load_results: Callable[[], dict[str, Any]] = field(
        default=lambda: {}, repr=False, compare=False
    )

    @cached_property
    def results(self) -> dict[str, Any]:
        return self._load_results()
