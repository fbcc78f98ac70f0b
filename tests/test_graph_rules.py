"""The graph rules on their own: validation and eligibility, no API server involved."""

from __future__ import annotations

import pytest

from controller.graph import InvalidGraph, find_cycle, is_doomed, is_eligible, validate
from overseer.api import GraphJob, JobPhase


def jobs(*pairs: tuple[str, list[str]]) -> list[GraphJob]:
    return [GraphJob(name=n, type="t", depends_on=d) for n, d in pairs]


def test_a_diamond_is_valid():
    validate("g", jobs(("a", []), ("b", ["a"]), ("c", ["a"]), ("d", ["b", "c"])))


def test_a_cycle_is_reported_as_the_path_around_it():
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"], "d": []}) == ["a", "b", "c", "a"]


def test_a_chain_of_ten_thousand_has_no_cycle_and_no_recursion_limit():
    chain = {f"j{i}": [f"j{i - 1}"] if i else [] for i in range(10_000)}
    assert find_cycle(chain) is None


def test_a_long_cycle_is_found():
    ring = {f"j{i}": [f"j{(i + 1) % 5000}"] for i in range(5000)}
    cycle = find_cycle(ring)
    assert cycle is not None and len(cycle) == 5001 and cycle[0] == cycle[-1]


def test_duplicate_names_are_named_once_each_in_order():
    with pytest.raises(InvalidGraph) as caught:
        validate("g", jobs(("b", []), ("a", []), ("b", []), ("a", []), ("b", [])))
    assert (caught.value.reason, caught.value.message) == (
        "DuplicateJobName", "job names must be unique within a graph; repeated: a, b")


def test_eligible_only_when_every_dependency_finished():
    assert is_eligible(JobPhase.WAITING, [])
    assert is_eligible(JobPhase.WAITING, [JobPhase.FINISHED, JobPhase.FINISHED])
    assert not is_eligible(JobPhase.WAITING, [JobPhase.FINISHED, JobPhase.STARTED])
    assert not is_eligible(JobPhase.WAITING, [JobPhase.FINISHED, None])
    assert not is_eligible(JobPhase.ELIGIBLE, [JobPhase.FINISHED])


def test_doomed_when_a_dependency_failed_or_aborted():
    assert is_doomed(JobPhase.WAITING, [JobPhase.FINISHED, JobPhase.FAILED])
    assert is_doomed(JobPhase.WAITING, [JobPhase.ABORTED])
    assert not is_doomed(JobPhase.WAITING, [JobPhase.STARTED])
    assert not is_doomed(JobPhase.STARTED, [JobPhase.FAILED])
