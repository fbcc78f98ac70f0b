"""The operator's writes to Jobs, and the decisions behind them.

Besides creating Jobs, the operator moves them along in these ways only:

* Waiting -> Eligible, once every dependency is Finished (and the graph is neither
  suspended nor at its parallelism);
* Waiting or Eligible -> Aborted, when a dependency is Failed or Aborted, or the graph is
  cancelled;
* Eligible -> Waiting, while the graph is suspended, so that no runner claims it;
* Started: a ``cancelRequested`` flag when the graph is cancelled, for the runner holding
  the job to act on; and Started -> Eligible when that runner is gone (``liveness``);
* Failed or Aborted -> Waiting, when the user asks for a re-run.

Each is a status patch preconditioned on the resourceVersion the decision was made on, so
a decision taken on stale news fails with 409 instead of overwriting what a runner wrote.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from controller import graph as rules
from controller import metrics
from controller.events import EventPoster, job_ref
from controller.index import GraphView, Index, JobView
from controller.writer import Writer
from overseer import conditions, kube
from overseer.api import JobPhase

log = structlog.get_logger("overseer.operator")

# A job whose runner was lost this many times fails: its handler likely kills runners.
MAX_RECLAIMS = 3


def _aborted(reason: str, message: str) -> dict[str, Any]:
    return conditions.ended_status(JobPhase.ABORTED, reason=reason, message=message)


def eligible() -> dict[str, Any]:
    """The status patch that makes a Waiting job Eligible."""
    return {"phase": JobPhase.ELIGIBLE, "eligibleAt": kube.now(), "reason": None, "message": None}


class Transitions:
    """Decides and writes the operator's transitions of the Jobs of a graph."""

    def __init__(self, index: Index, writer: Writer, events: EventPoster) -> None:
        self.index = index
        self.writer = writer
        self.events = events
        # Jobs with a write of ours in flight; a second decision on the same news would only
        # produce a 409 or a redundant write.
        self._in_flight: set[tuple[str, str]] = set()
        self._promoting: dict[tuple[str, str], int] = {}

    # --- deciding

    async def settle(self, graph: GraphView, job: JobView) -> None:
        """Act on news about ``job``: it, or the jobs waiting for it, may move on now."""
        if graph.rerunning:
            return
        if graph.parallelism and job.phase.is_terminal:
            # A slot came free: any ready job of the graph may take it. (A scan of the whole
            # graph per ended job; parallelism is for graphs that must go slowly anyway.)
            await self.settle_graph(graph)
            return
        dependents = (graph.jobs[d] for d in graph.dependents.get(job.name, ()) if d in graph.jobs)
        await self._settle_all(graph, [job, *dependents])

    async def settle_graph(self, graph: GraphView) -> None:
        """Decide again on every job of the graph, e.g. after its spec changed."""
        if not graph.rerunning:
            await self._settle_all(graph, sorted(graph.jobs.values(), key=lambda j: j.name))

    async def _settle_all(self, graph: GraphView, candidates: list[JobView]) -> None:
        key = (graph.namespace, graph.name)
        budget = None
        if graph.parallelism:
            budget = graph.parallelism - graph.running() - self._promoting.get(key, 0)
        writes = []
        for job in candidates:
            status = self.decide(graph, job)
            if status is None:
                continue
            promoting = status.get("phase") == JobPhase.ELIGIBLE and budget is not None
            if promoting:
                if budget <= 0:
                    continue
                budget -= 1
                # Counted now, not when the write starts: another decision may be taken
                # before then, and must see this slot as taken.
                self._promoting[key] = self._promoting.get(key, 0) + 1
            writes.append(self._write(graph, job, status, promoting=promoting))
        if writes:
            await asyncio.gather(*writes)

    def decide(self, graph: GraphView, job: JobView) -> dict[str, Any] | None:
        """The status patch the operator should write for ``job`` now, or None."""
        if graph.cancelled:
            if graph.cancel:
                reason, why = "Cancelled", "its graph was cancelled"
            else:
                reason, why = "DeadlineExceeded", "its graph ran past activeDeadlineSeconds"
            if job.phase in (JobPhase.WAITING, JobPhase.ELIGIBLE):
                return _aborted(reason, f"not run because {why}")
            if job.phase is JobPhase.STARTED and not job.cancel_requested:
                return {"cancelRequested": True, "message": f"cancelling: {why}"}
            return None

        phases = list(graph.dependency_phases(job))
        if rules.is_doomed(job.phase, phases):
            failed = sorted(d for d in job.depends_on
                            if graph.phase_of(d) in (JobPhase.FAILED, JobPhase.ABORTED))
            verb = "is" if len(failed) == 1 else "are"
            states = sorted({str(graph.phase_of(d)) for d in failed})
            return _aborted("DependencyFailed",
                            f"not run because its dependency {', '.join(failed)} {verb} "
                            f"{' or '.join(states)}")
        if graph.suspend:
            if job.phase is JobPhase.ELIGIBLE:
                return {"phase": JobPhase.WAITING, "reason": "Suspended",
                        "message": "its graph is suspended"}
            return None
        if rules.is_eligible(job.phase, phases):
            return eligible()
        return None

    # --- writing

    async def reclaim(self, graph: GraphView, job: JobView, *, why: str) -> None:
        """Hand back a Started job whose runner is gone: Eligible again, or Failed."""
        reclaims = job.reclaims + 1
        if graph.cancelled:
            status = _aborted("Cancelled", f"{why}, and its graph was cancelled")
        elif reclaims > MAX_RECLAIMS:
            status = conditions.ended_status(
                JobPhase.FAILED, reason="RunnerLost", reclaims=reclaims,
                message=f"{why}; its runner was lost {reclaims} times, so the handler may be "
                "what kills it")
        else:
            status = {"phase": JobPhase.ELIGIBLE, "reason": "RunnerLost", "message": why,
                      "reclaims": reclaims, "eligibleAt": kube.now(), "nextAttemptAt": None}
        if await self._write(graph, job, status):
            self.events.post(job_ref(graph.namespace, job.object_name, job.uid),
                             reason="JobReclaimed", message=f"{job.name}: {why}", warning=True)

    async def reset_for_rerun(self, graph: GraphView) -> int:
        """Failed and Aborted jobs back to Waiting, all before any is decided on again."""
        graph.rerunning = True
        try:
            redo = [j for j in graph.jobs.values()
                    if j.phase in (JobPhase.FAILED, JobPhase.ABORTED)]
            reset = {"phase": JobPhase.WAITING, "reason": "Rerun", "message": "re-run requested",
                     "attempt": 0, "reclaims": None, "error": None, "result": None,
                     "claim": None, "cancelRequested": None, "nextAttemptAt": None,
                     "startedAt": None, "finishedAt": None, "conditions": None}
            await asyncio.gather(*(self._write(graph, j, dict(reset), settle=False)
                                   for j in redo))
            return len(redo)
        finally:
            graph.rerunning = False

    async def _write(self, graph: GraphView, job: JobView, status: dict[str, Any], *,
                     settle: bool = True, promoting: bool = False) -> bool:
        """Write ``status``; ``promoting``: it takes a slot of the graph's parallelism,
        reserved by the caller in ``_promoting`` and given back here."""
        key = (graph.namespace, job.object_name)
        graph_key = (graph.namespace, graph.name)
        if key in self._in_flight:
            if promoting:
                self._promoting[graph_key] -= 1
            return False
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
            return False
        except kube.KubeError as exc:
            # The API server is away or refused for another reason. Nothing was written;
            # housekeeping's periodic resync decides on this job again.
            bound.warning("job.transition.failed", phase=status.get("phase"), error=str(exc))
            return False
        finally:
            self._in_flight.discard(key)
            if promoting:
                self._promoting[graph_key] -= 1

        if body is None:
            # Someone wrote the Job since we saw it. If that news reached the index while
            # this write was in flight, decide again on it now; otherwise the watch brings
            # it and the decision is taken then.
            bound.debug("job.transition.conflict", phase=status.get("phase"))
            metrics.conflicts.inc()
            current = graph.jobs.get(job.name)
            if settle and current is not None and current.resource_version != job.resource_version:
                await self.settle(graph, current)
            return False

        bound.info("job." + str(status.get("phase", "updated")).lower(),
                   reason=status.get("reason"))
        metrics.transitions.labels(str(status.get("phase", "Started")),
                                   str(status.get("reason") or "")).inc()
        observed = self.index.observe_job(body)
        if settle and observed is not None:
            await self.settle(*observed)
        return True
