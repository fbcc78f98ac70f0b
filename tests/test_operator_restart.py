"""The operator can die at any point and start again without duplicating or losing work."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.conftest import read_ledger, wait_for
from tests.helpers import graph, job, jobs_of, phases, wait_graph


def test_operator_killed_while_creating_jobs_creates_each_job_once_after_restart(
    cluster, own_namespace, processes, start_runner, ledger: Path
):
    ns = own_namespace
    operator = processes.start("operator", "-m", "controller", "--namespace", ns)
    cluster.apply(graph("big", *(job(f"j{i:03d}") for i in range(300))), ns)

    wait_for(lambda: len(jobs_of(cluster, ns, "big")) >= 20, what="some Jobs created")
    operator.kill()
    created_before_restart = len(jobs_of(cluster, ns, "big"))
    assert created_before_restart < 300, "the operator finished before it could be killed"

    processes.start("operator", "-m", "controller", "--namespace", ns)
    wait_for(lambda: Counter(phases(cluster, ns, "big").values()) == {"Eligible": 300},
             timeout=90, what="all 300 Jobs Eligible")

    start_runner(ns, "tests.handlers.basic", "--concurrency", "4")
    body = wait_graph(cluster, ns, "big", "Finished", timeout=120)

    assert body["status"]["progress"] == "300/300"
    assert len(jobs_of(cluster, ns, "big")) == 300
    assert Counter(line["job"] for line in read_ledger(ledger)) == {
        f"j{i:03d}": 1 for i in range(300)}


def test_operator_restarted_mid_graph_carries_on_from_the_api_servers_state(
    cluster, own_namespace, processes, start_runner, ledger: Path
):
    ns = own_namespace
    operator = processes.start("operator", "-m", "controller", "--namespace", ns)
    start_runner(ns, "tests.handlers.basic")
    cluster.apply(graph("chain", job("a"), job("b", "sleep", "a", args={"seconds": 2}),
                        job("c", "noop", "b")), ns)

    wait_for(lambda: phases(cluster, ns, "chain").get("b") == "Started", what="b started")
    operator.kill()
    # b finishes while no operator runs; the new one must see that and move c on.
    wait_for(lambda: phases(cluster, ns, "chain").get("b") == "Finished", what="b finished")
    processes.start("operator", "-m", "controller", "--namespace", ns)

    wait_graph(cluster, ns, "chain", "Finished")
    assert [line["job"] for line in read_ledger(ledger)] == ["a", "b", "c"]
