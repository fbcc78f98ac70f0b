"""Turning a JobGraph into its Jobs.

Expansion is idempotent: the Jobs have deterministic names (``<graph>-<job>``), the
operator lists what exists before it creates what is missing, and an "already exists" is
success. An operator that dies half way and starts again creates no duplicates.
"""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pydantic
import structlog

from controller import metrics
from controller.events import EventPoster
from controller.graph import InvalidGraph, validate
from controller.index import GraphView
from controller.writer import Writer
from overseer import conditions, kube
from overseer.api import (
    API_VERSION, GRAPH_LABEL, TYPE_LABEL, GraphJob, GraphPhase, JobGraphSpec, JobPolicy,
    JobSpec, job_object_name,
)

log = structlog.get_logger("overseer.operator")

# Creates in flight per graph: enough to keep the API server busy, few enough that a big
# graph does not starve every other request of the operator.
CREATE_CONCURRENCY = 8


def job_body(graph: dict[str, Any], entry: GraphJob, graph_spec: JobGraphSpec) -> dict[str, Any]:
    """The Job object for one graph entry, with the graph's defaults filled in."""
    meta = graph["metadata"]
    defaults = graph_spec.defaults or JobPolicy()
    spec = JobSpec(
        graph=meta["name"],
        graph_priority=graph_spec.priority,
        name=entry.name,
        type=entry.type,
        args=entry.args,
        depends_on=entry.depends_on,
        priority=entry.priority if entry.priority is not None else defaults.priority,
        retries=entry.retries if entry.retries is not None else defaults.retries,
        backoff=entry.backoff or defaults.backoff,
        timeout_seconds=entry.timeout_seconds or defaults.timeout_seconds,
    )
    return {
        "apiVersion": API_VERSION,
        "kind": "Job",
        "metadata": {
            "name": job_object_name(meta["name"], entry.name),
            "namespace": meta["namespace"],
            "labels": {GRAPH_LABEL: meta["name"], TYPE_LABEL: entry.type},
            "ownerReferences": [{
                "apiVersion": API_VERSION, "kind": "JobGraph", "name": meta["name"],
                "uid": meta["uid"], "controller": True,
            }],
        },
        "spec": spec.model_dump(by_alias=True, exclude_none=True),
    }


async def expand(body: kopf.Body, view: GraphView, writer: Writer, events: EventPoster) -> None:
    """Validate the graph and create every Job of it that does not exist yet."""
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    bound = log.bind(namespace=namespace, graph=name)

    try:
        spec = JobGraphSpec.model_validate(body.get("spec", {}))
        validate(name, spec.jobs)
    except pydantic.ValidationError as exc:
        await reject(body, view, writer, events, InvalidGraph("InvalidSpec", _summary(exc)))
        return
    except InvalidGraph as exc:
        await reject(body, view, writer, events, exc)
        return

    uid = body["metadata"]["uid"]
    existing = await writer.run(
        writer.jobs.list, namespace, label_selector=f"{GRAPH_LABEL}={name}"
    )
    have = set()
    for item in existing.get("items", []):
        if owner_uid(item) != uid:
            # Left by an earlier graph of this name, deleted just now: the garbage collector
            # is removing them. Creating beside them would adopt none and miss some.
            raise kopf.TemporaryError(
                f"Jobs of an earlier JobGraph {name} are still being deleted", delay=2)
        have.add(item["metadata"]["name"])
    missing = [e for e in spec.jobs if job_object_name(name, e.name) not in have]
    bound.info("graph.expanding", total=len(spec.jobs), missing=len(missing))
    # From here the index may count this graph: what is not created yet counts as Waiting.
    view.expanded = True
    view.dirty = True

    gate = asyncio.Semaphore(CREATE_CONCURRENCY)
    collisions: list[str] = []

    async def create(entry: GraphJob) -> None:
        async with gate:
            try:
                await writer.run(writer.jobs.create, namespace, job_body(body, entry, spec))
                metrics.jobs_created.inc()
            except kube.Conflict:
                # Created by an earlier run of this operator (the goal), or the name is taken.
                other = await writer.run(writer.jobs.get, namespace,
                                         job_object_name(name, entry.name))
                if owner_uid(other) == uid:
                    return
                if other.get("spec", {}).get("graph") == name:
                    raise kopf.TemporaryError(
                        f"Jobs of an earlier JobGraph {name} are still being deleted",
                        delay=2) from None
                collisions.append(f"{entry.name} (taken by job {other['spec'].get('name')} "
                                  f"of graph {other['spec'].get('graph')})")

    await asyncio.gather(*(create(e) for e in missing))
    if collisions:
        view.expanded = False
        await reject(body, view, writer, events, InvalidGraph(
            "JobNameTaken",
            f"the Job names <graph>-<job> of these jobs are already used in this namespace: "
            f"{', '.join(sorted(collisions))}; rename the jobs or the graph"))
        return
    bound.info("graph.expanded", total=len(spec.jobs), created=len(missing))


def owner_uid(job: dict[str, Any]) -> str | None:
    """The uid of the JobGraph that owns ``job``."""
    refs = job.get("metadata", {}).get("ownerReferences") or []
    return next((r.get("uid") for r in refs if r.get("kind") == "JobGraph"), None)


async def reject(
    body: kopf.Body, view: GraphView, writer: Writer, events: EventPoster, error: InvalidGraph
) -> None:
    """Mark the graph Failed with a message saying what is wrong; create nothing."""
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    generation = body["metadata"].get("generation")
    status = {
        "phase": GraphPhase.FAILED,
        "reason": error.reason,
        "message": error.message,
        "total": len(body.get("spec", {}).get("jobs") or []),
        "counts": None,
        "progress": f"0/{len(body.get('spec', {}).get('jobs') or [])}",
        "observedGeneration": generation,
        "finishedAt": kube.now(),
        "conditions": conditions.merge((body.get("status") or {}).get("conditions", []), [
            conditions.condition("Accepted", False, reason=error.reason, message=error.message,
                                 generation=generation),
            conditions.condition("Failed", True, reason=error.reason, message=error.message,
                                 generation=generation),
        ]),
    }
    await writer.run(writer.graphs.patch_status, namespace, name, status)
    view.status = status
    events.post(body, reason=error.reason, message=error.message, warning=True)
    log.warning("graph.rejected", namespace=namespace, graph=name, reason=error.reason,
                message=error.message)


def _summary(exc: pydantic.ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"spec.{where}: {err['msg']}")
    return "; ".join(parts)
