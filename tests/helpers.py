"""Building graphs and reading Jobs in the end-to-end tests."""

from __future__ import annotations

from typing import Any

from overseer import kube
from overseer.api import GRAPH_LABEL
from tests.conftest import Cluster, wait_for


def graph(name: str, *jobs: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "overseer.dev/v1alpha1",
        "kind": "JobGraph",
        "metadata": {"name": name},
        "spec": {"jobs": list(jobs), **spec},
    }


def job(name: str, type_: str = "noop", *deps: str, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "type": type_, **fields}
    if deps:
        out["dependsOn"] = list(deps)
    return out


def get_graph(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    return kube.graphs(cluster.api_client).get(namespace, name)


def jobs_of(cluster: Cluster, namespace: str, graph_name: str) -> dict[str, dict[str, Any]]:
    """The graph's Jobs, keyed by their name in the graph."""
    items = kube.jobs(cluster.api_client).list(
        namespace, label_selector=f"{GRAPH_LABEL}={graph_name}")["items"]
    return {item["spec"]["name"]: item for item in items}


def phases(cluster: Cluster, namespace: str, graph_name: str) -> dict[str, str]:
    return {name: (body.get("status") or {}).get("phase")
            for name, body in jobs_of(cluster, namespace, graph_name).items()}


def wait_graph(cluster: Cluster, namespace: str, name: str, phase: str, *,
               timeout: float = 60) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        body = get_graph(cluster, namespace, name)
        return body if (body.get("status") or {}).get("phase") == phase else None
    return wait_for(reached, timeout=timeout, what=f"graph {name} to be {phase}")
