"""A harness that records every execution of a handler in a file, for counting."""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable
from typing import Any

from runner import Job


def record(job: Job, **extra: Any) -> None:
    path = os.environ.get("OVERSEER_TEST_LEDGER")
    if not path:
        return
    line = json.dumps({"job": job.name, "graph": job.graph, "type": job.type,
                       "attempt": job.attempt, "runner": job.runner, "pid": os.getpid(),
                       "time": time.time(), **extra})
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(line + "\n")


def ledgered(process: Callable[[Job], Any]) -> Callable[[Job], Any]:
    """Wraps a ``process`` stage: one ledger line per call, before the handler runs."""
    def wrapped(job: Job) -> Any:
        record(job)
        return process(job)
    return wrapped
