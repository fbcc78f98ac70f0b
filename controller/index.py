"""The operator's in-memory view of every graph and its Jobs, fed by the watch streams.

The API server is the truth; this index is what the operator has seen of it, and it is only
ever changed from the event loop, so it needs no locks. After a restart the initial listing
of the watches rebuilds it completely: nothing in it has to survive the process.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from overseer.api import GRAPH_LABEL, JobCounts, JobPhase

GraphKey = tuple[str, str]  # (namespace, graph name)


@dataclass(slots=True)
class JobView:
    """What the operator knows of one Job."""

    name: str
    object_name: str
    phase: JobPhase
    resource_version: str
    depends_on: tuple[str, ...]
    type: str = ""
    uid: str | None = None
    attempt: int = 0
    runner: str | None = None
    claim: str | None = None
    reason: str | None = None
    cancel_requested: bool = False
    reclaims: int = 0
    eligible_at: str | None = None
    owner: str | None = None  # uid of the JobGraph that owns the Job


    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> JobView:
        spec, status = body.get("spec", {}), body.get("status") or {}
        return cls(
            name=spec["name"],
            object_name=body["metadata"]["name"],
            phase=JobPhase(status.get("phase", JobPhase.WAITING)),
            resource_version=body["metadata"]["resourceVersion"],
            depends_on=tuple(spec.get("dependsOn", ())),
            type=spec.get("type", ""),
            uid=body["metadata"].get("uid"),
            attempt=status.get("attempt", 0),
            runner=status.get("runner"),
            claim=status.get("claim"),
            reason=status.get("reason"),
            cancel_requested=bool(status.get("cancelRequested")),
            reclaims=status.get("reclaims") or 0,
            eligible_at=status.get("eligibleAt"),
            owner=next((ref.get("uid") for ref in body["metadata"].get("ownerReferences", ())
                        if ref.get("kind") == "JobGraph"), None),
        )


@dataclass
class GraphView:
    """What the operator knows of one graph: its size, its Jobs, and who depends on whom."""

    namespace: str
    name: str
    uid: str | None = None
    generation: int | None = None
    total: int | None = None
    suspend: bool = False
    cancel: bool = False
    parallelism: int | None = None
    active_deadline_seconds: int | None = None
    ttl_seconds_after_finished: int | None = None
    # Set once this operator process has made sure every Job of the graph exists; until
    # then the counts are partial and the status is not written from them.
    expanded: bool = False
    # The graph's status as last read or written, to write only what changed.
    status: dict[str, Any] = field(default_factory=dict)
    jobs: dict[str, JobView] = field(default_factory=dict)
    dependents: dict[str, set[str]] = field(default_factory=dict)
    # Jobs per phase, kept as jobs come and go, so that counting costs nothing on a graph
    # of ten thousand. A JobView is replaced on news, never changed in place.
    by_phase: Counter[JobPhase] = field(default_factory=Counter)
    dirty: bool = False
    # The graph has a deletionTimestamp: its Jobs are going with it.
    deleting: bool = False
    # Set once the graph itself has been seen and its jobs decided on; until then its Jobs
    # are only indexed (see controller.jobwatch).
    decided: bool = False
    # While a re-run resets the graph's jobs, no decision is taken on half-reset news.
    rerunning: bool = False
    # Set by housekeeping once the graph ran past spec.activeDeadlineSeconds.
    deadline_exceeded: bool = False

    @property
    def cancelled(self) -> bool:
        return self.cancel or self.deadline_exceeded

    def add(self, job: JobView) -> None:
        known = self.jobs.get(job.name)
        if known is None:
            for dep in job.depends_on:
                self.dependents.setdefault(dep, set()).add(job.name)
        else:
            self.by_phase[known.phase] -= 1
        self.jobs[job.name] = job
        self.by_phase[job.phase] += 1
        self.dirty = True

    def remove(self, job_name: str) -> None:
        job = self.jobs.pop(job_name, None)
        if job is not None:
            for dep in job.depends_on:
                self.dependents.get(dep, set()).discard(job_name)
            self.by_phase[job.phase] -= 1
            self.dirty = True

    def phase_of(self, job_name: str) -> JobPhase | None:
        job = self.jobs.get(job_name)
        return job.phase if job else None

    def dependency_phases(self, job: JobView) -> Iterator[JobPhase | None]:
        return (self.phase_of(dep) for dep in job.depends_on)

    def in_phase(self, phase: JobPhase) -> Iterator[JobView]:
        """The jobs in ``phase``; nothing to walk (a finished graph) costs nothing."""
        if self.by_phase[phase]:
            yield from (job for job in self.jobs.values() if job.phase is phase)

    def running(self) -> int:
        """Jobs that count against the graph's parallelism: Started, or Eligible to start."""
        return self.by_phase[JobPhase.STARTED] + self.by_phase[JobPhase.ELIGIBLE]

    def counts(self) -> JobCounts:
        return JobCounts(**{phase.value.lower(): self.by_phase[phase] for phase in JobPhase})


