"""How an attempt ends, and the status the runner writes for it.

A handler ends its attempt by returning (Finished, with the value as the result), by
raising (Failed, or Eligible again while retries remain), or by calling ``abort`` (Aborted,
and the operator aborts every job that depends on it) or ``fault`` (Eligible again after a
delay: not the job's fault, try later).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from overseer import conditions, kube
from overseer.api import MAX_RESULT_BYTES, Backoff, JobPhase


class JobOutcome(Exception):
    """Raised by a handler to end its attempt in a chosen way."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class Aborted(JobOutcome):
    """The job ends Aborted, and so does every job that depends on it."""


class Faulted(JobOutcome):
    """The attempt is given back: the job becomes Eligible again after a delay."""


def abort(message: str = "") -> None:
    """End this job as Aborted; the operator then aborts every job that depends on it."""
    raise Aborted(message)


def fault(message: str = "") -> None:
    """Hand this job back to be tried again later; it counts as an attempt."""
    raise Faulted(message)


def _later(seconds: float) -> str:
    when = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    return when.isoformat(timespec="microseconds").replace("+00:00", "Z")


def finished(result: Any, *, spec: dict[str, Any], attempt: int) -> dict[str, Any]:
    """Finished with ``result``; Failed instead if it cannot be stored as the result."""
    try:
        # As the API server will store it: strict JSON (no NaN), sized in UTF-8.
        size = len(json.dumps(result, separators=(",", ":"), allow_nan=False,
                              ensure_ascii=False).encode())
    except (TypeError, ValueError) as exc:
        return failed("ResultNotSerializable", f"the handler's return value is not JSON: {exc}",
                      reason="ResultNotSerializable", spec=spec, attempt=attempt, retry=False)
    if size > MAX_RESULT_BYTES:
        return failed(
            "ResultTooLarge",
            f"the handler returned {size} bytes of JSON; a result may be at most "
            f"{MAX_RESULT_BYTES} bytes (store big outputs elsewhere and return a reference)",
            reason="ResultTooLarge", spec=spec, attempt=attempt, retry=False,
        )
    return conditions.ended_status(JobPhase.FINISHED, reason=None, result=result, error=None)


def failed(
    error_type: str, message: str, *, reason: str, spec: dict[str, Any], attempt: int,
    retry: bool = True,
) -> dict[str, Any]:
    """Failed, or Eligible for another attempt after the backoff while retries remain."""
    message = truncate(message)
    error = {"type": error_type, "message": message}
    text = f"{error_type}: {message}" if message else error_type
    retries = int(spec.get("retries") or 0)
    if retry and attempt <= retries:
        delay = Backoff.model_validate(spec.get("backoff") or {}).delay(attempt)
        return {
            "phase": JobPhase.ELIGIBLE,
            "reason": "Retrying",
            "message": f"attempt {attempt} of {retries + 1} failed ({text}); "
            f"retrying in {delay:g}s",
            "error": error,
            "eligibleAt": kube.now(),
            "nextAttemptAt": _later(delay),
        }
    tried = f" after {attempt} attempts" if attempt > 1 else ""
    return conditions.ended_status(JobPhase.FAILED, reason=reason, message=text + tried,
                                   error=error)


# An exception's message goes into the Job's status twice (message and error); a handler
# that raises with megabytes of text must not make that write fail.
MAX_MESSAGE = 1024


def truncate(message: str) -> str:
    if len(message) <= MAX_MESSAGE:
        return message
    return f"{message[:MAX_MESSAGE]}... ({len(message) - MAX_MESSAGE} more characters)"


def rejected(error: str) -> dict[str, Any]:
    """Failed, because the API server refused the outcome the handler produced."""
    message = truncate(f"the API server refused the job's outcome: {error}")
    return conditions.ended_status(
        JobPhase.FAILED, reason="OutcomeRejected", message=message, result=None,
        error={"type": "OutcomeRejected", "message": message})


def aborted(message: str) -> dict[str, Any]:
    return conditions.ended_status(JobPhase.ABORTED, reason="Aborted", message=truncate(message))


def faulted(message: str, *, spec: dict[str, Any], attempt: int) -> dict[str, Any]:
    delay = Backoff.model_validate(spec.get("backoff") or {}).delay(attempt)
    return {
        "phase": JobPhase.ELIGIBLE,
        "reason": "Faulted",
        "message": f"{message or 'the handler called fault()'}; retrying in {delay:g}s",
        "eligibleAt": kube.now(),
        "nextAttemptAt": _later(delay),
    }


def handed_back(reason: str, message: str) -> dict[str, Any]:
    """Eligible again, now, because the runner let go of it (shutting down, say)."""
    return {"phase": JobPhase.ELIGIBLE, "reason": reason, "message": message,
            "eligibleAt": kube.now()}
