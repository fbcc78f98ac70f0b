"""Following graphs through a broken connection (``overseer.cli.follow``).

The end-to-end tests of ``submit --follow`` are in ``test_cli``; these cover what the real
API server will not do on demand: a watch cut mid-stream, and a server that cannot be
reached for a while, or for good.
"""

from __future__ import annotations

import queue
import threading
from types import SimpleNamespace
from typing import Any

from overseer import kube
from overseer.cli import follow


def graph(phase: str, version: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": "g", "resourceVersion": version},
            "status": {"phase": phase}}


class Stopped(BaseException):
    """Ends a follower's thread: the test is over (it would otherwise follow for ever)."""


class FlakyGraphs:
    """A watch that breaks after one event, then a server away for ``lists_failing`` lists."""

    def __init__(self, lists_failing: int) -> None:
        self.lists_failing = lists_failing
        self.watched_from: list[str] = []
        self.lists = 0
        self.idle = threading.Event()

    def watch(self, namespace, *, resource_version, timeout_seconds, **selectors):
        self.watched_from.append(resource_version)
        if len(self.watched_from) == 1:
            yield {"type": "MODIFIED", "object": graph("Running", "5")}
            raise kube.Unavailable(0, "Unavailable", "Response ended prematurely")
        yield {"type": "MODIFIED", "object": graph("Finished", "9")}
        self.idle.wait()
        raise Stopped

    def list(self, namespace, **selectors):
        if self.idle.is_set():
            raise Stopped
        self.lists += 1
        if self.lists <= self.lists_failing:
            raise kube.Unavailable(503, "Service Unavailable", "the server is restarting")
        return {"metadata": {"resourceVersion": "8"}, "items": [graph("Running", "8")]}


def followed(graphs: FlakyGraphs, until: int) -> list[Any]:
    watches = follow._Watches(SimpleNamespace(graphs=graphs))
    watches.start("ns", ["g"], "1")
    seen: list[Any] = []
    try:
        while len(seen) < until:
            _, item = watches.events.get(timeout=30)
            seen.append(item if isinstance(item, BaseException) else (
                item["object"]["status"]["phase"], item["object"]["metadata"]["resourceVersion"]))
            if isinstance(item, BaseException):
                break
    except queue.Empty:
        pass
    finally:
        graphs.idle.set()
    # The thread ends, handing over why, unless it already has (it gave up).
    if not (seen and isinstance(seen[-1], BaseException)):
        while not isinstance(watches.events.get(timeout=30)[1], Stopped):
            pass
    return seen


def test_a_cut_watch_is_followed_by_a_fresh_read_once_the_server_answers_again():
    graphs = FlakyGraphs(lists_failing=2)

    seen = followed(graphs, until=3)

    assert seen == [("Running", "5"), ("Running", "8"), ("Finished", "9")]
    assert graphs.lists == 3
    assert graphs.watched_from == ["1", "8"]


def test_following_gives_up_when_the_server_stays_away(monkeypatch):
    monkeypatch.setattr(follow, "UNREACHABLE_SECONDS", 1.0)
    graphs = FlakyGraphs(lists_failing=100)

    seen = followed(graphs, until=2)

    assert seen[0] == ("Running", "5")
    assert isinstance(seen[1], kube.Unavailable)
    assert seen[1].message == "the server is restarting"
    assert 2 <= graphs.lists <= 3
