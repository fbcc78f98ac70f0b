"""What the operator checks on a clock rather than on an event.

Once a second: runners whose Lease went silent (``liveness``); graphs past their
``activeDeadlineSeconds`` (cancelled); finished graphs past ``ttlSecondsAfterFinished``
(deleted, and the garbage collector deletes their Jobs); and Eligible jobs that no live
runner serves (an Event, so that a job of a mistyped type does not wait in silence).

Deadlines and TTLs compare the graph's ``startedAt`` and ``finishedAt``, which this operator
wrote with its own clock, against that same clock.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timezone

import structlog

from controller import metrics
from controller.events import EventPoster, job_ref
from controller.index import GraphView, Index
from controller.liveness import Liveness
from controller.transitions import Transitions
from controller.writer import Writer
from overseer import kube
from overseer.api import GraphPhase, JobPhase

log = structlog.get_logger("overseer.operator")

TICK = 1.0
# Every decision is also taken again on this period, whatever the events said: a write
# that failed while the API server was away is retried, and nothing waits on a lost event.
RESYNC = 10.0


class Housekeeping:
    def __init__(
        self, index: Index, transitions: Transitions, liveness: Liveness, writer: Writer,
        events: EventPoster, *, unserved_after: float = 30.0,
    ) -> None:
        self.index = index
        self.transitions = transitions
        self.liveness = liveness
        self.writer = writer
        self.events = events
        self.unserved_after = unserved_after
        self._told_unserved: set[tuple[str, str, str]] = set()
        self._deleting: set[tuple[str, str]] = set()

    async def run(self) -> None:
        ticks_per_resync = int(RESYNC / TICK)
        tick = 0
        while True:
            await asyncio.sleep(TICK)
            tick += 1
            try:
                await self.liveness.sweep()
                for graph in list(self.index.graphs.values()):
                    await self._check(graph)
                    if tick % ticks_per_resync == 0 and graph.expanded:
                        await self.transitions.settle_graph(graph)
                self._gauges()
            except Exception:  # noqa: BLE001 - one bad tick must not end housekeeping
                log.exception("housekeeping.failed")

    async def _check(self, graph: GraphView) -> None:
        status = graph.status
        phase = status.get("phase")
        now = datetime.now(timezone.utc)
        terminal = phase in (GraphPhase.FINISHED, GraphPhase.FAILED)

        deadline = graph.active_deadline_seconds
        if (deadline and not terminal and not graph.deadline_exceeded and status.get("startedAt")
                and (now - kube.parse_time(status["startedAt"])).total_seconds() > deadline):
            graph.deadline_exceeded = True
            graph.dirty = True
            log.warning("graph.deadline_exceeded", namespace=graph.namespace, graph=graph.name,
                        deadline=deadline)
            await self.transitions.settle_graph(graph)

        ttl = graph.ttl_seconds_after_finished
        key = (graph.namespace, graph.name)
        if (ttl is not None and terminal and status.get("finishedAt") and key not in self._deleting
                and (now - kube.parse_time(status["finishedAt"])).total_seconds() >= ttl):
            self._deleting.add(key)
            log.info("graph.expired", namespace=graph.namespace, graph=graph.name, ttl=ttl)
            try:
                await self.writer.run(self.writer.graphs.delete, graph.namespace, graph.name)
            except kube.NotFound:
                pass
            except kube.KubeError:
                self._deleting.discard(key)
                raise

        if not terminal:
            self._tell_unserved(graph, now)

    def _gauges(self) -> None:
        """Refresh the operator's gauges from the index."""
        graphs: Counter[str] = Counter()
        jobs: Counter[str] = Counter()
        eligible: Counter[tuple[str, str]] = Counter()
        for graph in self.index.graphs.values():
            graphs[str(graph.status.get("phase") or GraphPhase.PENDING)] += 1
            for phase, count in graph.by_phase.items():
                jobs[str(phase)] += count
            for job in graph.in_phase(JobPhase.ELIGIBLE):
                eligible[(graph.namespace, job.type)] += 1
        for phase in GraphPhase:
            metrics.graphs.labels(str(phase)).set(graphs[str(phase)])
        for phase in JobPhase:
            metrics.jobs.labels(str(phase)).set(jobs[str(phase)])
        metrics.queue_depth.clear()
        for (namespace, job_type), depth in eligible.items():
            metrics.queue_depth.labels(namespace, job_type).set(depth)
        metrics.runners.clear()
        live = Counter(r.namespace for r in self.liveness.runners.values())
        for namespace, count in live.items():
            metrics.runners.labels(namespace).set(count)

    def _tell_unserved(self, graph: GraphView, now: datetime) -> None:
        served = self.liveness.live_types(graph.namespace)
        for job in graph.in_phase(JobPhase.ELIGIBLE):
            if job.type in served or not job.eligible_at:
                continue
            told = (graph.namespace, graph.name, job.type)
            waited = (now - kube.parse_time(job.eligible_at)).total_seconds()
            if told in self._told_unserved or waited < self.unserved_after:
                continue
            self._told_unserved.add(told)
            message = (f"job {job.name} has waited {waited:.0f}s for a runner, and no live "
                       f"runner in namespace {graph.namespace} serves job type {job.type!r}; "
                       "start a runner whose handlers include it")
            log.warning("job.unserved", namespace=graph.namespace, graph=graph.name,
                        job=job.name, type=job.type)
            self.events.post(job_ref(graph.namespace, job.object_name, job.uid),
                             reason="NoRunnerForType", message=message, warning=True)
