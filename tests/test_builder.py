"""Defining graphs in Python: the manifest is what a user would write, mistakes are named."""

from __future__ import annotations

import pytest
import yaml

from overseer.api import Backoff, JobPolicy
from overseer.builder import Graph, GraphError
from tests.conftest import REPO

SALES = REPO / "examples" / "sales" / "graph.yaml"


def sales() -> Graph:
    g = Graph("sales", defaults=JobPolicy(retries=2))
    split = g.job("split", type="split", args={"file": "orders.csv", "shards": 4})
    totals = [
        g.job(f"total-{i}", type="total", args={"file": "orders.csv", "shard": i},
              depends_on=[split])
        for i in range(4)
    ]
    combine = g.job("combine", type="combine", depends_on=totals)
    g.job("report", type="report", depends_on=[combine])
    return g


def test_builder_version_of_the_sales_example_is_the_hand_written_manifest():
    assert sales().manifest() == yaml.safe_load(SALES.read_text())


def test_to_yaml_reads_back_as_the_manifest():
    g = sales()

    assert yaml.safe_load(g.to_yaml()) == g.manifest()


def test_to_yaml_quotes_names_that_kubectl_would_read_as_booleans():
    g = Graph("flags")
    g.job("y", type="n")
    g.job("no", type="noop", depends_on="y")

    text = g.to_yaml()

    assert "name: 'y'" in text and "type: 'n'" in text and "name: 'no'" in text
    assert yaml.safe_load(text)["spec"]["jobs"][1] == {"name": "no", "type": "noop",
                                                       "dependsOn": ["y"]}


def test_manifest_leaves_out_what_is_at_its_default_and_keeps_what_was_set():
    g = Graph("opts", namespace="team", labels={"team": "a"}, priority=5, parallelism=2,
              ttl_seconds_after_finished=60)
    g.job("a", type="noop", retries=0, priority=0, timeout_seconds=30,
          backoff=Backoff(initial_seconds=5))
    g.job("b", type="noop", depends_on=["a"])

    assert g.manifest() == {
        "apiVersion": "overseer.dev/v1alpha1",
        "kind": "JobGraph",
        "metadata": {"name": "opts", "namespace": "team", "labels": {"team": "a"}},
        "spec": {
            "jobs": [
                {"name": "a", "type": "noop", "priority": 0, "retries": 0,
                 "backoff": {"initialSeconds": 5.0}, "timeoutSeconds": 30},
                {"name": "b", "type": "noop", "dependsOn": ["a"]},
            ],
            "priority": 5,
            "parallelism": 2,
            "ttlSecondsAfterFinished": 60,
        },
    }


def test_a_dependency_may_name_a_job_added_later():
    g = Graph("later")
    g.job("first", type="noop", depends_on=["second"])
    g.job("second", type="noop")

    assert [j["name"] for j in g.manifest()["spec"]["jobs"]] == ["first", "second"]


def test_a_repeated_job_name_is_refused_when_it_is_added():
    g = Graph("dup")
    g.job("a", type="noop")

    with pytest.raises(GraphError) as caught:
        g.job("a", type="echo")

    assert str(caught.value) == (
        'graph "dup" already has a job named "a"; job names must be unique within a graph')


def test_a_dependency_on_a_job_not_in_the_graph_is_named():
    g = Graph("lost")
    g.job("a", type="noop")
    g.job("b", type="noop", depends_on=["a", "missing"])

    with pytest.raises(GraphError) as caught:
        g.manifest()

    assert str(caught.value) == (
        'graph "lost": dependsOn names jobs that are not in the graph: b -> missing')


def test_a_cycle_is_named_with_the_operators_message():
    g = Graph("loop")
    g.job("a", type="noop", depends_on=["c"])
    g.job("b", type="noop", depends_on=["a"])
    g.job("c", type="noop", depends_on=["b"])

    with pytest.raises(GraphError) as caught:
        g.to_yaml()

    assert str(caught.value) == (
        'graph "loop": the dependencies form a cycle: a -> c -> b -> a '
        "(each job depends on the next); remove one of these dependencies")


def test_a_job_of_another_graph_cannot_be_a_dependency():
    other = Graph("other")
    foreign = other.job("x", type="noop")
    g = Graph("mine")

    with pytest.raises(GraphError) as caught:
        g.job("a", type="noop", depends_on=[foreign])

    assert str(caught.value) == (
        'job "a" depends on "x" of graph "other"; '
        'a job can only depend on jobs of its own graph "mine"')


def test_an_invalid_field_is_refused_when_the_job_is_added():
    g = Graph("bad")

    with pytest.raises(GraphError) as caught:
        g.job("a", type="noop", retries=-1)

    assert str(caught.value) == (
        'job "a" of graph "bad" is not valid: retries: Input should be greater than or equal to 0')


def test_an_invalid_graph_option_is_refused_when_the_graph_is_made():
    with pytest.raises(GraphError) as caught:
        Graph("bad", parallelism=0)

    assert str(caught.value) == (
        'graph "bad" is not valid: parallelism: Input should be greater than or equal to 1')


def test_an_invalid_graph_name_is_refused():
    with pytest.raises(GraphError) as caught:
        Graph("Sales")

    assert str(caught.value) == (
        "graph name \"Sales\" is not valid: it must be at most 63 lower case letters, digits, "
        "'-' or '.', starting and ending with a letter or digit")


def test_a_graph_without_jobs_is_refused():
    with pytest.raises(GraphError) as caught:
        Graph("empty").manifest()

    assert str(caught.value) == 'graph "empty" has no jobs; add at least one with job()'
