"""Scheduling and control of graphs: priority, concurrency, parallelism, suspend, cancel,
re-run, deadlines, clean-up, and jobs no runner serves."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from overseer import kube
from tests.conftest import read_ledger, wait_for
from tests.helpers import events, graph, job, jobs_of, patch_graph, phases, wait_graph


def starts(ledger: Path) -> list[dict]:
    return [line for line in read_ledger(ledger) if "stage" not in line]


def max_overlap(ledger: Path) -> int:
    """The most handlers that were running at one time, from their start and end lines."""
    moments = []
    for line in read_ledger(ledger):
        moments.append((line["time"], -1 if line.get("stage") == "end" else 1))
    running = peak = 0
    for _, step in sorted(moments):
        running += step
        peak = max(peak, running)
    return peak


def all_eligible(cluster, namespace, name, count):
    return wait_for(lambda: Counter(phases(cluster, namespace, name).values())
                    == {"Eligible": count}, what=f"{count} jobs of {name} Eligible")


def test_higher_priority_runs_first_graphs_before_jobs(cluster, namespace, start_runner, ledger):
    cluster.apply(graph("low", *(job(f"l{i}", "context", priority=9) for i in range(3))),
                  namespace)
    cluster.apply(graph("high", *(job(f"h{i}", "context", priority=-1) for i in range(3)),
                        job("top", "context", priority=5), priority=10), namespace)
    all_eligible(cluster, namespace, "low", 3)
    all_eligible(cluster, namespace, "high", 4)

    start_runner(namespace, "tests.handlers.lifecycle")
    wait_graph(cluster, namespace, "low", "Finished")

    order = [line["job"] for line in starts(ledger)]
    assert order[0] == "top"
    assert set(order[1:4]) == {"h0", "h1", "h2"}
    assert set(order[4:]) == {"l0", "l1", "l2"}


def test_a_runner_runs_up_to_its_concurrency_at_once(cluster, namespace, start_runner, ledger):
    start_runner(namespace, "tests.handlers.lifecycle", "--concurrency", "3")
    cluster.apply(graph("fan", *(job(f"s{i}", "slow", args={"seconds": 1}) for i in range(6))),
                  namespace)
    wait_graph(cluster, namespace, "fan", "Finished")
    assert max_overlap(ledger) == 3


def test_graph_parallelism_caps_its_running_jobs_across_runners(
    cluster, namespace, start_runner, ledger
):
    for _ in range(3):
        start_runner(namespace, "tests.handlers.lifecycle", "--concurrency", "2")
    cluster.apply(graph("capped", *(job(f"s{i}", "slow", args={"seconds": 0.7})
                                    for i in range(8)), parallelism=2), namespace)
    wait_graph(cluster, namespace, "capped", "Finished")
    assert max_overlap(ledger) == 2
    assert len(starts(ledger)) == 8


def test_a_suspended_graph_starts_nothing_until_resumed(cluster, namespace, start_runner, ledger):
    start_runner(namespace, "tests.handlers.lifecycle")
    cluster.apply(graph("paused", job("a", "context"), job("b", "context", "a"),
                        suspend=True), namespace)
    body = wait_for(lambda: (g := jobs_of(cluster, namespace, "paused")) and len(g) == 2
                    and cluster.kubectl("get", "jg", "paused", "-n", namespace, "-o",
                                        "jsonpath={.status.reason}").stdout == "Suspended",
                    what="the graph to be suspended")
    assert body
    assert phases(cluster, namespace, "paused") == {"a": "Waiting", "b": "Waiting"}

    patch_graph(cluster, namespace, "paused", {"suspend": False})
    wait_graph(cluster, namespace, "paused", "Finished")

    # Suspending a running graph takes its Eligible jobs back from the runners.
    cluster.apply(graph("later", job("slow", "slow", args={"seconds": 2}),
                        job("next", "context", "slow"), job("other", "context", "slow")),
                  namespace)
    wait_for(lambda: phases(cluster, namespace, "later").get("slow") == "Started",
             what="slow started")
    patch_graph(cluster, namespace, "later", {"suspend": True})
    wait_for(lambda: phases(cluster, namespace, "later").get("slow") == "Finished",
             what="slow finished")
    wait_for(lambda: cluster.kubectl("get", "jg", "later", "-n", namespace, "-o",
                                     "jsonpath={.status.reason}").stdout == "Suspended",
             what="the graph to say it is suspended")
    assert phases(cluster, namespace, "later") == {
        "slow": "Finished", "next": "Waiting", "other": "Waiting"}
    patch_graph(cluster, namespace, "later", {"suspend": False})
    wait_graph(cluster, namespace, "later", "Finished")
    assert Counter(line["job"] for line in starts(ledger)) == {
        "a": 1, "b": 1, "slow": 1, "next": 1, "other": 1}


def test_cancel_stops_running_jobs_and_aborts_the_rest(cluster, namespace, start_runner):
    start_runner(namespace, "tests.handlers.lifecycle")
    cluster.apply(graph("doomed", job("running", "slow", args={"seconds": 60}),
                        job("waiting", "context", "running"),
                        job("queued", "context", "running")), namespace)
    wait_for(lambda: phases(cluster, namespace, "doomed").get("running") == "Started",
             what="the long job started")

    patch_graph(cluster, namespace, "doomed", {"cancel": True})
    body = wait_graph(cluster, namespace, "doomed", "Failed")

    jobs = {n: j["status"] for n, j in jobs_of(cluster, namespace, "doomed").items()}
    assert (jobs["running"]["phase"], jobs["running"]["message"]) == (
        "Aborted", "cancelled with its graph while running")
    for name in ("waiting", "queued"):
        assert (jobs[name]["phase"], jobs[name]["reason"], jobs[name]["message"]) == (
            "Aborted", "Cancelled", "not run because its graph was cancelled")
    assert (body["status"]["reason"], body["status"]["message"]) == (
        "Cancelled", "cancelled: 3 aborted, 0 failed, 0 finished")

    with pytest.raises(kube.KubeError) as undo:
        patch_graph(cluster, namespace, "doomed", {"cancel": False})
    assert str(undo.value).endswith(
        "spec.cancel: Invalid value: false: a cancelled graph stays cancelled")


def test_rerun_runs_failed_and_aborted_jobs_again_and_keeps_finished_ones(
    cluster, namespace, start_runner, ledger, tmp_path
):
    marker = tmp_path / "input-ready"
    start_runner(namespace, "tests.handlers.lifecycle")
    cluster.apply(graph("again", job("done", "context"),
                        job("needs-file", "until-file", "done", args={"path": str(marker)}),
                        job("after", "context", "needs-file")), namespace)
    failed = wait_graph(cluster, namespace, "again", "Failed")
    assert failed["status"]["counts"]["aborted"] == 1

    marker.touch()
    patch_graph(cluster, namespace, "again", {"rerun": 1})
    body = wait_graph(cluster, namespace, "again", "Finished")

    jobs = {n: j["status"] for n, j in jobs_of(cluster, namespace, "again").items()}
    assert {n: (s["phase"], s["attempt"]) for n, s in jobs.items()} == {
        "done": ("Finished", 1), "needs-file": ("Finished", 1), "after": ("Finished", 1)}
    assert "error" not in jobs["needs-file"]
    assert Counter(line["job"] for line in starts(ledger)) == {
        "done": 1, "needs-file": 2, "after": 1}
    assert body["status"]["progress"] == "3/3"
    assert "finishedAt" in body["status"]
    assert events(cluster, namespace, "Rerun") == ["re-running 2 failed or aborted jobs"]


def test_a_graph_past_its_deadline_is_cancelled(cluster, namespace, start_runner):
    start_runner(namespace, "tests.handlers.lifecycle")
    cluster.apply(graph("late", job("forever", "slow", args={"seconds": 60}),
                        job("then", "context", "forever"), activeDeadlineSeconds=2), namespace)

    body = wait_graph(cluster, namespace, "late", "Failed", timeout=30)

    assert (body["status"]["reason"], body["status"]["message"]) == (
        "DeadlineExceeded", "ran past its activeDeadlineSeconds: 2 aborted, 0 failed, 0 finished")
    assert jobs_of(cluster, namespace, "late")["then"]["status"]["message"] == (
        "not run because its graph ran past activeDeadlineSeconds")


def test_a_finished_graph_is_deleted_with_its_jobs_after_its_ttl(
    cluster, namespace, start_runner
):
    start_runner(namespace, "tests.handlers.lifecycle")
    cluster.apply(graph("brief", job("a", "context"), job("b", "context", "a"),
                        ttlSecondsAfterFinished=1), namespace)
    wait_for(lambda: cluster.kubectl("get", "jg", "-n", namespace, "-o", "name").stdout == "",
             timeout=30, what="the graph to be deleted")
    wait_for(lambda: jobs_of(cluster, namespace, "brief") == {}, timeout=30,
             what="its Jobs to be garbage-collected")


def test_a_job_of_a_type_no_runner_serves_is_reported(
    cluster, own_namespace, processes, start_runner
):
    ns = own_namespace
    processes.start("operator", "-m", "controller", "--namespace", ns, "--unserved-after", "1")
    start_runner(ns, "tests.handlers.lifecycle")
    cluster.apply(graph("typo", job("ok", "context"), job("huh", "contxt")), ns)

    told = wait_for(lambda: events(cluster, ns, "NoRunnerForType"), timeout=30,
                    what="a NoRunnerForType event")
    assert told[0].startswith("job huh has waited ")
    assert told[0].endswith(f"for a runner, and no live runner in namespace {ns} serves job "
                            "type 'contxt'; start a runner whose handlers include it")
    assert phases(cluster, ns, "typo") == {"ok": "Finished", "huh": "Eligible"}
