"""Which runners are alive, and handing back the jobs of those that are not.

Each runner keeps a ``coordination.k8s.io`` Lease and renews it on a period. The operator
does not compare the Lease's ``renewTime`` with its own clock: it notes, on its own
monotonic clock, when it last saw the renewal time change, and judges the runner dead when
that is longer ago than the Lease's duration. Clocks that disagree between machines cannot
make a live runner look dead; the price is that after an operator restart every runner
gets a full lease duration before it can be judged.

Silence is only evidence while the operator can hear: before it judges anyone it checks
that the API server answers, and after a time when it did not (an outage, a restart of the
API server) every runner gets a full lease duration again to renew. And silence on the
watch is not yet the runner's: before a runner is judged dead its Lease is read, and a
Lease that changed after all (the operator was paused, or its watch was still
reconnecting) means a live runner.

A dead runner's Started jobs go back to Eligible (``Transitions.reclaim``) and its Lease is
deleted. If the runner was only paused and comes back, its Lease is gone, its claims carry
tokens that no job holds any more, and it drops the outcomes it computed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import structlog
from kubernetes import client
from kubernetes.client.rest import ApiException

from controller.index import Index
from controller.transitions import Transitions
from controller.writer import Writer
from overseer.api import RUNNER_TYPES_ANNOTATION, JobPhase

log = structlog.get_logger("overseer.operator")

RunnerKey = tuple[str, str]  # (namespace, runner identity)


@dataclass
class RunnerView:
    namespace: str
    lease: str
    holder: str
    duration: float
    last_seen: float  # time.monotonic() when the renewal was last seen to change
    types: frozenset[str]
    resource_version: str


class Liveness:
    def __init__(self, index: Index, transitions: Transitions, writer: Writer, *,
                 orphan_grace: float = 15.0) -> None:
        self.index = index
        self.transitions = transitions
        self.writer = writer
        self.orphan_grace = orphan_grace
        self.runners: dict[RunnerKey, RunnerView] = {}
        # Holders of Started jobs with no Lease at all, and since when that is so.
        self._orphaned_since: dict[RunnerKey, float] = {}
        # When the operator last found the API server not answering.
        self._deaf_at = float("-inf")

    def observe(self, body: dict[str, Any]) -> None:
        meta, spec = body["metadata"], body.get("spec") or {}
        holder = spec.get("holderIdentity") or meta["name"]
        key = (meta["namespace"], holder)
        known = self.runners.get(key)
        last_seen = time.monotonic()
        # The same Lease seen again (a relist) is no news; a renewal changes its version.
        if known is not None and known.resource_version == meta["resourceVersion"]:
            last_seen = known.last_seen
        types = (meta.get("annotations") or {}).get(RUNNER_TYPES_ANNOTATION, "")
        self.runners[key] = RunnerView(
            namespace=meta["namespace"], lease=meta["name"], holder=holder,
            duration=float(spec.get("leaseDurationSeconds") or 15), last_seen=last_seen, types=frozenset(t for t in types.split(",") if t),
            resource_version=meta["resourceVersion"],
        )
        self._orphaned_since.pop(key, None)

    def forget(self, body: dict[str, Any]) -> None:
        meta, spec = body["metadata"], body.get("spec") or {}
        self.runners.pop((meta["namespace"], spec.get("holderIdentity") or meta["name"]), None)

    def live_types(self, namespace: str) -> frozenset[str]:
        return frozenset().union(*(r.types for r in self.runners.values()
                                   if r.namespace == namespace))

    async def sweep(self) -> None:
        """Judge every runner once, and hand back the jobs of the dead ones."""
        now = time.monotonic()
        dead = {key: r for key, r in self.runners.items()
                if now - max(r.last_seen, self._deaf_at) > r.duration}
        orphans = {(g.namespace, j.runner) for g in self.index.graphs.values()
                   for j in g.in_phase(JobPhase.STARTED) if j.runner}
        orphans -= set(self.runners)
        if (dead or orphans) and not await self._can_hear(next(iter(dead or orphans))[0]):
            self._deaf_at = now
            log.warning("liveness.deaf", why="the API server does not answer; judging no "
                        "runner until it has answered for a full lease duration")
            return
        for key, runner in dead.items():
            if await self._renewed_unheard(runner):
                continue
            log.warning("runner.lost", namespace=runner.namespace, runner=runner.holder,
                        silent_for=round(now - runner.last_seen, 1))
            await self._reclaim(key, why=f"runner {runner.holder} stopped renewing its "
                                f"lease for over {runner.duration:g}s")
            await self._delete_lease(runner)
            self.runners.pop(key, None)

        # Started jobs whose runner has no Lease at all: it died before the operator (re)started.
        for key in orphans:
            since = self._orphaned_since.setdefault(key, now)
            if now - max(since, self._deaf_at) > self.orphan_grace:
                await self._reclaim(key, why=f"runner {key[1]} has no lease")
                self._orphaned_since.pop(key, None)
        for key in set(self._orphaned_since) - orphans:
            self._orphaned_since.pop(key, None)

    async def _renewed_unheard(self, runner: RunnerView) -> bool:
        """Whether the runner's Lease was renewed after all, unheard by the watch.

        Silence on the watch is not the runner's silence: the operator may have been paused,
        or its watch may still be reconnecting after an outage while the runners renewed
        all along. So the Lease itself is read before a runner is judged; if it changed, the
        runner is alive and seen now. If it cannot be read, nothing is judged this time.
        """
        api = client.CoordinationV1Api(self.writer.api_client)
        try:
            lease = await self.writer.run(api.read_namespaced_lease, runner.lease,
                                          runner.namespace, _request_timeout=5)
        except ApiException as exc:
            return exc.status != 404
        except Exception:  # noqa: BLE001 - the API server went away again: judge later
            return True
        if lease.metadata.resource_version == runner.resource_version:
            return False
        log.info("runner.heard_late", namespace=runner.namespace, runner=runner.holder)
        self.runners[(runner.namespace, runner.holder)] = replace(
            runner, last_seen=time.monotonic(), resource_version=lease.metadata.resource_version,
            duration=float(lease.spec.lease_duration_seconds or runner.duration))
        return True

    async def _can_hear(self, namespace: str) -> bool:
        """Whether the API server answers a read now: a cheap list of one Lease."""
        api = client.CoordinationV1Api(self.writer.api_client)
        try:
            await self.writer.run(api.list_namespaced_lease, namespace, limit=1,
                                  _request_timeout=5)
        except Exception:  # noqa: BLE001 - any failure means we cannot tell
            return False
        return True

    async def _reclaim(self, key: RunnerKey, *, why: str) -> None:
        namespace, holder = key
        for graph in [g for g in self.index.graphs.values() if g.namespace == namespace]:
            for job in [j for j in graph.in_phase(JobPhase.STARTED) if j.runner == holder]:
                await self.transitions.reclaim(graph, job, why=why)

    async def _delete_lease(self, runner: RunnerView) -> None:
        api = client.CoordinationV1Api(self.writer.api_client)
        options = client.V1DeleteOptions(
            preconditions=client.V1Preconditions(resource_version=runner.resource_version))
        try:
            await self.writer.run(api.delete_namespaced_lease, runner.lease, runner.namespace,
                                  body=options)
        except ApiException as exc:
            if exc.status not in (404, 409):
                log.warning("lease.delete_failed", lease=runner.lease, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - the API server went away again
            log.warning("lease.delete_failed", lease=runner.lease, error=str(exc))
