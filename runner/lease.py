"""A runner's liveness: a ``coordination.k8s.io`` Lease of its own, renewed on a period.

One Lease per runner, not a heartbeat in every Job it holds, which would cost a write per
job per period. The operator judges a runner dead when it has itself seen no renewal for
the Lease's duration, on its own monotonic clock, so machines whose clocks disagree cannot
make a live runner look dead.

The Lease also says which job types the runner serves, so the operator can tell when a job
waits for a type that no live runner serves.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any

import structlog
import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

from overseer import kube
from overseer.api import RUNNER_LABEL, RUNNER_TYPES_ANNOTATION

log = structlog.get_logger("overseer.runner")


def _micro_time() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class RunnerLease:
    def __init__(
        self, api_client: Any, *, namespace: str, identity: str, types: list[str],
        duration: int, renew_every: float,
    ) -> None:
        if renew_every >= duration:
            raise ValueError("the lease must be renewed more often than it lasts")
        self._api = client.CoordinationV1Api(api_client)
        self.namespace = namespace
        self.name = identity
        self.types = sorted(types)
        self.duration = duration
        self.renew_every = renew_every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_forever, name="lease", daemon=True)

    def _body(self) -> dict[str, Any]:
        now = _micro_time()
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "labels": {RUNNER_LABEL: "true"},
                "annotations": {RUNNER_TYPES_ANNOTATION: ",".join(self.types)},
            },
            "spec": {
                "holderIdentity": self.name,
                "leaseDurationSeconds": self.duration,
                "acquireTime": now,
                "renewTime": now,
            },
        }

    def acquire(self) -> None:
        try:
            self._api.create_namespaced_lease(self.namespace, self._body(),
                                              _request_timeout=kube.REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status != 409:
                raise kube.translate(exc) from exc
            # A Lease of this identity is left from an earlier life of this runner (a fixed
            # --identity): take it over.
            current = self._api.read_namespaced_lease(self.name, self.namespace,
                                                     _request_timeout=kube.REQUEST_TIMEOUT)
            body = self._body()
            body["metadata"]["resourceVersion"] = current.metadata.resource_version
            self._api.replace_namespaced_lease(self.name, self.namespace, body,
                                              _request_timeout=kube.REQUEST_TIMEOUT)
        self._thread.start()

    def renew(self) -> None:
        try:
            self._api.patch_namespaced_lease(
                self.name, self.namespace, {"spec": {"renewTime": _micro_time()}},
                _request_timeout=kube.REQUEST_TIMEOUT,
            )
        except ApiException as exc:
            if exc.status != 404:
                raise kube.translate(exc) from exc
            # The operator judged this runner dead and removed its Lease; the jobs it held
            # were handed to others, and their outcomes will be dropped. Live on.
            log.warning("lease.lost", lease=self.name)
            self._api.create_namespaced_lease(self.namespace, self._body(),
                                              _request_timeout=kube.REQUEST_TIMEOUT)

    def _renew_forever(self) -> None:
        while not self._stop.wait(self.renew_every):
            try:
                self.renew()
            except Exception as exc:  # noqa: BLE001 - keep renewing through API hiccups
                log.warning("lease.renew_failed", lease=self.name, error=str(exc))

    def release(self) -> None:
        """Stop renewing and delete the Lease: this runner holds nothing any more."""
        self._stop.set()
        try:
            self._api.delete_namespaced_lease(self.name, self.namespace,
                                              _request_timeout=kube.REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status != 404:
                log.warning("lease.release_failed", lease=self.name, error=str(exc))
        except urllib3.exceptions.HTTPError as exc:
            # The API server is gone (stopped first, say). The Lease then lapses and the
            # operator finds a runner that held nothing; a shutdown is no failure.
            log.warning("lease.release_failed", lease=self.name, error=str(exc))
