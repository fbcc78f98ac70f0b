"""Judging runners dead: only on silence the operator could have heard.

An outage of the API server cannot be produced on demand against the local control plane
without taking etcd with it, so this unit test stands in a writer whose calls fail.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

from controller.index import Index, JobView
from controller.liveness import Liveness
from overseer.api import JobPhase


class FakeWriter:
    api_client = None

    def __init__(self) -> None:
        self.answering = True
        # The Lease as the API server holds it, whatever the operator's watch brought.
        self.lease_version = "1"

    async def run(self, fn, *args, **kwargs):
        if not self.answering:
            raise ConnectionError("the API server does not answer")
        if fn.__name__ == "read_namespaced_lease":
            return SimpleNamespace(
                metadata=SimpleNamespace(resource_version=self.lease_version),
                spec=SimpleNamespace(lease_duration_seconds=1))
        return None


class FakeTransitions:
    def __init__(self) -> None:
        self.reclaimed: list[str] = []

    async def reclaim(self, graph, job, *, why: str) -> None:
        self.reclaimed.append(job.name)


def lease(renew: str, duration: int = 1) -> dict:
    return {"metadata": {"name": "r1", "namespace": "ns", "resourceVersion": "1"},
            "spec": {"holderIdentity": "r1", "renewTime": renew,
                     "leaseDurationSeconds": duration}}


def setup() -> tuple[Liveness, FakeWriter, FakeTransitions]:
    index = Index()
    graph = index.graph("ns", "g")
    graph.add(JobView(name="a", object_name="g-a", phase=JobPhase.STARTED,
                      resource_version="5", depends_on=(), runner="r1"))
    writer, transitions = FakeWriter(), FakeTransitions()
    liveness = Liveness(index, transitions, writer, orphan_grace=1)  # type: ignore[arg-type]
    liveness.observe(lease("t0"))
    return liveness, writer, transitions


def test_a_silent_runner_is_judged_dead_after_its_lease_duration():
    liveness, _, transitions = setup()
    time.sleep(1.1)
    asyncio.run(liveness.sweep())
    assert transitions.reclaimed == ["a"]


def test_no_runner_is_judged_while_the_api_server_does_not_answer_nor_just_after():
    liveness, writer, transitions = setup()
    time.sleep(1.1)
    writer.answering = False
    asyncio.run(liveness.sweep())
    assert transitions.reclaimed == []

    # Back: the runner gets a full duration to renew, and renews.
    writer.answering = True
    asyncio.run(liveness.sweep())
    assert transitions.reclaimed == []
    liveness.observe(lease("t1"))
    time.sleep(0.5)
    asyncio.run(liveness.sweep())
    assert transitions.reclaimed == []


def test_a_runner_whose_lease_was_renewed_unheard_is_alive():
    """The operator was paused, or its watch was reconnecting: the Lease itself says."""
    liveness, writer, transitions = setup()
    time.sleep(1.1)
    writer.lease_version = "2"  # renewed while the watch brought nothing
    asyncio.run(liveness.sweep())
    assert transitions.reclaimed == []
    assert liveness.runners[("ns", "r1")].resource_version == "2"

    # Heard now; silent from here on, it is judged after a full duration.
    time.sleep(1.1)
    asyncio.run(liveness.sweep())
    assert transitions.reclaimed == ["a"]
