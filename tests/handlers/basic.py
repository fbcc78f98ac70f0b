"""Small handlers for the end-to-end tests; every execution is written to the ledger."""

from __future__ import annotations

import time

from runner import Job, Registry
from tests.handlers.ledger import ledgered

registry = Registry()


@registry.handler("noop")
def noop(job: Job) -> None:
    return None


@registry.handler("echo")
def echo(job: Job) -> dict:
    return {"args": dict(job.args), "results": job.results}


@registry.handler("sleep")
def sleep(job: Job) -> dict:
    time.sleep(float(job.args.get("seconds", 0.5)))
    return {"slept": job.args.get("seconds", 0.5)}


@registry.handler("boom")
def boom(job: Job) -> None:
    raise ValueError(job.args.get("message", "boom"))


registry.harness("process", ledgered)
