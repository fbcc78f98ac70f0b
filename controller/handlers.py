"""The operator's kopf handlers: how watch events on graphs and Jobs become decisions.

Graphs are handled with kopf's change handlers (create, resume), which keep their progress
in annotations on the JobGraph; that object has a single writer, so the extra writes cost
nothing but a few requests per graph. Jobs are not followed through kopf at all but by
``controller.jobwatch``, which persists nothing on them (an annotation written to a Job
would bump its resourceVersion and make every runner's claim race the operator) and spares
each of their events kopf's per-object machinery.

Everything the handlers share lives in kopf's ``memo``: the index of what has been seen,
the writer that runs the blocking client calls off the loop, the transitions and the
status flusher.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from controller.events import EventPoster
from controller.expand import expand
from controller.housekeeping import Housekeeping
from controller.index import GraphView, Index
from controller.jobwatch import JobWatch
from controller.liveness import Liveness
from controller.status import StatusFlusher
from controller.transitions import Transitions
from controller.writer import Writer
from overseer import kube
from overseer.api import (
    GRAPH_PLURAL,
    GROUP,
    RUNNER_LABEL,
    VERSION,
    GraphPhase,
)


class _EssenceWithoutJobs(kopf.AnnotationsDiffBaseStorage):
    """kopf's last-handled-configuration annotation, minus ``spec.jobs``.

    kopf stores the whole spec in an annotation to diff the next change against; a big
    graph's job list would not fit in the 256 KiB that annotations may take. The job list
    is immutable (the CRD enforces it), so it has no changes worth diffing.
    """

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        # Drop the jobs before kopf deep-copies the body: copying ten thousand entries to
        # throw them away costs the operator more than the rest of the event.
        spec = {k: v for k, v in (body.get("spec") or {}).items() if k != "jobs"}
        return super().build(body=kopf.Body({**body, "spec": spec}), extra_fields=extra_fields)


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = _EssenceWithoutJobs(
        prefix=GROUP, key="last-handled-configuration"
    )
    # Only warnings become Kubernetes Events: kopf's "handler succeeded" for every graph
    # would be a write per graph that no one reads.
    settings.posting.level = logging.WARNING
    settings.scanning.disabled = memo.get("scanning_disabled", False)
    # kopf keeps a worker per object until it has been idle this long. A Job's events come
    # in a burst (created, eligible, started, finished) and then stop; a short idle time
    # lets the workers of ten thousand finished Jobs go instead of holding their memory.
    settings.queueing.idle_timeout = 1.0
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330

    memo.index = Index()
    memo.writer = Writer(kube.load_config(pool_size=32))
    memo.events = EventPoster(memo.writer)
    memo.transitions = Transitions(memo.index, memo.writer, memo.events)
    memo.liveness = Liveness(memo.index, memo.transitions, memo.writer,
                             orphan_grace=memo.get("orphan_grace", 15.0))
    memo.flusher = StatusFlusher(memo.index, memo.writer, memo.events,
                                 interval=memo.get("status_interval", 1.0))
    memo.housekeeping = Housekeeping(memo.index, memo.transitions, memo.liveness, memo.writer,
                                     memo.events, unserved_after=memo.get("unserved_after", 30.0))
    memo.jobwatch = JobWatch(memo.writer, memo.index, memo.transitions, memo.flusher,
                             memo.events)
    # Exact namespaces (or all of them) are followed from the start; with patterns, kopf
    # finds the namespaces, and graph_event starts following each one it brings news from.
    for namespace in memo.get("job_namespaces", ()):
        memo.jobwatch.follow(namespace)
    memo.tasks = [
        asyncio.create_task(memo.flusher.run(), name="graph-status"),
        asyncio.create_task(memo.housekeeping.run(), name="housekeeping"),
    ]


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    memo.jobwatch.stop()
    for task in memo.tasks:
        task.cancel()
    memo.writer.shutdown()


@kopf.on.event(GROUP, VERSION, GRAPH_PLURAL)
async def graph_event(event: dict[str, Any], body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    memo.jobwatch.follow(namespace)
    if event["type"] == "DELETED":
        memo.index.forget_graph(namespace, name)
        return
    await _observe_graph(body, memo)


async def _observe_graph(body: kopf.Body, memo: kopf.Memo) -> GraphView:
    """The graph's view, brought up to date; the first time, its jobs are decided on too.

    Jobs seen before their graph (after a restart, the Jobs' listing may come first) were
    only indexed: deciding then would have ignored the graph's parallelism, suspension or
    cancellation (``jobwatch``).
    """
    view = memo.index.observe_graph(body)
    if not view.decided:
        view.decided = True
        await memo.transitions.settle_graph(view)
    return view


@kopf.on.create(GROUP, VERSION, GRAPH_PLURAL)
@kopf.on.resume(GROUP, VERSION, GRAPH_PLURAL)
async def expand_graph(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    view = await _observe_graph(body, memo)
    phase = (body.get("status") or {}).get("phase")
    if phase == GraphPhase.FAILED and (body.get("status") or {}).get("counts") is None:
        return  # rejected before: nothing to create, nothing to count
    await expand(body, view, memo.writer, memo.events)
    memo.flusher.poke()


@kopf.on.update(GROUP, VERSION, GRAPH_PLURAL, field="spec.suspend")
@kopf.on.update(GROUP, VERSION, GRAPH_PLURAL, field="spec.cancel")
@kopf.on.update(GROUP, VERSION, GRAPH_PLURAL, field="spec.parallelism")
async def graph_control_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Suspend, resume, cancel or a new parallelism: every job may move differently now."""
    view = await _observe_graph(body, memo)
    view.dirty = True
    await memo.transitions.settle_graph(view)
    memo.flusher.poke()


@kopf.on.update(GROUP, VERSION, GRAPH_PLURAL, field="spec.rerun")
async def graph_rerun(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    view = await _observe_graph(body, memo)
    if view.cancelled:
        memo.events.post(body, reason="RerunRefused", warning=True,
                         message="a cancelled graph cannot be re-run; apply it anew instead")
        return
    redo = await memo.transitions.reset_for_rerun(view)
    view.dirty = True
    memo.events.post(body, reason="Rerun", message=f"re-running {redo} failed or aborted jobs")
    await memo.transitions.settle_graph(view)
    memo.flusher.poke()


@kopf.on.event("coordination.k8s.io", "v1", "leases", labels={RUNNER_LABEL: "true"})
async def lease_event(event: dict[str, Any], body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if event["type"] == "DELETED":
        memo.liveness.forget(body)
    else:
        memo.liveness.observe(body)
