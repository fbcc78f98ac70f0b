"""How the operator follows Jobs: a plain list and watch per namespace, feeding the index.

Graphs go through kopf, whose change handlers they need. Jobs need none of kopf's
machinery: the operator persists nothing on them and acts on each event by looking at its
index. Yet kopf's per-event work (a worker per object, its cause detection, the diff-base
copy of every body, the handler invocation) was about half of the operator's CPU, all of it
spent on Jobs (``bench/results/``). So each served namespace gets a thread that lists and
watches its Jobs with the kubernetes client and hands every event to the event loop, where
it is applied to the index in the order the API server sent it.

Which namespaces: the exact ones the operator was given, or every namespace (one watch
across all of them); with namespace patterns, each namespace is followed from the moment
kopf brings news of a graph in it, which is also the only time its Jobs matter.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import structlog

from controller.events import EventPoster
from controller.expand import expand, owner_uid
from controller.index import GraphView, Index, is_newer
from controller.status import StatusFlusher
from controller.transitions import Transitions
from controller.writer import Writer
from overseer import kube, listwatch
from overseer.api import GraphPhase, JobPhase

log = structlog.get_logger("overseer.operator")

# Seconds after a Job's deletion before the missing Jobs of its graph are created again:
# a burst of deletions becomes one expansion.
RECREATE_AFTER = 1.0

ALL = None  # the namespace of a watch across every namespace


class JobWatch:
    """Follows the Jobs of the served namespaces and acts on every change."""

    def __init__(self, writer: Writer, index: Index, transitions: Transitions,
                 flusher: StatusFlusher, events: EventPoster) -> None:
        self.writer = writer
        self.index = index
        self.transitions = transitions
        self.flusher = flusher
        self.events = events
        self._loop = asyncio.get_running_loop()
        self._stop = threading.Event()
        self._followed: set[str | None] = set()
        # Events handed over by the watch threads, applied on the loop in arrival order.
        self._inbox: list[tuple[Any, tuple[Any, ...]]] = []
        self._inbox_lock = threading.Lock()
        self._draining = False
        # Decisions in flight; asyncio keeps only weak references to tasks.
        self._tasks: set[asyncio.Task[None]] = set()
        self._recreating: set[tuple[str, str]] = set()

    def follow(self, namespace: str | None) -> None:
        """Start following the Jobs of ``namespace`` (ALL: every one); idempotent."""
        if namespace in self._followed or ALL in self._followed:
            return
        self._followed.add(namespace)
        threading.Thread(
            target=listwatch.list_and_watch, name=f"jobs-{namespace or 'all'}", daemon=True,
            args=(self.writer.jobs, namespace),
            kwargs={"on_list": self._from_thread(self._listed, namespace),
                    "on_event": self._from_thread(self._changed),
                    "stop": self._stop, "name": "jobs"},
        ).start()

    def stop(self) -> None:
        self._stop.set()

    def _from_thread(self, fn: Any, *bound: Any) -> Any:
        """``fn`` called on the event loop, in order, from a watch thread."""
        def call(*args: Any) -> None:
            with self._inbox_lock:
                self._inbox.append((fn, (*bound, *args)))
                if self._draining:
                    return
                self._draining = True
            # One wake-up of the loop for a burst of events, not one per event: each costs
            # a write to the loop's self-pipe and a turn of the loop.
            self._loop.call_soon_threadsafe(self._drain)
        return call

    def _drain(self) -> None:
        with self._inbox_lock:
            batch, self._inbox = self._inbox, []
            self._draining = False
        for fn, args in batch:
            fn(*args)

    # --- on the event loop

    def _listed(self, namespace: str | None, items: list[dict[str, Any]], version: str) -> None:
        """A complete listing: every Job in it is news; a known Job missing from it is gone."""
        listed = {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in items}
        for graph in list(self.index.graphs.values()):
            if namespace is not ALL and graph.namespace != namespace:
                continue
            for job in list(graph.jobs.values()):
                # Created after the listing was taken (seen in our own write's response):
                # not missing, only not listed yet.
                if ((graph.namespace, job.object_name) not in listed
                        and is_newer(version, job.resource_version)):
                    graph.remove(job.name)
        for body in items:
            self._changed(None, body)
        self.index.listed.add(namespace)

    def _changed(self, kind: str | None, body: dict[str, Any]) -> None:
        """One Job's news (``kind`` None: from a listing), applied now, acted on in a task."""
        if kind == "DELETED":
            self._deleted(body)
            return
        observed = self.index.observe_job(body)
        if observed is None:
            return
        graph, job = observed
        if not graph.decided:
            # The graph itself is not known yet (after a restart the Jobs' listing may come
            # first): deciding now would ignore its parallelism, suspension or cancellation.
            # The graph's handlers decide on all its jobs once it is seen.
            return
        if job.phase.is_terminal:
            self.flusher.poke()
        if job.phase is JobPhase.FAILED and kind == "MODIFIED":
            self.events.post(body, reason="JobFailed", warning=True,
                             message=f"{job.name}: {(body.get('status') or {}).get('message')}")
        self._spawn(self.transitions.settle(graph, job))

    def _spawn(self, work: Any) -> None:
        task = self._loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._settled)

    def _deleted(self, body: dict[str, Any]) -> None:
        """A Job is gone. Its graph's garbage collection, usually; if not, it is made again.

        Someone deleted a Job of a running graph: left so, its dependents would wait for
        ever. Expansion creates what is missing, so the Job comes back, Waiting.
        """
        graph = self.index.forget_job(body)
        if (graph is None or not graph.expanded or graph.deleting or graph.uid is None
                or owner_uid(body) != graph.uid
                or graph.status.get("phase") in (GraphPhase.FINISHED, GraphPhase.FAILED)):
            return
        key = (graph.namespace, graph.name)
        if key not in self._recreating:
            self._recreating.add(key)
            self._spawn(self._recreate(graph, body["spec"].get("name", "")))

    async def _recreate(self, graph: GraphView, job_name: str) -> None:
        key = (graph.namespace, graph.name)
        try:
            await asyncio.sleep(RECREATE_AFTER)
            try:
                body = await self.writer.run(self.writer.graphs.get, *key)
            except kube.NotFound:
                return
            if body["metadata"].get("deletionTimestamp") or body["metadata"]["uid"] != graph.uid:
                return
            log.warning("job.recreated", namespace=graph.namespace, graph=graph.name,
                        job=job_name)
            self.events.post(body, reason="JobRecreated", warning=True,
                             message=f"Job {job_name} of the running graph was deleted; it "
                             "is created again, with any other missing Job of the graph")
            await expand(body, graph, self.writer, self.events)
        finally:
            self._recreating.discard(key)

    def _settled(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("job.settle_failed", error=f"{type(exc).__name__}: {exc}")

