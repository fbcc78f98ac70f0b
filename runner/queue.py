"""A runner's view of the Eligible jobs it could claim, kept current by a watch.

The runner lists and then watches the Jobs of its namespace with ``status.phase=Eligible``
(a selectable field, so the API server filters) and the types it has handlers for. A job
that stops being Eligible, because some runner claimed it, leaves the watch as a DELETED
event and the queue with it.

The order of picking: highest priority first (the graph's, then the job's); among equal
priorities the oldest first, to the second that creation timestamps resolve; and among
the oldest ``SPREAD`` of those, one at random, so that runners spread out over the work
instead of all racing for the same job. (Drawing only from the oldest second's jobs made
runners collide as that second's last few jobs were left.) A retry whose
``status.nextAttemptAt`` lies ahead is held back until then.
"""

from __future__ import annotations

import heapq
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from overseer import kube, listwatch
from overseer.api import TYPE_LABEL, JobPhase

Key = tuple[int, int, str]  # (-graph priority, -job priority, creation timestamp)

# How many of the oldest jobs of the top priority a runner draws from at random.
SPREAD = 64


@dataclass
class _Bucket:
    names: list[str]
    where: dict[str, int]

    def add(self, name: str) -> None:
        if name not in self.where:
            self.where[name] = len(self.names)
            self.names.append(name)

    def discard(self, name: str) -> None:
        at = self.where.pop(name, None)
        if at is None:
            return
        last = self.names.pop()
        if last != name:
            self.names[at] = last
            self.where[last] = at


def _not_before(body: dict[str, Any]) -> float:
    """When a job may be claimed, as a Unix time: its status.nextAttemptAt, or now."""
    value = (body.get("status") or {}).get("nextAttemptAt")
    return kube.parse_time(value).timestamp() if value else 0.0


class EligibleQueue:
    """Eligible jobs by priority; thread-safe; fed by ``watch_forever`` in its own thread."""

    def __init__(self, *, rng: random.Random | None = None) -> None:
        self._bodies: dict[str, dict[str, Any]] = {}
        self._keys: dict[str, Key] = {}
        self._buckets: dict[Key, _Bucket] = {}
        self._heap: list[Key] = []
        self._delayed: list[tuple[float, str]] = []
        self._delayed_bodies: dict[str, dict[str, Any]] = {}
        self._changed = threading.Condition()
        self._rng = rng or random.Random()

    def __len__(self) -> int:
        return len(self._bodies) + len(self._delayed_bodies)

    @staticmethod
    def _key(body: dict[str, Any]) -> Key:
        spec = body.get("spec", {})
        return (-int(spec.get("graphPriority") or 0), -int(spec.get("priority") or 0),
                body["metadata"].get("creationTimestamp", ""))

    def put(self, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        not_before = _not_before(body)
        with self._changed:
            self._discard(name)
            if not_before > time.time():
                # A retry that must wait for its backoff: offered only once it is due.
                self._delayed_bodies[name] = body
                heapq.heappush(self._delayed, (not_before, name))
                self._changed.notify()
                return
            self._enqueue(name, body)
            self._changed.notify()

    def _enqueue(self, name: str, body: dict[str, Any]) -> None:
        key = self._key(body)
        self._bodies[name] = body
        self._keys[name] = key
        if key not in self._buckets:
            self._buckets[key] = _Bucket([], {})
            heapq.heappush(self._heap, key)
        self._buckets[key].add(name)

    def depth_by_type(self, types: Iterable[str]) -> dict[str, int]:
        """How many jobs of each of ``types`` wait in the queue, delayed retries included."""
        depth = dict.fromkeys(types, 0)
        with self._changed:
            for body in [*self._bodies.values(), *self._delayed_bodies.values()]:
                job_type = body.get("spec", {}).get("type")
                if job_type in depth:
                    depth[job_type] += 1
        return depth

    def discard(self, name: str) -> None:
        with self._changed:
            self._discard(name)

    def _discard(self, name: str) -> None:
        self._delayed_bodies.pop(name, None)
        key = self._keys.pop(name, None)
        self._bodies.pop(name, None)
        if key is not None:
            self._buckets[key].discard(name)

    def replace(self, bodies: Iterable[dict[str, Any]]) -> None:
        """Make the queue hold exactly ``bodies``, as after a fresh list."""
        with self._changed:
            self._bodies.clear()
            self._keys.clear()
            self._buckets.clear()
            self._heap.clear()
            self._delayed.clear()
            self._delayed_bodies.clear()
        for body in bodies:
            self.put(body)

    def take(self, timeout: float) -> dict[str, Any] | None:
        """Remove and return the job to claim next, waiting up to ``timeout`` for one."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                self._release_due()
                name = self._pick()
                if name is not None:
                    body = self._bodies[name]
                    self._discard(name)
                    return body
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                if self._delayed:
                    remaining = min(remaining, max(0.0, self._delayed[0][0] - time.time()))
                self._changed.wait(remaining)

    def _pick(self) -> str | None:
        """A job of the top priority, at random among its ``SPREAD`` oldest."""
        while self._heap and not self._buckets[self._heap[0]].names:
            del self._buckets[heapq.heappop(self._heap)]
        if not self._heap:
            return None
        top = self._heap[0][:2]
        pool: list[str] = []
        # Buckets are few (one per priority and second), so looking at the oldest of them
        # in order is cheap.
        for key in heapq.nsmallest(SPREAD, self._heap):
            if key[:2] != top or len(pool) >= SPREAD:
                break
            pool.extend(self._buckets[key].names[:SPREAD - len(pool)])
        return self._rng.choice(pool)

    def _release_due(self) -> None:
        now = time.time()
        while self._delayed and self._delayed[0][0] <= now:
            _, name = heapq.heappop(self._delayed)
            body = self._delayed_bodies.pop(name, None)
            if body is not None and _not_before(body) <= now:
                self._enqueue(name, body)

    def watch_forever(
        self, jobs: kube.Resource, namespace: str, types: list[str], stop: threading.Event
    ) -> None:
        """List and watch the Eligible jobs of ``types`` until ``stop`` is set."""
        listwatch.list_and_watch(
            jobs, namespace, stop=stop, name="eligible",
            on_list=lambda items, _version: self.replace(items),
            on_event=self._apply,
            field_selector=f"status.phase={JobPhase.ELIGIBLE}",
            label_selector=f"{TYPE_LABEL} in ({','.join(sorted(types))})",
        )

    def _apply(self, kind: str, body: dict[str, Any]) -> None:
        if kind == "DELETED":
            self.discard(body["metadata"]["name"])
        else:
            self.put(body)
