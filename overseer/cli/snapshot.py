"""One graph as the commands show it: its object, and its jobs in the order the graph lists them.

The graph's ``spec.jobs`` gives the order and the dependencies; each Job object, when it
exists, gives the phase and the rest of the status. A job whose Job does not exist yet
(the operator has not expanded the graph, or rejected it) is still shown, without a phase.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from overseer import kube
from overseer.api import GRAPH_LABEL
from overseer.cli.errors import CliError
from overseer.cli.session import Session
from overseer.render import Node


@dataclass(frozen=True)
class JobRow:
    name: str
    type: str
    depends_on: tuple[str, ...]
    status: dict[str, Any]
    exists: bool

    @property
    def phase(self) -> str | None:
        if not self.exists:
            return None
        return self.status.get("phase") or "Waiting"

    def duration(self, *, now: datetime) -> float | None:
        """Seconds from the current attempt's start to its end, or to ``now`` if running."""
        started = self.status.get("startedAt")
        if not started:
            return None
        finished = self.status.get("finishedAt")
        end = kube.parse_time(finished) if finished else now
        return max(0.0, (end - kube.parse_time(started)).total_seconds())


@dataclass(frozen=True)
class GraphSnapshot:
    body: dict[str, Any]
    jobs: list[JobRow]

    @property
    def name(self) -> str:
        return self.body["metadata"]["name"]

    def nodes(self) -> list[Node]:
        return [Node(j.name, j.phase, j.depends_on) for j in self.jobs]


def error_text(status: dict[str, Any]) -> str:
    """What made a job fail, as "Type: message", from its status."""
    error = status.get("error") or {}
    if error.get("type"):
        return f"{error['type']}: {error['message']}" if error.get("message") else error["type"]
    return status.get("message") or status.get("reason") or "no error recorded"


def get_graph(session: Session, name: str) -> dict[str, Any]:
    """The JobGraph ``name``; a ``CliError`` naming it and the namespace if there is none."""
    try:
        return session.graphs.get(session.namespace, name)
    except kube.NotFound:
        raise CliError(
            f'jobgraph "{name}" not found in namespace "{session.namespace}"') from None


def snapshot(session: Session, name: str) -> GraphSnapshot:
    body = get_graph(session, name)
    items = session.jobs.list(session.namespace, label_selector=f"{GRAPH_LABEL}={name}")["items"]
    # Only Jobs this graph object owns: a graph deleted and created again under the same
    # name may briefly leave the old one's Jobs behind.
    uid = body["metadata"]["uid"]
    by_name = {
        item["spec"]["name"]: item for item in items
        if any(ref.get("uid") == uid for ref in item["metadata"].get("ownerReferences", []))
    }
    rows = []
    for entry in (body.get("spec") or {}).get("jobs") or []:
        job = by_name.get(entry.get("name"))
        rows.append(JobRow(
            name=entry.get("name", ""),
            type=entry.get("type", ""),
            depends_on=tuple(entry.get("dependsOn") or ()),
            status=(job or {}).get("status") or {},
            exists=job is not None,
        ))
    return GraphSnapshot(body=body, jobs=rows)


def utcnow() -> datetime:
    return datetime.now(UTC)
