"""Access to the Kubernetes API for the operator, the runner and the command line.

One thin layer over the official client: it loads the configuration (in a pod or from a
kubeconfig), keeps one connection pool sized for concurrent callers, and turns failed
requests into the few errors Overseer decides on (a 409 means someone else wrote first; a
404 means the object is gone). Overseer's own resources and Events are read and written
through the client's connection pool directly (``Resource``); Leases through its typed API.

Bodies are plain dicts: the client's model classes do not cover custom resources, and
skipping their deserialisation keeps the hot paths cheap.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlencode

import urllib3
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from overseer import api

MERGE_PATCH = "application/merge-patch+json"
# One field manager for every Overseer process: the fields of a Job are "overseer's".
USER_AGENT = "overseer"
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


def failure(status: int, reason: str, body: bytes | str | dict[str, Any] | None) -> KubeError:
    """The Overseer error for an answer of ``status``, with the server's own message.

    The API server answers a failed request with a Status object (``body``, as text or
    parsed) whose ``message`` says what went wrong; anything else in between (a proxy)
    may answer with plain text.
    """
    message = ""
    try:
        message = (body if isinstance(body, dict) else json.loads(body or "")).get("message", "")
    except (TypeError, ValueError, AttributeError):
        if body:
            message = (body.decode(errors="replace") if isinstance(body, bytes) else body)[:1000]
    return _BY_STATUS.get(status, KubeError)(status, reason, message or reason)


def translate(exc: ApiException) -> KubeError:
    """The Overseer error for the client's ``ApiException`` (its typed APIs: Leases)."""
    return failure(exc.status or 0, exc.reason or "", exc.body)


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
    """A kind of resource (Overseer's own unless told otherwise), bound to an API client.

    Requests go straight to the client's connection pool, with its host, certificates and
    credentials, instead of through the generated ``CustomObjectsApi``: that validates
    every call's arguments with pydantic and walks every body twice, which cost more
    Python time than the request itself on the paths every job takes (a create, a claim,
    an outcome, the operator's Eligible).
    """

    api_client: client.ApiClient
    plural: str
    # The API group and version; the core group ("") is served under /api.
    group: str = api.GROUP
    version: str = api.VERSION

    def _path(self, namespace: str | None, name: str = "", subresource: str = "") -> str:
        where = f"/namespaces/{quote(namespace, safe='')}" if namespace is not None else ""
        root = f"/apis/{self.group}" if self.group else "/api"
        path = f"{root}/{self.version}{where}/{self.plural}"
        if name:
            path += f"/{quote(name, safe='')}"
        if subresource:
            path += f"/{subresource}"
        return path

    def _request(
        self, method: str, path: str, *, query: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None, content_type: str = "application/json",
        timeout: tuple[float, float] = REQUEST_TIMEOUT, stream: bool = False,
    ) -> Any:
        """One request; the parsed JSON answer, or with ``stream`` the open response."""
        configuration = self.api_client.configuration
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        # A bearer token (in a pod: the service account's, re-read as it is rotated).
        for auth in configuration.auth_settings().values():
            if auth["in"] == "header" and auth["value"]:
                headers[auth["key"]] = auth["value"]
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body, separators=(",", ":"), allow_nan=False)
        url = configuration.host + path
        if query:
            url += "?" + urlencode({k: _query_value(v) for k, v in query.items() if v is not None})
        try:
            response = self.api_client.rest_client.pool_manager.request(
                method, url, body=data, headers=headers, preload_content=not stream,
                timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]),
            )
        except urllib3.exceptions.HTTPError as exc:
            raise Unavailable(0, "Unavailable", str(exc)) from exc
        if not 200 <= response.status <= 299:
            raise failure(response.status, response.reason or "", response.data)
        return response if stream else _parsed(response.data, url)

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        return self._request("GET", self._path(namespace, name))

    def list(self, namespace: str | None, **selectors: Any) -> dict[str, Any]:
        """The objects of ``namespace``, or of every namespace if it is None.

        ``selectors`` are the list's query parameters in Python's spelling:
        ``label_selector``, ``field_selector``, ``resource_version``, ``limit``.
        """
        return self._request("GET", self._path(namespace), query=_query(selectors))

    def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", self._path(namespace), body=body)

    def delete(self, namespace: str, name: str) -> dict[str, Any]:
        return self._request("DELETE", self._path(namespace, name))

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
        return self._request("PATCH", self._path(namespace, name, "status"), body=body,
                             content_type=MERGE_PATCH)

    def patch(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("PATCH", self._path(namespace, name), body=body,
                             content_type=MERGE_PATCH)

    def watch(
        self, namespace: str | None, *, resource_version: str, timeout_seconds: int = 300,
        **selectors: Any,
    ) -> Iterator[dict[str, Any]]:
        """Watch events from ``resource_version`` on; raises ``Gone`` when it has expired.

        ``namespace`` None watches every namespace. Each event is a dict with ``type``
        (ADDED, MODIFIED, DELETED or BOOKMARK) and ``object``, the body as a plain dict.
        """
        query = _query({**selectors, "watch": True, "resource_version": resource_version,
                        "timeout_seconds": timeout_seconds, "allow_watch_bookmarks": True})
        response = self._request(
            "GET", self._path(namespace), query=query, stream=True,
            # The server ends the watch after timeout_seconds; a connection that went dead
            # without a reset (a proxy, a lost peer) would otherwise be read from forever.
            timeout=(REQUEST_TIMEOUT[0], timeout_seconds + WATCH_READ_SLACK),
        )
        try:
            yield from _events(response)
        except urllib3.exceptions.HTTPError as exc:
            raise Unavailable(0, "Unavailable", str(exc)) from exc
        finally:
            response.release_conn()


def _query(selectors: dict[str, Any]) -> dict[str, Any]:
    """Query parameters in the API's spelling: ``label_selector`` is ``labelSelector``."""
    def camel(name: str) -> str:
        head, *rest = name.split("_")
        return head + "".join(word.title() for word in rest)
    return {camel(k): v for k, v in selectors.items()}


def _query_value(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _parsed(data: bytes, where: str) -> Any:
    """The JSON document ``data``; ``Unavailable`` if it is not one.

    A successful answer that is not JSON did not come from the API server (a proxy's or a
    captive portal's page): as good as no answer at all.
    """
    try:
        return json.loads(data)
    except ValueError:
        text = data.decode(errors="replace").strip()[:200]
        raise Unavailable(0, "NotJSON", f"{where} answered with something that is not "
                          f"JSON: {text!r}") from None


def _events(response: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """The events of a watch response, one JSON document a line, each parsed once.

    The client's own ``Watch.stream`` parses every event, encodes its object again and
    parses that a second time; the operator and every runner read several events per job,
    so here each line is parsed once and the object stays a plain dict.
    """
    for line in response:
        if not line.strip():
            continue
        event = _parsed(line, "the watch")
        if event.get("type") == "ERROR":
            # The server ends a watch it cannot serve with a Status object, in the stream
            # (most often 410: the version asked for has been compacted away).
            status = event.get("object") or {}
            raise failure(int(status.get("code") or 0), status.get("reason") or "", status)
        yield event


def jobs(api_client: client.ApiClient) -> Resource:
    return Resource(api_client, api.JOB_PLURAL)


def graphs(api_client: client.ApiClient) -> Resource:
    return Resource(api_client, api.GRAPH_PLURAL)


def events(api_client: client.ApiClient) -> Resource:
    """Core v1 Events, which the operator posts about graphs and Jobs."""
    return Resource(api_client, "events", group="", version="v1")
