"""The operator's kopf handlers: how watch events on graphs and Jobs become decisions.

Graphs are handled with kopf's change handlers (create, resume), which keep their progress
in annotations on the JobGraph; that object has a single writer, so the extra writes cost
nothing but a few requests per graph. Jobs are followed only with event handlers, which
persist nothing: an annotation written to a Job would bump its resourceVersion and make
every runner's claim race the operator.

Everything the handlers share lives in kopf's ``memo``: the index of what has been seen,
the writer that runs the blocking client calls off the loop, the transitions and the
status flusher.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from controller.expand import expand
from controller.index import Index
from controller.status import StatusFlusher
from controller.transitions import Transitions, Writer
from overseer import kube
from overseer.api import GRAPH_PLURAL, GROUP, JOB_PLURAL, VERSION, GraphPhase


class _EssenceWithoutJobs(kopf.AnnotationsDiffBaseStorage):
    """kopf's last-handled-configuration annotation, minus ``spec.jobs``.

    kopf stores the whole spec in an annotation to diff the next change against; a big
    graph's job list would not fit in the 256 KiB that annotations may take. The job list
    is immutable (the CRD enforces it), so it has no changes worth diffing.
    """

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        essence = super().build(body=body, extra_fields=extra_fields)
        essence.get("spec", {}).pop("jobs", None)
        return essence


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = _EssenceWithoutJobs(
        prefix=GROUP, key="last-handled-configuration"
    )
    # Only warnings become Kubernetes Events: kopf's "handler succeeded" for every graph
    # would be a write per graph that no one reads.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330

    memo.index = Index()
    memo.writer = Writer(kube.load_config(pool_size=32))
    memo.transitions = Transitions(memo.index, memo.writer)
    memo.flusher = StatusFlusher(memo.index, memo.writer, interval=memo.get("status_interval", 1.0))
    memo.flusher_task = asyncio.create_task(memo.flusher.run(), name="graph-status-flusher")


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    memo.flusher_task.cancel()
    memo.writer.shutdown()


@kopf.on.event(GROUP, VERSION, GRAPH_PLURAL)
async def graph_event(event: dict[str, Any], body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if event["type"] == "DELETED":
        memo.index.forget_graph(body["metadata"]["namespace"], body["metadata"]["name"])
        return
    memo.index.observe_graph(body)


@kopf.on.create(GROUP, VERSION, GRAPH_PLURAL)
@kopf.on.resume(GROUP, VERSION, GRAPH_PLURAL)
async def expand_graph(body: kopf.Body, memo: kopf.Memo, logger: Any, **_: Any) -> None:
    view = memo.index.observe_graph(body)
    phase = (body.get("status") or {}).get("phase")
    if phase == GraphPhase.FAILED and (body.get("status") or {}).get("counts") is None:
        return  # rejected before: nothing to create, nothing to count
    await expand(body, view, memo.writer, logger=logger)
    memo.flusher.poke()


@kopf.on.event(GROUP, VERSION, JOB_PLURAL)
async def job_event(event: dict[str, Any], body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if event["type"] == "DELETED":
        memo.index.forget_job(body)
        return
    observed = memo.index.observe_job(body)
    if observed is None:
        return
    graph, job = observed
    await memo.transitions.settle(graph, job)
    if job.phase.is_terminal:
        memo.flusher.poke()
