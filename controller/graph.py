"""The rules of a job graph: what makes one valid, and when a job becomes eligible.

Pure functions over names and phases, with no Kubernetes in them, so that the rules can be
read and tested on their own. The operator's index feeds them what it has seen.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from overseer.api import GraphJob, JobPhase


class InvalidGraph(ValueError):
    """A graph that cannot run; the message names the offending jobs and says what to fix."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def validate(graph_name: str, jobs: Sequence[GraphJob]) -> None:
    """Raise ``InvalidGraph`` if ``jobs`` has duplicate names, unknown dependencies or a cycle."""
    duplicates = sorted(name for name, n in Counter(j.name for j in jobs).items() if n > 1)
    if duplicates:
        raise InvalidGraph(
            "DuplicateJobName",
            f"job names must be unique within a graph; repeated: {', '.join(duplicates)}",
        )

    names = {j.name for j in jobs}
    unknown = [
        f"{j.name} -> {dep}" for j in jobs for dep in j.depends_on if dep not in names
    ]
    if unknown:
        raise InvalidGraph(
            "UnknownDependency",
            f"dependsOn names jobs that are not in the graph: {', '.join(unknown)}",
        )

    self_deps = [j.name for j in jobs if j.name in j.depends_on]
    if self_deps:
        raise InvalidGraph(
            "DependencyCycle", f"a job cannot depend on itself: {', '.join(self_deps)}"
        )

    cycle = find_cycle({j.name: j.depends_on for j in jobs})
    if cycle:
        shown = cycle if len(cycle) <= 12 else [
            *cycle[:6], f"... {len(cycle) - 9} more ...", *cycle[-3:]]
        raise InvalidGraph(
            "DependencyCycle",
            f"the dependencies form a cycle: {' -> '.join(shown)} "
            "(each job depends on the next); remove one of these dependencies",
        )


def find_cycle(depends_on: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One cycle of the dependency relation as [a, b, ..., a], or None if there is none.

    Iterative depth-first search: a chain of ten thousand jobs would overflow Python's stack
    with the recursive version.
    """
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(depends_on, WHITE)
    for root in depends_on:
        if colour[root] != WHITE:
            continue
        path: list[str] = []
        stack: list[tuple[str, Iterable[str]]] = [(root, iter(depends_on[root]))]
        colour[root] = GREY
        path.append(root)
        while stack:
            node, deps = stack[-1]
            for dep in deps:
                if colour.get(dep, BLACK) == GREY:
                    return path[path.index(dep):] + [dep]
                if colour.get(dep) == WHITE:
                    colour[dep] = GREY
                    path.append(dep)
                    stack.append((dep, iter(depends_on[dep])))
                    break
            else:
                colour[node] = BLACK
                path.pop()
                stack.pop()
    return None


def is_eligible(phase: JobPhase, dependency_phases: Iterable[JobPhase | None]) -> bool:
    """A Waiting job becomes Eligible once every one of its dependencies is Finished.

    A dependency the operator has not seen yet (None) is not finished.
    """
    return phase is JobPhase.WAITING and all(p is JobPhase.FINISHED for p in dependency_phases)


def is_doomed(phase: JobPhase, dependency_phases: Iterable[JobPhase | None]) -> bool:
    """A Waiting job can never run once one of its dependencies is Failed or Aborted."""
    return phase is JobPhase.WAITING and any(
        p in (JobPhase.FAILED, JobPhase.ABORTED) for p in dependency_phases
    )