def is_newer(candidate: str, current: str) -> bool:
    """Whether resourceVersion ``candidate`` is newer than ``current``.

    The API conventions call resourceVersions opaque, but every API server backed by etcd
    hands out its revision, an increasing integer. The index needs the order to keep a late
    watch event from undoing what the operator's own write response already told it; if a
    server ever hands out something else, every event counts as newer, which is safe.
    """
    if candidate.isdigit() and current.isdigit():
        return int(candidate) > int(current)
    return True


class Index:
    def __init__(self) -> None:
        self.graphs: dict[GraphKey, GraphView] = {}
        # Namespaces whose Jobs have been listed once (None: every namespace at once).
        self.listed: set[str | None] = set()

    def jobs_listed(self, namespace: str) -> bool:
        """Whether every Job of ``namespace`` has been seen at least once.

        Until the first listing the index holds only the Jobs that writes and events
        happened to bring, so counts taken from it (a graph's status) would be wrong: a
        Finished graph would look like one whose jobs are all Waiting.
        """
        return namespace in self.listed or None in self.listed

    def graph(self, namespace: str, name: str) -> GraphView:
        key = (namespace, name)
        if key not in self.graphs:
            self.graphs[key] = GraphView(namespace=namespace, name=name)
        return self.graphs[key]

    def observe_graph(self, body: Mapping[str, Any]) -> GraphView:
        meta = body["metadata"]
        view = self.graph(meta["namespace"], meta["name"])
        if view.uid not in (None, meta["uid"]):
            # Deleted and created again under the same name: nothing carries over.
            view = self.graphs[(meta["namespace"], meta["name"])] = GraphView(
                namespace=meta["namespace"], name=meta["name"]
            )
        if view.uid is None:
            # Jobs seen before their graph may be leftovers of an earlier graph of this name.
            for stale in [j.name for j in view.jobs.values() if j.owner not in (None, meta["uid"])]:
                view.remove(stale)
        view.uid = meta["uid"]
        view.deleting = bool(meta.get("deletionTimestamp"))
        view.generation = meta.get("generation")
        spec = body.get("spec", {})
        view.total = len(spec.get("jobs", []))
        view.suspend = bool(spec.get("suspend"))
        view.cancel = bool(spec.get("cancel"))
        view.parallelism = spec.get("parallelism")
        view.active_deadline_seconds = spec.get("activeDeadlineSeconds")
        view.ttl_seconds_after_finished = spec.get("ttlSecondsAfterFinished")
        if not view.status:
            view.status = dict(body.get("status") or {})
        return view

    def forget_graph(self, namespace: str, name: str) -> None:
        self.graphs.pop((namespace, name), None)

    def observe_job(self, body: Mapping[str, Any]) -> tuple[GraphView, JobView] | None:
        """Record a Job's state; None if it is not a Job of any graph, or the news is stale."""
        graph_name = body.get("metadata", {}).get("labels", {}).get(GRAPH_LABEL)
        if not graph_name or "name" not in body.get("spec", {}):
            return None
        graph = self.graph(body["metadata"]["namespace"], graph_name)
        job = JobView.from_body(body)
        if graph.uid is not None and job.owner not in (None, graph.uid):
            return None  # a Job of an earlier graph of this name, about to be collected
        known = graph.jobs.get(job.name)
        if known is not None and not is_newer(job.resource_version, known.resource_version):
            return graph, known
        graph.add(job)
        return graph, job

    def forget_job(self, body: Mapping[str, Any]) -> GraphView | None:
        graph_name = body.get("metadata", {}).get("labels", {}).get(GRAPH_LABEL)
        key = (body["metadata"]["namespace"], graph_name)
        graph = self.graphs.get(key)
        if graph is not None and "name" in body.get("spec", {}):
            graph.remove(body["spec"]["name"])
        return graph
