"""List, then watch from the listing's resourceVersion, for as long as it is wanted.

The loop every follower of Jobs needs (the operator's index, a runner's queue of Eligible
jobs): a listing gives the complete state and a version; the watch gives every change
after it. When the version has expired (410 Gone) or the stream failed, the loop lists
again, and the listing replaces what was known. It runs in a thread of its own and never
gives up: a failure is logged and retried with a capped backoff.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import structlog

from overseer import kube

log = structlog.get_logger("overseer.watch")

# Seconds a watch request lasts before it is renewed from the last version seen; the API
# server ends watches itself after a while, this only keeps them from hanging for ever.
WATCH_SECONDS = 60


def list_and_watch(
    resource: kube.Resource,
    namespace: str | None,
    *,
    on_list: Callable[[list[dict[str, Any]], str], None],
    on_event: Callable[[str, dict[str, Any]], None],
    stop: threading.Event,
    name: str,
    **selectors: Any,
) -> None:
    """Follow ``resource`` in ``namespace`` (None: every namespace) until ``stop`` is set.

    ``on_list(items, resource_version)`` is called with each complete listing, and
    ``on_event(type, body)`` with every ADDED, MODIFIED and DELETED event after it.
    """
    failures = 0
    where = namespace or "*"
    while not stop.is_set():
        try:
            listing = resource.list(namespace, **selectors)
            version = listing["metadata"]["resourceVersion"]
            on_list(listing.get("items", []), version)
            failures = 0
            while not stop.is_set():
                for event in resource.watch(namespace, resource_version=version,
                                            timeout_seconds=WATCH_SECONDS, **selectors):
                    body = event["object"]
                    version = body["metadata"]["resourceVersion"]
                    if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        on_event(event["type"], body)
                    if stop.is_set():
                        return
        except kube.Gone:
            log.debug("watch.expired", watch=name, namespace=where)
        except Exception as exc:  # noqa: BLE001 - a watch must outlive any one failure
            failures += 1
            delay = min(30.0, 0.5 * 2 ** min(failures, 6))
            log.warning("watch.failed", watch=name, namespace=where, error=str(exc),
                        retry_in=delay)
            stop.wait(delay)
