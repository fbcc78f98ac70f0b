"""The CRDs: generated from the models, strict at kubectl apply, readable in kubectl get."""

from __future__ import annotations

import re

import pytest

from overseer import crdgen
from tests.helpers import graph, job, wait_graph


def test_committed_crds_are_what_the_models_generate():
    stale = [path.name for path, text in crdgen.rendered().items()
             if not path.exists() or path.read_text() != text]
    assert stale == [], "run: python -m overseer.crdgen"


def _columns(output: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in output.strip().splitlines()]


def test_kubectl_get_prints_the_printer_columns(cluster, namespace, start_runner):
    start_runner(namespace, "tests.handlers.basic")
    cluster.apply(graph("cols", job("first"), job("second", "echo", "first")), namespace)
    wait_graph(cluster, namespace, "cols", "Finished")

    rows = _columns(cluster.kubectl("get", "jobs.overseer.dev", "-n", namespace,
                                    "--sort-by=.metadata.name").stdout)
    assert rows[0] == ["NAME", "GRAPH", "TYPE", "PHASE", "ATTEMPT", "RUNNER", "AGE"]
    assert [row[:5] for row in rows[1:]] == [
        ["cols-first", "cols", "noop", "Finished", "1"],
        ["cols-second", "cols", "echo", "Finished", "1"],
    ]
    assert all(row[5].startswith(cluster_runner_prefix()) for row in rows[1:])

    short = _columns(cluster.kubectl("get", "ojob", "-n", namespace).stdout)
    assert short[0] == rows[0]

    graphs = _columns(cluster.kubectl("get", "jg", "-n", namespace).stdout)
    assert graphs[0] == ["NAME", "PHASE", "FINISHED", "FAILED", "AGE"]
    assert graphs[1][:4] == ["cols", "Finished", "2/2", "0"]

    everything = cluster.kubectl("get", "overseer", "-n", namespace).stdout
    blocks = [b for b in everything.strip().split("\n\n") if b]
    assert len(blocks) == 2
    jg_rows, job_rows = (_columns(b) for b in blocks)
    assert jg_rows[0] == ["NAME", "PHASE", "FINISHED", "FAILED", "AGE"]
    assert jg_rows[1][:4] == ["jobgraph.overseer.dev/cols", "Finished", "2/2", "0"]
    assert job_rows[0] == ["NAME", "GRAPH", "TYPE", "PHASE", "ATTEMPT", "RUNNER", "AGE"]
    assert sorted(r[0] for r in job_rows[1:]) == ["job.overseer.dev/cols-first",
                                                  "job.overseer.dev/cols-second"]


def cluster_runner_prefix() -> str:
    import socket
    return socket.gethostname()


def test_server_filters_jobs_on_phase_and_type(cluster, namespace, start_runner):
    start_runner(namespace, "tests.handlers.basic")
    cluster.apply(graph("sel", job("x"), job("y", "echo")), namespace)
    wait_graph(cluster, namespace, "sel", "Finished")

    out = cluster.kubectl("get", "ojob", "-n", namespace, "-o", "name",
                          "--field-selector", "status.phase=Finished,spec.type=echo").stdout
    assert out.split() == ["job.overseer.dev/sel-y"]


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (graph("up", job("Upper")), 'spec.jobs[0].name: Invalid value: "Upper"'),
        (graph("notype", {"name": "a"}), "spec.jobs[0].type: Required value"),
        (graph("empty"), "spec.jobs: Invalid value: 0: spec.jobs in body should have at least 1 items"),
        (graph("x" * 64, job("a")), "a JobGraph name must be at most 63 characters"),
        (graph("neg", job("a", retries=-1)), "spec.jobs[0].retries: Invalid value: -1"),
    ],
    ids=["uppercase-name", "missing-type", "no-jobs", "long-graph-name", "negative-retries"],
)
def test_bad_manifest_is_rejected_at_apply_with_a_readable_message(
    cluster, namespace, manifest, message
):
    result = cluster.apply(manifest, namespace, check=False)
    assert result.returncode != 0
    assert message in result.stderr


def test_jobs_of_a_graph_cannot_be_changed_after_creation(cluster, namespace):
    cluster.apply(graph("fixed", job("a")), namespace)
    result = cluster.apply(graph("fixed", job("a"), job("b")), namespace, check=False)
    assert result.returncode != 0
    assert "spec.jobs is immutable" in result.stderr
