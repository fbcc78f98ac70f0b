"""How jobs move through a graph: order, failures, and what a bad graph gets told."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from overseer import kube
from tests.conftest import read_ledger, wait_for
from tests.helpers import (
    PhaseRecorder,
    events,
    get_graph,
    graph,
    job,
    jobs_of,
    phases,
    wait_graph,
)


def test_chain_runs_each_job_only_after_its_dependency_finished(
    cluster, namespace, start_runner
):
    recorder = PhaseRecorder(cluster, namespace)
    start_runner(namespace, "tests.handlers.basic")
    start_runner(namespace, "tests.handlers.basic")

    cluster.apply(graph("chain",
                        job("a", "sleep", args={"seconds": 1}),
                        job("b", "sleep", "a", args={"seconds": 1}),
                        job("c", "noop", "b")), namespace)

    wait_for(lambda: phases(cluster, namespace, "chain").get("a") == "Started", what="a started")
    assert phases(cluster, namespace, "chain") == {"a": "Started", "b": "Waiting", "c": "Waiting"}
    wait_graph(cluster, namespace, "chain", "Finished")
    time.sleep(0.5)
    recorder.stop()

    assert recorder.first("a", "Finished") < recorder.first("b", "Eligible")
    assert recorder.first("b", "Finished") < recorder.first("c", "Eligible")
    assert recorder.phases_of("b") == [
        "Waiting", "Eligible", "Started", "Finished"]
    jobs = jobs_of(cluster, namespace, "chain")
    assert kube.parse_time(jobs["b"]["status"]["eligibleAt"]) >= kube.parse_time(
        jobs["a"]["status"]["finishedAt"])


def test_handler_exception_fails_the_job_aborts_its_dependents_and_runner_goes_on(
    cluster, namespace, start_runner, ledger: Path
):
    runner = start_runner(namespace, "tests.handlers.basic")
    cluster.apply(graph("oops",
                        job("bad", "boom", args={"message": "disk on fire"}),
                        job("child", "noop", "bad"),
                        job("grandchild", "noop", "child"),
                        job("fine", "noop")),
                  namespace)

    body = wait_graph(cluster, namespace, "oops", "Failed")
    jobs = jobs_of(cluster, namespace, "oops")

    bad = jobs["bad"]["status"]
    assert bad["phase"] == "Failed"
    assert bad["error"] == {"type": "ValueError", "message": "disk on fire"}
    assert bad["reason"] == "HandlerError"
    assert bad["message"] == "ValueError: disk on fire"
    assert jobs["fine"]["status"]["phase"] == "Finished"
    assert jobs["child"]["status"]["phase"] == "Aborted"
    assert jobs["child"]["status"]["reason"] == "DependencyFailed"
    assert jobs["child"]["status"]["message"] == "not run because its dependency bad is Failed"
    assert jobs["grandchild"]["status"]["message"] == (
        "not run because its dependency child is Aborted")
    assert body["status"]["message"] == "1 of 4 jobs failed (bad), 2 aborted, 1 finished"
    assert body["status"]["counts"] == {"waiting": 0, "eligible": 0, "started": 0,
                                        "finished": 1, "failed": 1, "aborted": 2}
    assert runner.popen.poll() is None, "the runner must survive a handler's exception"
    assert sorted(line["job"] for line in read_ledger(ledger)) == ["bad", "fine"]


def test_racing_runners_run_every_job_exactly_once(cluster, namespace, start_runner,
                                                   ledger: Path):
    runners = [start_runner(namespace, "tests.handlers.basic", "--concurrency", "2")
               for _ in range(4)]
    cluster.apply(graph("wide", *(job(f"j{i:03d}") for i in range(200))), namespace)

    wait_graph(cluster, namespace, "wide", "Finished", timeout=120)

    runs = read_ledger(ledger)
    assert Counter(line["job"] for line in runs) == {f"j{i:03d}": 1 for i in range(200)}
    jobs = jobs_of(cluster, namespace, "wide")
    assert {j["status"]["attempt"] for j in jobs.values()} == {1}
    assert len({j["status"]["runner"] for j in jobs.values()}) == 4
    for runner in runners:
        loud = [e for e in runner.events() if e.get("level") in ("warning", "error", "critical")]
        assert loud == [], f"a lost race must not be reported as a problem: {loud[:3]}"


@pytest.mark.parametrize(
    ("jobs", "reason", "message"),
    [
        (
            [job("a", "noop", "c"), job("b", "noop", "a"), job("c", "noop", "b"), job("d")],
            "DependencyCycle",
            "the dependencies form a cycle: a -> c -> b -> a "
            "(each job depends on the next); remove one of these dependencies",
        ),
        (
            [job("a"), job("b", "noop", "a", "missing"), job("c", "noop", "nowhere")],
            "UnknownDependency",
            "dependsOn names jobs that are not in the graph: b -> missing, c -> nowhere",
        ),
        (
            [job("a"), job("b"), job("a", "echo")],
            "DuplicateJobName",
            "job names must be unique within a graph; repeated: a",
        ),
        (
            [job("a", "noop", "a")],
            "DependencyCycle",
            "a job cannot depend on itself: a",
        ),
    ],
    ids=["cycle", "unknown-dependency", "duplicate-name", "self-dependency"],
)
def test_invalid_graph_is_failed_with_a_message_and_creates_no_jobs(
    cluster, namespace, jobs, reason, message
):
    cluster.apply(graph("bad", *jobs), namespace)

    body = wait_graph(cluster, namespace, "bad", "Failed")

    assert body["status"]["reason"] == reason
    assert body["status"]["message"] == message
    accepted = next(c for c in body["status"]["conditions"] if c["type"] == "Accepted")
    assert (accepted["status"], accepted["reason"], accepted["message"]) == (
        "False", reason, message)
    events = wait_for(lambda: cluster.kubectl(
        "get", "events", "-n", namespace, "--field-selector", f"reason={reason}",
        "-o", "jsonpath={.items[*].message}").stdout, what="a warning event")
    assert events == message
    time.sleep(1)
    assert jobs_of(cluster, namespace, "bad") == {}


def test_a_graph_created_again_right_after_deletion_gets_all_its_jobs(
    cluster, namespace, start_runner, ledger
):
    start_runner(namespace, "tests.handlers.basic", "--concurrency", "2")
    manifest = graph("again", *(job(f"j{i:02d}") for i in range(30)))
    cluster.apply(manifest, namespace)
    first = wait_graph(cluster, namespace, "again", "Finished")

    cluster.kubectl("delete", "jobgraph", "again", "-n", namespace, "--wait=false")
    cluster.apply(manifest, namespace)
    second = wait_for(lambda: (g := get_graph(cluster, namespace, "again"))["metadata"]["uid"]
                      != first["metadata"]["uid"] and g, what="the graph created again")
    body = wait_graph(cluster, namespace, "again", "Finished", timeout=90)

    assert body["metadata"]["uid"] == second["metadata"]["uid"]
    jobs = jobs_of(cluster, namespace, "again")
    assert len(jobs) == 30
    assert {j["metadata"]["ownerReferences"][0]["uid"] for j in jobs.values()} == {
        second["metadata"]["uid"]}
    assert Counter(line["job"] for line in read_ledger(ledger)) == {
        f"j{i:02d}": 2 for i in range(30)}


def test_a_job_name_taken_by_another_graph_fails_the_graph_with_a_message(
    cluster, namespace, start_runner
):
    start_runner(namespace, "tests.handlers.basic")
    cluster.apply(graph("x", job("y-z")), namespace)
    wait_graph(cluster, namespace, "x", "Finished")

    cluster.apply(graph("x-y", job("z"), job("w", "noop", "z")), namespace)
    body = wait_graph(cluster, namespace, "x-y", "Failed")

    assert body["status"]["reason"] == "JobNameTaken"
    assert body["status"]["message"] == (
        "the Job names <graph>-<job> of these jobs are already used in this namespace: "
        "z (taken by job y-z of graph x); rename the jobs or the graph")
    assert jobs_of(cluster, namespace, "x")["y-z"]["status"]["phase"] == "Finished"


def test_a_job_deleted_from_a_running_graph_is_created_again(
    cluster, namespace, start_runner, ledger: Path
):
    start_runner(namespace, "tests.handlers.basic")
    cluster.apply(graph("gap", job("a"), job("b", "sleep", "a", args={"seconds": 3}),
                        job("c", "noop", "b")), namespace)
    wait_for(lambda: phases(cluster, namespace, "gap").get("b") == "Started", what="b started")
    # c waits for b; b is running. Left gone, c would wait for ever.
    cluster.kubectl("delete", "jobs.overseer.dev", "gap-b", "gap-c", "-n", namespace)

    body = wait_graph(cluster, namespace, "gap", "Finished", timeout=60)
    assert body["status"]["progress"] == "3/3"
    assert set(phases(cluster, namespace, "gap").values()) == {"Finished"}
    # b's first run ended on a deleted Job, so its outcome was dropped, and it ran again.
    assert [line["job"] for line in read_ledger(ledger)] == ["a", "b", "b", "c"]
    recreated = wait_for(lambda: events(cluster, namespace, "JobRecreated"), what="an event")
    assert recreated[0].startswith("Job ")
