"""Access to the Kubernetes API for the operator, the runner and the command line.

One thin layer over the official client: it loads the configuration (in a pod or from a
kubeconfig), keeps one connection pool sized for concurrent callers, and turns the client's
``ApiException`` into the few errors Overseer decides on (a 409 means someone else wrote
first; a 404 means the object is gone).

Bodies are plain dicts: the client's model classes do not cover custom resources, and
skipping their deserialisation keeps the hot paths cheap.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from overseer import api

MERGE_PATCH = "application/merge-patch+json"
# (connect, read) seconds for every request. Without them a connection that dies silently
# (no reset: a proxy, a lost peer) blocks its caller for ever. The read timeout is long
# because a status write of a 10,000-job graph can take the API server seconds.
REQUEST_TIMEOUT = (10.0, 60.0)
# A watch must have ended, by the server's timeoutSeconds, this long before it is given up.
WATCH_READ_SLACK = 30.0


class KubeError(Exception):
    """A request to the API server failed for a reason Overseer does not handle itself."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class Conflict(KubeError):
    """409: the object changed since it was read, or it already exists."""


class NotFound(KubeError):
    """404: the object, or its kind, does not exist."""


class ConfigError(Exception):
    """No usable kubeconfig or in-cluster configuration."""


class Gone(KubeError):
    """410: a watch asked for a resourceVersion the server no longer has."""


class Unavailable(KubeError):
    """No answer: the API server is down, restarting, or unreachable."""


# 429 and 5xx are what a server that is starting, stopping or overloaded answers.
_BY_STATUS = {409: Conflict, 404: NotFound, 410: Gone, 429: Unavailable, 500: Unavailable,
              502: Unavailable, 503: Unavailable, 504: Unavailable}


def translate(exc: ApiException) -> KubeError:
    """The Overseer error for an ``ApiException``, with the server's own message."""
    message = exc.reason or ""
    try:
        message = json.loads(exc.body).get("message", message)
    except (TypeError, ValueError, AttributeError):
        pass
    cls = _BY_STATUS.get(exc.status or 0, KubeError)
    return cls(exc.status or 0, exc.reason or "", message)


def now() -> str:
    """The current time as the RFC 3339 string Kubernetes stores, to the microsecond."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def load_config(*, pool_size: int = 32) -> client.ApiClient:
    """An API client for the cluster this process runs in, or the one its kubeconfig names."""
    configuration = client.Configuration()
    try:
        if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
            config.load_incluster_config(client_configuration=configuration)
        else:
            # The client reads KUBECONFIG once, at import; read it at call time instead.
            config.load_kube_config(
                config_file=os.environ.get("KUBECONFIG") or None,
                client_configuration=configuration,
            )
    except (config.ConfigException, OSError) as exc:
        where = os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise ConfigError(f"no cluster to talk to: {exc} (looked in {where}; set KUBECONFIG, "
                          "or run in a pod with a service account)") from exc
    # The default pool holds a handful of connections; concurrent claims and creates would
    # queue behind it and open throwaway connections.
    configuration.connection_pool_maxsize = pool_size
    return client.ApiClient(configuration)


@dataclass(frozen=True)
class Resource:
    """A custom resource kind of Overseer, bound to an API client."""

    api_client: client.ApiClient
    plural: str

    @property
    def _objects(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api_client)

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
        try:
            return getattr(self._objects, method)(api.GROUP, api.VERSION, *args, **kwargs)
        except ApiException as exc:
            raise translate(exc) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise Unavailable(0, "Unavailable", str(exc)) from exc

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        return self._call("get_namespaced_custom_object", namespace, self.plural, name)

    def list(self, namespace: str | None, **selectors: Any) -> dict[str, Any]:
        """The objects of ``namespace``, or of every namespace if it is None."""
        if namespace is None:
            return self._call("list_cluster_custom_object", self.plural, **selectors)
        return self._call("list_namespaced_custom_object", namespace, self.plural, **selectors)

    def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("create_namespaced_custom_object", namespace, self.plural, body)

    def delete(self, namespace: str, name: str) -> dict[str, Any]:
        return self._call("delete_namespaced_custom_object", namespace, self.plural, name)

    def patch_status(
        self,
        namespace: str,
        name: str,
        status: dict[str, Any],
        *,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """Merge-patch the status subresource.

        With ``resource_version`` the patch is a compare-and-swap: the server applies it only
        if the object is still at that version, and answers 409 (``Conflict``) otherwise.
        """
        body: dict[str, Any] = {"status": status}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        return self._call(
            "patch_namespaced_custom_object_status", namespace, self.plural, name, body,
            _content_type=MERGE_PATCH,
        )

    def patch(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call(
            "patch_namespaced_custom_object", namespace, self.plural, name, body,
            _content_type=MERGE_PATCH,
        )

    def watch(
        self, namespace: str | None, *, resource_version: str, timeout_seconds: int = 300,
        **selectors: Any,
    ) -> Iterator[dict[str, Any]]:
        """Watch events from ``resource_version`` on; raises ``Gone`` when it has expired.

        ``namespace`` None watches every namespace.
        """
        if namespace is None:
            lister, where = self._objects.list_cluster_custom_object, ()
        else:
            lister, where = self._objects.list_namespaced_custom_object, (namespace,)
        stream = watch.Watch().stream(
            lister, api.GROUP, api.VERSION, *where, self.plural,
            resource_version=resource_version,
            timeout_seconds=timeout_seconds,
            allow_watch_bookmarks=True,
            # The server ends the watch after timeout_seconds; a connection that went dead
            # without a reset (a proxy, a lost peer) would otherwise be read from forever.
            _request_timeout=(REQUEST_TIMEOUT[0], timeout_seconds + WATCH_READ_SLACK),
            **selectors,
        )
        try:
            yield from stream
        except ApiException as exc:
            raise translate(exc) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise Unavailable(0, "Unavailable", str(exc)) from exc


def jobs(api_client: client.ApiClient) -> Resource:
    return Resource(api_client, api.JOB_PLURAL)


def graphs(api_client: client.ApiClient) -> Resource:
    return Resource(api_client, api.GRAPH_PLURAL)
