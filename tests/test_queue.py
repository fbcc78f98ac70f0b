"""The runner's queue of Eligible jobs: which one it offers next."""

from __future__ import annotations

import random
from collections import Counter

from runner.queue import SPREAD, EligibleQueue


def body(name: str, *, priority: int = 0, created: str = "2026-01-01T00:00:00Z") -> dict:
    return {"metadata": {"name": name, "creationTimestamp": created, "resourceVersion": "1"},
            "spec": {"priority": priority}}


def test_highest_priority_first():
    queue = EligibleQueue()
    queue.put(body("new-low", created="2026-01-01T00:00:09Z"))
    queue.put(body("old-low", created="2026-01-01T00:00:01Z"))
    queue.put(body("high", priority=5, created="2026-01-01T00:00:05Z"))
    assert queue.take(0)["metadata"]["name"] == "high"
    assert {queue.take(0)["metadata"]["name"] for _ in range(2)} == {"old-low", "new-low"}
    assert queue.take(0) is None


def test_graph_priority_outranks_job_priority():
    queue = EligibleQueue()
    queue.put({**body("job-says-urgent", priority=100), "spec": {"priority": 100}})
    queue.put({**body("graph-says-urgent"), "spec": {"graphPriority": 1, "priority": -5}})
    assert queue.take(0)["metadata"]["name"] == "graph-says-urgent"


def test_the_oldest_jobs_are_drawn_from_first():
    queue = EligibleQueue(rng=random.Random(7))
    for i in range(SPREAD + 40):
        queue.put(body(f"old-{i}", created="2026-01-01T00:00:01Z"))
    for i in range(40):
        queue.put(body(f"new-{i}", created="2026-01-01T00:00:02Z"))
    # While the oldest second still has SPREAD jobs, only they are drawn.
    first = [queue.take(0)["metadata"]["name"] for _ in range(41)]
    assert all(name.startswith("old-") for name in first)


def test_equals_are_offered_at_random():
    picks = Counter()
    for seed in range(200):
        queue = EligibleQueue(rng=random.Random(seed))
        for i in range(4):
            queue.put(body(f"j{i}"))
        picks[queue.take(0)["metadata"]["name"]] += 1
    assert set(picks) == {"j0", "j1", "j2", "j3"}
    assert min(picks.values()) > 20


def test_a_job_that_left_eligible_is_not_offered():
    queue = EligibleQueue()
    queue.put(body("a"))
    queue.put(body("b"))
    queue.discard("a")
    assert queue.take(0)["metadata"]["name"] == "b"
    assert queue.take(0) is None
    assert len(queue) == 0


def test_an_update_replaces_the_job_instead_of_adding_it_twice():
    queue = EligibleQueue()
    queue.put(body("a"))
    queue.put(body("a", priority=3))
    assert len(queue) == 1
    assert queue.take(0)["spec"]["priority"] == 3
    assert queue.take(0) is None


def test_a_retry_is_offered_only_once_its_next_attempt_is_due():
    from datetime import datetime, timedelta, timezone
    soon = (datetime.now(timezone.utc) + timedelta(seconds=0.3)).isoformat()
    queue = EligibleQueue()
    delayed = body("later")
    delayed["status"] = {"nextAttemptAt": soon}
    queue.put(delayed)
    queue.put(body("now"))
    assert queue.take(0)["metadata"]["name"] == "now"
    assert queue.take(0) is None
    assert len(queue) == 1
    assert queue.take(2)["metadata"]["name"] == "later"


def test_depth_counts_jobs_per_type_including_delayed_ones():
    queue = EligibleQueue()
    for name, job_type in (("a", "x"), ("b", "x"), ("c", "y")):
        queue.put({**body(name), "spec": {"type": job_type}})
    assert queue.depth_by_type(["x", "y", "z"]) == {"x": 2, "y": 1, "z": 0}
