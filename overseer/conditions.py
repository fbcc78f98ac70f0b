"""Conditions as the Kubernetes API conventions describe them.

A condition's ``lastTransitionTime`` changes only when its status does, so that
``kubectl wait --for=condition=X`` and people reading it see when a thing actually changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from overseer.kube import now


def condition(
    type_: str, ok: bool, *, reason: str, message: str = "", generation: int | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": type_, "status": "True" if ok else "False", "reason": reason, "message": message,
    }
    if generation is not None:
        out["observedGeneration"] = generation
    return out


def merge(
    previous: Iterable[Mapping[str, Any]], updates: Iterable[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The conditions after ``updates``, keeping each one's transition time if its status holds."""
    by_type = {c["type"]: dict(c) for c in previous}
    for update in updates:
        before = by_type.get(update["type"])
        if before is not None and before.get("status") == update["status"]:
            update["lastTransitionTime"] = before.get("lastTransitionTime") or now()
        else:
            update["lastTransitionTime"] = now()
        by_type[update["type"]] = update
    return list(by_type.values())


def job_ended(*, finished: bool, reason: str, message: str = "") -> list[dict[str, Any]]:
    """The conditions of a Job that has ended: ``Complete`` or ``Failed``.

    A Job has conditions only once it ended, so they are written with the transition that
    ends it, at no extra write; ``kubectl wait --for=condition=Complete ojob/NAME`` works.
    """
    stamp = now()
    return [
        {"type": "Complete", "status": "True" if finished else "False", "reason": reason,
         "message": message, "lastTransitionTime": stamp},
        {"type": "Failed", "status": "False" if finished else "True", "reason": reason,
         "message": message, "lastTransitionTime": stamp},
    ]


def ended_status(
    phase: str, *, reason: str | None, message: str | None = None,
    condition_reason: str | None = None, **fields: Any,
) -> dict[str, Any]:
    """The status patch that ends a Job in ``phase``: Finished, Failed or Aborted.

    Runner and operator both end Jobs; this is the one shape they write, with the end
    time, no pending retry, and the conditions, plus any ``fields`` of their own.
    """
    finished = phase == "Finished"
    return {
        "phase": phase, "reason": reason, "message": message, "nextAttemptAt": None,
        "finishedAt": now(), **fields,
        "conditions": job_ended(finished=finished, reason=condition_reason or reason or phase,
                                message=message or ""),
    }
