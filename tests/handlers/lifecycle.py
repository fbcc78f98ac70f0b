"""Handlers that fail, fault, abort, overrun and stop, for the life-cycle tests."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from runner import Job, Registry, abort, fault
from tests.handlers.ledger import ledgered, record

registry = Registry()


@registry.handler("flaky")
def flaky(job: Job) -> dict:
    """Fails its first ``fail_times`` attempts."""
    if job.attempt <= int(job.args.get("fail_times", 1)):
        raise RuntimeError(f"attempt {job.attempt} failed")
    return {"attempt": job.attempt}


@registry.handler("until-file")
def until_file(job: Job) -> str:
    """Fails while the file named in args does not exist: a fault the user can fix."""
    if not Path(job.args["path"]).exists():
        raise FileNotFoundError(f"{job.args['path']} is missing")
    return "found"


@registry.handler("faulty")
def faulty(job: Job) -> int:
    if job.attempt == 1:
        fault("the database is not up yet")
    return job.attempt


@registry.handler("aborter")
def aborter(job: Job) -> None:
    abort("no input for this week")


@registry.handler("slow")
def slow(job: Job) -> str:
    """Sleeps in short steps, so that an interruption lands within a tenth of a second."""
    end = time.monotonic() + float(job.args.get("seconds", 1))
    while time.monotonic() < end:
        time.sleep(0.05)
    record(job, stage="end")
    return "slept"


@registry.handler("spin")
def spin(job: Job) -> None:
    """A pure-Python loop that never ends by itself."""
    n = 0
    while True:
        n += 1


@registry.handler("async-sleep")
async def async_sleep(job: Job) -> str:
    await asyncio.sleep(float(job.args.get("seconds", 60)))
    return "woke"


@registry.handler("big")
def big(job: Job) -> str:
    return "x" * 20000


@registry.handler("not-json")
def not_json(job: Job) -> object:
    return {"when": object()}


@registry.handler("context")
def context(job: Job) -> dict:
    return {"name": job.name, "type": job.type, "graph": job.graph, "namespace": job.namespace,
            "args": dict(job.args), "attempt": job.attempt, "results": job.results,
            "pid": os.getpid()}



@registry.handler("nan")
def nan(job: Job) -> dict:
    return {"v": float("nan")}


@registry.handler("huge-error")
def huge_error(job: Job) -> None:
    raise RuntimeError("E" * 2_000_000)


registry.harness("process", ledgered)
