"""How the operator follows Jobs outside kopf: the list-and-watch loop and what a listing means.

The end-to-end tests drive this code against the real API server (every operator of the
suite follows its Jobs this way, with exact namespaces and with patterns). These unit tests
cover what the real server will not do on demand: expire a watch's resourceVersion (410),
or have Jobs vanish while no watch was open.
"""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace
from typing import Any

from controller.index import Index
from controller.jobwatch import ALL, JobWatch
from controller.status import StatusFlusher
from overseer import kube, listwatch
from overseer.api import GRAPH_LABEL, JobPhase


def job(name: str, rv: str, phase: str = "Waiting", namespace: str = "ns",
        graph: str = "g") -> dict[str, Any]:
    return {"metadata": {"name": f"{graph}-{name}", "namespace": namespace,
                         "resourceVersion": rv, "labels": {GRAPH_LABEL: graph}},
            "spec": {"graph": graph, "name": name, "type": "noop"},
            "status": {"phase": phase}}


class FakeJobs:
    """A Resource whose first watch has expired, as after a long outage."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.lists = 0
        self.watches: list[str] = []

    def list(self, namespace, **selectors):
        self.lists += 1
        items = [job("a", "5")] if self.lists == 1 else [job("b", "9")]
        return {"metadata": {"resourceVersion": "5" if self.lists == 1 else "9"}, "items": items}

    def watch(self, namespace, *, resource_version, timeout_seconds, **selectors):
        self.watches.append(resource_version)
        if len(self.watches) == 1:
            raise kube.Gone(410, "Expired", "too old resource version")
        yield {"type": "MODIFIED", "object": job("b", "10", "Eligible")}
        yield {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "11"}}}
        yield {"type": "DELETED", "object": job("b", "12")}
        self.stop.set()
        yield {"type": "ADDED", "object": job("c", "13")}


def test_an_expired_watch_is_followed_by_a_fresh_listing_and_a_watch_from_it():
    stop = threading.Event()
    jobs = FakeJobs(stop)
    seen: list[tuple[str, ...]] = []
    listwatch.list_and_watch(
        jobs, "ns", stop=stop, name="test",
        on_list=lambda items, rv: seen.append(("list", rv, *(i["spec"]["name"] for i in items))),
        on_event=lambda kind, body: seen.append((kind, body["metadata"]["resourceVersion"])),
    )
    assert jobs.watches == ["5", "9"]
    # A bookmark only moves the version on; the loop ends at the first event after stop.
    assert seen == [("list", "5", "a"), ("list", "9", "b"), ("MODIFIED", "10"),
                    ("DELETED", "12"), ("ADDED", "13")]


NO_WRITER = SimpleNamespace(jobs=None, graphs=None)


class FakeTransitions:
    def __init__(self) -> None:
        self.settled: list[tuple[str, str]] = []

    async def settle(self, graph, job) -> None:
        self.settled.append((job.name, str(job.phase)))


class FakeFlusher:
    def __init__(self) -> None:
        self.pokes = 0

    def poke(self) -> None:
        self.pokes += 1


class FakeEvents:
    def __init__(self) -> None:
        self.posted: list[tuple[str, str]] = []

    def post(self, body, *, reason: str, message: str, warning: bool = False) -> None:
        self.posted.append((reason, message))


def run_on_loop(test, *, known=("one", "two", "ns")) -> Any:
    async def main():
        index, transitions = Index(), FakeTransitions()
        for namespace in known:  # graphs the operator has seen: their jobs are decided on
            index.graph(namespace, "g").decided = True
        flusher, events = FakeFlusher(), FakeEvents()
        watch = JobWatch(NO_WRITER, index, transitions, flusher, events)
        result = test(watch, index)
        await asyncio.sleep(0)  # let the settle tasks run
        return result, index, transitions, flusher, events
    return asyncio.run(main())


def test_a_listing_drops_known_jobs_it_no_longer_holds_but_not_newer_ones():
    def scenario(watch, index):
        for body in (job("a", "3"), job("b", "4"), job("c", "20")):
            watch._changed("ADDED", body)
        # Listed at version 10: b is gone; c was seen at 20, after the listing was taken.
        watch._listed("ns", [job("a", "3")], "10")

    _, index, transitions, _, _ = run_on_loop(scenario)
    assert sorted(index.graph("ns", "g").jobs) == ["a", "c"]
    assert sorted(transitions.settled) == [("a", "Waiting"), ("a", "Waiting"), ("b", "Waiting"),
                                           ("c", "Waiting")]


def test_jobs_of_a_graph_not_seen_yet_are_indexed_but_not_decided_on():
    def scenario(watch, index):
        watch._changed(None, job("a", "3", namespace="later"))
        watch._changed("MODIFIED", job("b", "4", JobPhase.FINISHED, namespace="later"))

    _, index, transitions, flusher, _ = run_on_loop(scenario, known=())
    assert sorted(index.graph("later", "g").jobs) == ["a", "b"]
    assert transitions.settled == []
    assert flusher.pokes == 0


def test_a_listing_of_one_namespace_leaves_the_jobs_of_another_alone():
    def scenario(watch, index):
        watch._changed("ADDED", job("a", "3", namespace="one"))
        watch._changed("ADDED", job("a", "3", namespace="two"))
        watch._listed("one", [], "10")

    _, index, _, _, _ = run_on_loop(scenario)
    assert list(index.graph("one", "g").jobs) == []
    assert list(index.graph("two", "g").jobs) == ["a"]


def test_news_of_an_ended_job_pokes_the_status_and_a_failure_becomes_an_event():
    def scenario(watch, index):
        watch._changed(None, job("a", "3", JobPhase.FAILED))  # from a listing: no Event
        failed = job("b", "4", JobPhase.FAILED)
        failed["status"]["message"] = "boom"
        watch._changed("MODIFIED", failed)
        watch._changed("MODIFIED", job("c", "5", JobPhase.FINISHED))
        watch._changed("DELETED", job("c", "6", JobPhase.FINISHED))

    _, index, transitions, flusher, events = run_on_loop(scenario)
    assert flusher.pokes == 3
    assert events.posted == [("JobFailed", "b: boom")]
    assert sorted(index.graph("ns", "g").jobs) == ["a", "b"]
    assert sorted(transitions.settled) == [("a", "Failed"), ("b", "Failed"), ("c", "Finished")]


def test_following_is_idempotent_and_all_namespaces_covers_each_one(monkeypatch):
    started: list[str | None] = []
    monkeypatch.setattr(listwatch, "list_and_watch",
                        lambda resource, namespace, **_: started.append(namespace))

    def scenario(watch, index):
        watch.follow("one")
        watch.follow("one")
        watch.follow(ALL)
        watch.follow("two")
        watch.stop()

    run_on_loop(scenario)
    for thread in threading.enumerate():
        if thread.name.startswith("jobs-"):
            thread.join(5)
    assert sorted(started, key=str) == [None, "one"]


def test_events_from_the_watch_threads_are_applied_on_the_loop_in_their_order():
    async def main():
        watch = JobWatch(NO_WRITER, Index(), FakeTransitions(), FakeFlusher(), FakeEvents())
        loop_thread = threading.get_ident()
        applied: list[tuple[str, int, bool]] = []
        one = watch._from_thread(lambda n: applied.append(("one", n, on_loop())))
        two = watch._from_thread(lambda tag, n: applied.append((tag, n, on_loop())), "two")

        def on_loop() -> bool:
            return threading.get_ident() == loop_thread

        def feed() -> None:
            for n in range(300):
                (one if n % 3 else two)(n)

        thread = threading.Thread(target=feed)
        thread.start()
        while thread.is_alive() or len(applied) < 300:
            await asyncio.sleep(0.001)
        return applied

    applied = asyncio.run(main())
    assert applied == [("one" if n % 3 else "two", n, True) for n in range(300)]


class FakeGraphs:
    def __init__(self) -> None:
        self.written: list[tuple[str, str, str, str]] = []

    def patch_status(self, namespace, name, status) -> dict[str, Any]:
        self.written.append((namespace, name, str(status["phase"]), status["progress"]))
        return {}


class FakeWriter:
    def __init__(self) -> None:
        self.graphs = FakeGraphs()

    async def run(self, fn, *args, **kwargs):
        return fn(*args, **kwargs)


def test_a_graphs_status_is_not_written_before_the_jobs_of_its_namespace_were_listed():
    # An operator restarted while its Jobs cannot be listed (the API server answers 500 to
    # the list) knows its graphs but none of their jobs: counted from the index, a Finished
    # graph would be written back as Running 0/N.
    async def main():
        index = Index()
        view = index.observe_graph({
            "metadata": {"namespace": "ns", "name": "g", "uid": "u1", "generation": 1},
            "spec": {"jobs": [{"name": "a", "type": "noop"}, {"name": "b", "type": "noop"}]},
            "status": {"phase": "Finished", "progress": "2/2", "reason": "AllJobsFinished"},
        })
        view.expanded = view.dirty = True
        writer = FakeWriter()
        flusher = StatusFlusher(index, writer, FakeEvents(), interval=0.01)
        task = asyncio.create_task(flusher.run())
        await asyncio.sleep(0.5)
        before = list(writer.graphs.written)

        watch = JobWatch(writer, index, FakeTransitions(), flusher, FakeEvents())
        watch._listed("ns", [job("a", "3", JobPhase.FINISHED), job("b", "4", JobPhase.FAILED)],
                      "10")
        await asyncio.sleep(0.5)
        task.cancel()
        return before, writer.graphs.written

    before, after = asyncio.run(main())
    assert before == []
    assert after == [("ns", "g", "Failed", "1/2")]
