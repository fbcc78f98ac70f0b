"""Kubernetes Events on the transitions a user cares about, rate-limited.

An Event is a write to the API server, whose write rate is the ceiling of the whole system;
a graph of ten thousand jobs that all fail must not post ten thousand Events. Each reason
gets a budget per time window; what goes over it is counted and said in the next Event of
that reason that gets through.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from controller.writer import Writer
from overseer import kube
from overseer.api import API_VERSION

log = structlog.get_logger("overseer.operator")


@dataclass
class _Window:
    started: float
    posted: int = 0
    suppressed: int = 0


class EventPoster:
    """Posts core/v1 Events through the operator's writer, without waiting for them.

    The operator's own tasks (status, housekeeping) run outside kopf's handler context,
    where ``kopf.event`` has no queue to post to, so Events are written here directly.
    """

    def __init__(self, writer: Writer, *, per_reason: int = 10, window: float = 60.0) -> None:
        self.writer = writer
        self._events = kube.events(writer.api_client)
        self.per_reason = per_reason
        self.window = window
        self._windows: dict[str, _Window] = {}
        self._instance = socket.gethostname()

    def post(self, obj: Mapping[str, Any], *, reason: str, message: str,
             warning: bool = False) -> bool:
        """Post an Event about ``obj`` unless ``reason`` is over its budget; whether it did."""
        now = time.monotonic()
        window = self._windows.get(reason)
        if window is None or now - window.started >= self.window:
            window = self._windows[reason] = _Window(started=now)
        if window.posted >= self.per_reason:
            window.suppressed += 1
            return False
        if window.suppressed:
            message += f" ({window.suppressed} more {reason} events were not posted)"
            window.suppressed = 0
        window.posted += 1
        asyncio.ensure_future(self._create(obj, reason=reason, message=message,
                                           kind="Warning" if warning else "Normal"))
        return True

    async def _create(self, obj: Mapping[str, Any], *, reason: str, message: str, kind: str
                      ) -> None:
        meta = obj["metadata"]
        stamp = kube.now()
        body = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
                               "name": meta["name"], "namespace": meta["namespace"],
                               "uid": meta.get("uid")},
            "reason": reason, "message": message[:1024], "type": kind, "count": 1,
            "firstTimestamp": stamp, "lastTimestamp": stamp,
            "source": {"component": "overseer-operator"},
            "reportingComponent": "overseer.dev/operator", "reportingInstance": self._instance,
        }
        try:
            await self.writer.run(self._events.create, meta["namespace"], body)
        except kube.KubeError as exc:
            log.warning("event.post_failed", reason=reason, error=str(exc))


def job_ref(namespace: str, name: str, uid: str | None) -> dict[str, Any]:
    """Enough of a Job to post an Event about it."""
    return {"apiVersion": API_VERSION, "kind": "Job",
            "metadata": {"namespace": namespace, "name": name, "uid": uid}}
