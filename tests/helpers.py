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


class PhaseRecorder:
    """Every (job, phase, reason) the API server reports in a namespace, in its order."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        import threading
        self.seen: list[tuple[str, str, str | None]] = []
        self.bodies: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._jobs = kube.jobs(cluster.api_client)
        self._namespace = namespace
        version = self._jobs.list(namespace)["metadata"]["resourceVersion"]
        self._thread = threading.Thread(target=self._run, args=(version,), daemon=True)
        self._thread.start()

    def _run(self, version: str) -> None:
        while not self._stop.is_set():
            for event in self._jobs.watch(self._namespace, resource_version=version,
                                          timeout_seconds=5):
                body = event["object"]
                version = body["metadata"]["resourceVersion"]
                if event["type"] in ("ADDED", "MODIFIED"):
                    status = body.get("status") or {}
                    entry = (body["spec"]["name"], status.get("phase"), status.get("reason"))
                    if not self.seen or self.seen[-1] != entry:
                        self.seen.append(entry)
                        self.bodies.append(body)

    def phases_of(self, name: str) -> list[str]:
        return [p for n, p, _ in self.seen if n == name]

    def first(self, name: str, phase: str) -> int:
        return next(i for i, (n, p, _) in enumerate(self.seen) if (n, p) == (name, phase))

    def stop(self) -> None:
        self._stop.set()


def patch_graph(cluster: Cluster, namespace: str, name: str, spec: dict[str, Any]) -> None:
    kube.graphs(cluster.api_client).patch(namespace, name, {"spec": spec})


def events(cluster: Cluster, namespace: str, reason: str) -> list[str]:
    out = cluster.kubectl("get", "events", "-n", namespace, "--field-selector",
                          f"reason={reason}", "-o", "jsonpath={.items[*].message}").stdout
    return [out] if out else []
