"""The status of a JobGraph: its phase and how many of its jobs are in each phase.

The status holds counts, never one entry per job, so a graph of ten thousand jobs does not
grow its object towards etcd's size limit. It is written by a single flusher at a bounded
rate per graph: a graph whose jobs change a thousand times a second costs a few writes a
second, not a thousand.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog

from controller.events import EventPoster
from controller.index import GraphView, Index
from controller.writer import Writer
from overseer import conditions, kube
from overseer.api import API_VERSION, GraphPhase, JobPhase

log = structlog.get_logger("overseer.operator")

# How many failed jobs a graph's message names before it says "and N more".
NAMED_FAILURES = 5
# A write of a graph costs the API server time in proportion to the graph's size (its spec
# is stored, validated and sent to every watcher again), about a second of CPU for ten
# thousand jobs. So a big graph's progress is written less often: one more second between
# writes per this many jobs.
JOBS_PER_SECOND_OF_INTERVAL = 1000


def graph_status(view: GraphView) -> dict[str, Any]:
    """The status a graph should have, given what the index has seen of its Jobs."""
    counts = view.counts()
    total = view.total or 0
    # Jobs created but not seen yet on the watch are Waiting, as every new Job is.
    counts.waiting += max(0, total - len(view.jobs))
    done = counts.finished + counts.failed + counts.aborted
    previous = view.status

    status: dict[str, Any] = {
        "total": total,
        "counts": counts.model_dump(),
        "progress": f"{counts.finished}/{total}",
        "observedGeneration": view.generation,
        "startedAt": previous.get("startedAt") or kube.now(),
    }
    if done < total or len(view.jobs) < total:
        status.update(phase=GraphPhase.RUNNING, reason="JobsRunning",
                      message=f"{counts.finished} of {total} jobs finished")
    elif counts.finished == total:
        status.update(phase=GraphPhase.FINISHED, reason="AllJobsFinished",
                      message=f"all {total} jobs finished")
    elif view.cancelled:
        why = "cancelled" if view.cancel else "ran past its activeDeadlineSeconds"
        status.update(
            phase=GraphPhase.FAILED, reason="Cancelled" if view.cancel else "DeadlineExceeded",
            message=f"{why}: {counts.aborted} aborted, {counts.failed} failed, "
            f"{counts.finished} finished",
        )
    else:
        failed = sorted(j.name for j in view.jobs.values() if j.phase is JobPhase.FAILED)
        named = ", ".join(failed[:NAMED_FAILURES])
        more = f" and {len(failed) - NAMED_FAILURES} more" if len(failed) > NAMED_FAILURES else ""
        status.update(
            phase=GraphPhase.FAILED, reason="JobsFailed",
            message=f"{counts.failed} of {total} jobs failed ({named}{more}), "
            f"{counts.aborted} aborted, {counts.finished} finished",
        )
    phase = status["phase"]
    # After a re-run the graph runs again: the end it had is no longer its end.
    status["finishedAt"] = (previous.get("finishedAt") or kube.now()) if phase.is_terminal else None
    if phase is GraphPhase.RUNNING and view.suspend:
        status.update(reason="Suspended", message=f"suspended; {status['message']}")

    status["conditions"] = conditions.merge(previous.get("conditions", []), [
        conditions.condition("Accepted", True, reason="Valid", message="all jobs created",
                             generation=view.generation),
        conditions.condition("Suspended", view.suspend and not phase.is_terminal,
                             reason="Suspended" if view.suspend else "NotSuspended",
                             generation=view.generation),
        conditions.condition("Complete", phase is GraphPhase.FINISHED, reason=status["reason"],
                             generation=view.generation),
        conditions.condition("Failed", phase is GraphPhase.FAILED, reason=status["reason"],
                             generation=view.generation),
    ])
    return status


def _may_end(view: GraphView) -> bool:
    """Whether the graph's phase may have changed: all its jobs ended, or it just started."""
    done = sum(view.by_phase[p] for p in (JobPhase.FINISHED, JobPhase.FAILED, JobPhase.ABORTED))
    return done >= (view.total or 0) or view.status.get("phase") != GraphPhase.RUNNING


def _essence(status: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two statuses different enough to be worth a write."""
    return (status.get("phase"), status.get("counts"), status.get("reason"),
            status.get("message"), status.get("observedGeneration"))


class StatusFlusher:
    """Writes the status of every graph whose Jobs changed, at most every ``interval``."""

    def __init__(self, index: Index, writer: Writer, events: EventPoster, *,
                 interval: float = 1.0) -> None:
        self.index = index
        self.writer = writer
        self.events = events
        self.interval = interval
        self._last_write: dict[tuple[str, str], float] = {}
        self._wake = asyncio.Event()

    def poke(self) -> None:
        """Ask for a flush soon, e.g. because a graph may have reached its end."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=0.2)
            except TimeoutError:
                pass
            self._wake.clear()
            for view in list(self.index.graphs.values()):
                # Not before the graph's Jobs were listed: the counts would be made up.
                if view.dirty and view.expanded and self.index.jobs_listed(view.namespace):
                    try:
                        await self._flush(view)
                    except Exception:  # noqa: BLE001 - one graph must not stop the others
                        log.exception("graph.status.failed", namespace=view.namespace,
                                      graph=view.name)

    async def _flush(self, view: GraphView) -> None:
        key = (view.namespace, view.name)
        interval = max(self.interval, (view.total or 0) / JOBS_PER_SECOND_OF_INTERVAL)
        due = time.monotonic() - self._last_write.get(key, 0) >= interval
        # Phase changes go out at once; mere progress waits for the interval.
        if not due and not _may_end(view):
            return
        status = graph_status(view)
        if _essence(status) == _essence(view.status):
            view.dirty = False
            return
        phase_changed = status["phase"] != view.status.get("phase")
        if not phase_changed and not due:
            return
        view.dirty = False
        try:
            await self.writer.run(self.writer.graphs.patch_status, view.namespace, view.name,
                                  status)
        except kube.NotFound:
            return
        except kube.KubeError as exc:
            view.dirty = True
            log.warning("graph.status.write_failed", namespace=view.namespace, graph=view.name,
                        error=str(exc))
            return
        self._last_write[key] = time.monotonic()
        if phase_changed:
            log.info("graph." + str(status["phase"]).lower(), namespace=view.namespace,
                     graph=view.name, progress=status["progress"])
            if status["phase"].is_terminal:
                self.events.post(
                    {"apiVersion": API_VERSION, "kind": "JobGraph", "metadata": {
                        "namespace": view.namespace, "name": view.name, "uid": view.uid}},
                    reason=f"Graph{status['phase']}", message=status["message"],
                    warning=status["phase"] is GraphPhase.FAILED)
        view.status = status
