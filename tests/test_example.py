"""The sales example runs end to end on real runners against a real API server."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import yaml

from tests.conftest import REPO, read_ledger
from tests.helpers import jobs_of, wait_graph

EXAMPLE = REPO / "examples" / "sales" / "graph.yaml"


def test_example_graph_finishes_with_every_handler_run_once(
    cluster, namespace, start_runner, ledger: Path
):
    start_runner(namespace, "tests.handlers.sales")
    start_runner(namespace, "tests.handlers.sales")

    cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLE))
    graph = wait_graph(cluster, namespace, "sales", "Finished", timeout=90)

    names = [j["name"] for j in yaml.safe_load(EXAMPLE.read_text())["spec"]["jobs"]]
    assert graph["status"]["counts"] == {
        "waiting": 0, "eligible": 0, "started": 0, "finished": 7, "failed": 0, "aborted": 0,
    }
    assert graph["status"]["progress"] == "7/7"
    jobs = jobs_of(cluster, namespace, "sales")
    assert {name: j["status"]["phase"] for name, j in jobs.items()} == dict.fromkeys(
        names, "Finished")
    assert {name: j["status"]["attempt"] for name, j in jobs.items()} == dict.fromkeys(names, 1)
    assert Counter(line["job"] for line in read_ledger(ledger)) == dict.fromkeys(names, 1)

    report = jobs["report"]["status"]["result"]
    assert report["orders"] == 4000
    assert report["revenue"] == "640887.72"
    assert report["ranking"][0] == "north: 213789.55 (33.4%), 4813 units"
