"""The operator's writes to Jobs: Waiting -> Eligible, and Waiting -> Aborted.

These are the only transitions of a Job the operator makes besides creating it (and, for a
runner that is gone, handing its job back). Each is a status patch preconditioned on the
resourceVersion the decision was made on, so a decision taken on stale news fails with 409
instead of overwriting what a runner wrote since.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import structlog

from controller import graph as rules
from controller.index import GraphView, Index, JobView
from overseer import kube
from overseer.api import JobPhase

log = structlog.get_logger("overseer.operator")
T = TypeVar("T")


class Writer:
    """Runs the blocking client calls of the operator off the event loop."""

    def __init__(self, api_client: Any, *, concurrency: int = 16) -> None:
        self.jobs = kube.jobs(api_client)
        self.graphs = kube.graphs(api_client)
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="writer")

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class Transitions:
    """Decides and writes the operator's transitions of the Jobs of a graph."""

    def __init__(self, index: Index, writer: Writer) -> None:
        self.index = index
        self.writer = writer
        # Jobs with a write of ours in flight; a second decision on the same news would only
        # produce a 409 or a redundant write.
        self._in_flight: set[tuple[str, str]] = set()

    async def settle(self, graph: GraphView, job: JobView) -> None:
        """Act on news about ``job``: it, or the jobs waiting for it, may move on now."""
        candidates = [job, *(graph.jobs[d] for d in graph.dependents.get(job.name, ())
                              if d in graph.jobs)]
        writes: list[Awaitable[None]] = []
        for candidate in candidates:
            phases = list(graph.dependency_phases(candidate))
            if rules.is_eligible(candidate.phase, phases):
                writes.append(self._write(graph, candidate, self._eligible_status()))
            elif rules.is_doomed(candidate.phase, phases):
                writes.append(self._write(graph, candidate, self._aborted_status(graph, candidate)))
        if writes:
            await asyncio.gather(*writes)

    @staticmethod
    def _eligible_status() -> dict[str, Any]:
        return {"phase": JobPhase.ELIGIBLE, "eligibleAt": kube.now()}

    @staticmethod
    def _aborted_status(graph: GraphView, job: JobView) -> dict[str, Any]:
        failed = sorted(
            dep for dep in job.depends_on
            if graph.phase_of(dep) in (JobPhase.FAILED, JobPhase.ABORTED)
        )
        return {
            "phase": JobPhase.ABORTED,
            "reason": "DependencyFailed",
            "message": f"not run because its dependency {', '.join(failed)} "
            f"{'is' if len(failed) == 1 else 'are'} "
            f"{graph.phase_of(failed[0]).value if failed else 'failed'}",
            "finishedAt": kube.now(),
        }

    async def _write(self, graph: GraphView, job: JobView, status: dict[str, Any]) -> None:
        key = (graph.namespace, job.object_name)
        if key in self._in_flight:
            return
        self._in_flight.add(key)
        bound = log.bind(namespace=graph.namespace, graph=graph.name, job=job.name)
        try:
            body = await self.writer.run(
                self.writer.jobs.patch_status, graph.namespace, job.object_name, status,
                resource_version=job.resource_version,
            )
        except kube.Conflict:
            body = None
        except kube.NotFound:
            return
        finally:
            self._in_flight.discard(key)

        if body is None:
            # Someone wrote the Job since we saw it. If that news reached the index while
            # this write was in flight, decide again on it now; otherwise the watch brings
            # it and the decision is taken then.
            bound.debug("job.transition.conflict", phase=status["phase"])
            current = graph.jobs.get(job.name)
            if current is not None and current.resource_version != job.resource_version:
                await self.settle(graph, current)
            return

        bound.info("job." + str(status["phase"]).lower(), reason=status.get("reason"))
        observed = self.index.observe_job(body)
        if observed is not None:
            await self.settle(*observed)
