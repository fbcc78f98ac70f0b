"""Defining a JobGraph in Python instead of YAML.

::

    g = Graph("sales", defaults=JobPolicy(retries=2))
    split = g.job("split", type="split", args={"file": "orders.csv", "shards": 4})
    totals = [g.job(f"total-{i}", type="total", depends_on=[split]) for i in range(4)]
    g.job("combine", type="combine", depends_on=totals)
    g.to_yaml()

Each entry is a ``GraphJob`` of ``overseer.api``, so a field is checked the moment it is
given, the same way the operator parses it. The graph as a whole (unknown dependencies,
cycles) is checked when the manifest is made, with the operator's own rules and messages:
a dependency may name a job that is added later.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic
import yaml

from controller.graph import InvalidGraph, validate
from overseer.api import API_VERSION, MAX_GRAPH_NAME, Backoff, GraphJob, JobGraphSpec, JobPolicy

# A JobGraph's name is an object name (a DNS subdomain) and also a label value on its Jobs.
_GRAPH_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


class GraphError(ValueError):
    """The graph or one of its jobs is not valid; the message says which and why."""


@dataclass(frozen=True)
class JobHandle:
    """A job added to a graph, to name as a dependency of later jobs."""

    graph: str
    name: str


Dependency = JobHandle | str


class Graph:
    """A JobGraph under construction: add jobs with ``job``, then take ``manifest``."""

    def __init__(
        self,
        name: str,
        *,
        defaults: JobPolicy | None = None,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
        priority: int = 0,
        parallelism: int | None = None,
        active_deadline_seconds: int | None = None,
        ttl_seconds_after_finished: int | None = None,
    ) -> None:
        if len(name) > MAX_GRAPH_NAME or not _GRAPH_NAME.match(name):
            raise GraphError(
                f'graph name "{name}" is not valid: it must be at most {MAX_GRAPH_NAME} '
                "lower case letters, digits, '-' or '.', starting and ending with a letter "
                "or digit"
            )
        self.name = name
        self.namespace = namespace
        self.labels = dict(labels or {})
        self._jobs: dict[str, GraphJob] = {}
        self._options: dict[str, Any] = {
            "defaults": defaults,
            "priority": priority,
            "parallelism": parallelism,
            "active_deadline_seconds": active_deadline_seconds,
            "ttl_seconds_after_finished": ttl_seconds_after_finished,
        }
        # Checks the graph-wide options now, where the caller made the mistake.
        self._spec(jobs=[GraphJob(name="placeholder", type="placeholder")])

    def job(
        self,
        name: str,
        *,
        type: str,  # the field is called type everywhere in Overseer
        args: Mapping[str, Any] | None = None,
        depends_on: Iterable[Dependency] | Dependency = (),
        priority: int | None = None,
        retries: int | None = None,
        backoff: Backoff | None = None,
        timeout_seconds: int | None = None,
    ) -> JobHandle:
        """Add a job and return its handle; ``depends_on`` takes handles or job names."""
        if name in self._jobs:
            raise GraphError(
                f'graph "{self.name}" already has a job named "{name}"; '
                "job names must be unique within a graph"
            )
        try:
            entry = GraphJob(
                name=name, type=type, args=dict(args or {}),
                depends_on=self._dependency_names(name, depends_on),
                priority=priority, retries=retries, backoff=backoff,
                timeout_seconds=timeout_seconds,
            )
        except pydantic.ValidationError as exc:
            raise GraphError(f'job "{name}" of graph "{self.name}" is not valid: '
                             f"{_summary(exc)}") from None
        self._jobs[name] = entry
        return JobHandle(graph=self.name, name=name)

    def _dependency_names(self, name: str, depends_on: Iterable[Dependency] | Dependency
                          ) -> list[str]:
        # A lone name or handle is one dependency; iterating a string would make each of
        # its letters one.
        if isinstance(depends_on, (str, JobHandle)):
            depends_on = [depends_on]
        names = []
        for dep in depends_on:
            if isinstance(dep, JobHandle):
                if dep.graph != self.name:
                    raise GraphError(
                        f'job "{name}" depends on "{dep.name}" of graph "{dep.graph}"; '
                        f'a job can only depend on jobs of its own graph "{self.name}"'
                    )
                names.append(dep.name)
            elif isinstance(dep, str):
                names.append(dep)
            else:
                raise GraphError(
                    f'job "{name}": depends_on takes job handles or names, not '
                    f"{type(dep).__name__}"
                )
        return names

    def _spec(self, *, jobs: list[GraphJob]) -> JobGraphSpec:
        try:
            return JobGraphSpec(jobs=jobs, **self._options)
        except pydantic.ValidationError as exc:
            raise GraphError(f'graph "{self.name}" is not valid: {_summary(exc)}') from None

    def spec(self) -> JobGraphSpec:
        """The graph's spec, checked as the operator checks it; raises ``GraphError``."""
        if not self._jobs:
            raise GraphError(f'graph "{self.name}" has no jobs; add at least one with job()')
        spec = self._spec(jobs=list(self._jobs.values()))
        try:
            validate(self.name, spec.jobs)
        except InvalidGraph as exc:
            raise GraphError(f'graph "{self.name}": {exc.message}') from None
        return spec

    def manifest(self) -> dict[str, Any]:
        """The JobGraph as a user would write it by hand: camelCase, nothing left at default."""
        metadata: dict[str, Any] = {"name": self.name}
        if self.namespace:
            metadata["namespace"] = self.namespace
        if self.labels:
            metadata["labels"] = dict(self.labels)
        return {
            "apiVersion": API_VERSION,
            "kind": "JobGraph",
            "metadata": metadata,
            "spec": self.spec().model_dump(mode="json", by_alias=True, exclude_defaults=True),
        }

    def to_yaml(self) -> str:
        """The manifest as YAML that ``kubectl apply -f`` and ``overseer submit`` read back."""
        return yaml.dump(self.manifest(), Dumper=_Dumper, sort_keys=False)


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper, quoting the strings that YAML 1.1 readers take for booleans.

    PyYAML already quotes "yes", "no", "on" and "off"; kubectl's YAML reader also takes
    "y" and "n", so a job named "y" would reach the API server as ``true``.
    """


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    if value in ("y", "Y", "n", "N"):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="'")
    return dumper.represent_str(value)


_Dumper.add_representer(str, _represent_str)


def _summary(exc: pydantic.ValidationError) -> str:
    """The first few problems pydantic found, each as "field: what is wrong"."""
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err["loc"]) or "value"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
