"""The operator can die at any point and start again without duplicating or losing work."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.conftest import read_ledger, wait_for
from tests.helpers import graph, job, jobs_of, phases, wait_graph
from tests.test_control import max_overlap, starts


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


def test_an_operator_restarted_mid_graph_keeps_to_parallelism_and_suspension(
    cluster, own_namespace, processes, start_runner, ledger: Path
):
    # With an exact namespace the Jobs' listing can reach the new operator before the graphs
    # do; no job may be decided on before its graph's spec is known.
    ns = own_namespace
    operator = processes.start("operator", "-m", "controller", "--namespace", ns)
    for _ in range(3):
        start_runner(ns, "tests.handlers.lifecycle", "--concurrency", "2")
    cluster.apply(graph("capped", *(job(f"s{i}", "slow", args={"seconds": 1.5})
                                    for i in range(8)), parallelism=2), ns)
    cluster.apply(graph("held", *(job(f"h{i}", "slow", args={"seconds": 0.1})
                                  for i in range(3)), suspend=True), ns)
    wait_for(lambda: sum(p == "Started" for p in phases(cluster, ns, "capped").values()) == 2,
             what="two capped jobs started")
    operator.kill()
    processes.start("operator", "-m", "controller", "--namespace", ns)

    wait_graph(cluster, ns, "capped", "Finished", timeout=90)
    assert max_overlap(ledger) == 2
    assert Counter(line["job"] for line in starts(ledger)) == {f"s{i}": 1 for i in range(8)}
    assert set(phases(cluster, ns, "held").values()) == {"Waiting"}
