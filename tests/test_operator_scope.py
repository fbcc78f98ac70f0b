"""Which namespaces the operator serves, as its command line says, handed to kopf and to the
Jobs' watches (the chart runs every form of it)."""

from __future__ import annotations

import pytest

import controller.__main__ as operator_main


@pytest.fixture
def started(monkeypatch) -> dict:
    seen: dict = {}

    async def operator(**kwargs):
        seen.update(kwargs)

    monkeypatch.setattr(operator_main.kopf, "operator", operator)
    monkeypatch.setattr(operator_main.metrics, "serve", lambda port: None)
    return seen


def test_all_namespaces_is_one_cluster_wide_watch(started):
    operator_main.main(["--all-namespaces"])
    assert started["clusterwide"] is True
    assert started["namespaces"] == []  # a list: kopf iterates it even when cluster-wide
    assert started["memo"]["job_namespaces"] == [None]
    assert started["memo"]["scanning_disabled"] is True


def test_exact_namespaces_are_followed_from_the_start(started):
    operator_main.main(["-n", "team-a", "-n", "team-b"])
    assert started["clusterwide"] is False
    assert started["namespaces"] == ["team-a", "team-b"]
    assert started["memo"]["job_namespaces"] == ["team-a", "team-b"]
    assert started["memo"]["scanning_disabled"] is True


def test_patterns_follow_each_namespace_as_its_graphs_turn_up(started):
    operator_main.main(["-n", "team-*", "-n", "!team-x"])
    assert started["namespaces"] == ["team-*", "!team-x"]
    assert started["memo"]["job_namespaces"] == []
    assert started["memo"]["scanning_disabled"] is False
