"""The claim protocol: how a runner takes a job, and how it writes the outcome.

A claim is a status patch setting ``Started``, the runner's identity and a fresh claim
token, preconditioned on the ``resourceVersion`` at which the runner saw the job Eligible.
Of many runners racing for one job exactly one patch succeeds; the others get 409 and
pick another job, which is normal and not an error.

The outcome is written the same way, on the resourceVersion the claim produced. If that
meets a 409, the runner re-reads the job and writes again only if the claim token is still
its own. A job whose claim was taken over (say the operator judged this runner dead and
handed the job to another) keeps the new attempt's outcome: the old runner drops its result
and says so in its log.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import structlog

from overseer import kube
from overseer.api import JobPhase

log = structlog.get_logger("overseer.runner")

# Re-reads after a 409 on the outcome before giving up; each is caused by a write of
# someone else, and the operator writes a Started job at most once or twice.
OUTCOME_RETRIES = 5
# While the API server cannot be reached, the outcome is written again with this backoff.
# It is kept until it is written or the claim is lost: once the runner's Lease lapses, the
# operator hands the job to another runner and the next try finds the claim gone.
UNAVAILABLE_BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0)


@dataclass
class Claim:
    """A job this runner holds: the object as the claim left it, and the claim's token."""

    body: dict[str, Any]
    token: str

    @property
    def namespace(self) -> str:
        return self.body["metadata"]["namespace"]

    @property
    def object_name(self) -> str:
        return self.body["metadata"]["name"]

    @property
    def resource_version(self) -> str:
        return self.body["metadata"]["resourceVersion"]

    @property
    def attempt(self) -> int:
        return self.body["status"]["attempt"]


def claim_status(runner: str, token: str, attempt: int) -> dict[str, Any]:
    """The status patch of a claim: Started, by ``runner``, under ``token``."""
    return {"phase": JobPhase.STARTED, "runner": runner, "claim": token, "attempt": attempt,
            "startedAt": kube.now(), "reason": None, "message": None}


class ClaimLost(Exception):
    """The job is no longer held by this claim; its outcome was not written."""


class Claimer:
    def __init__(self, jobs: kube.Resource, runner: str) -> None:
        self.jobs = jobs
        self.runner = runner

    def claim(self, body: dict[str, Any]) -> Claim | None:
        """Claim the Eligible job ``body`` as seen; None if another runner was faster."""
        meta, status = body["metadata"], body.get("status") or {}
        token = uuid.uuid4().hex
        try:
            claimed = self.jobs.patch_status(
                meta["namespace"], meta["name"],
                claim_status(self.runner, token, status.get("attempt", 0) + 1),
                resource_version=meta["resourceVersion"],
            )
        except (kube.Conflict, kube.NotFound):
            return None
        return Claim(body=claimed, token=token)

    def write_outcome(self, claim: Claim, status: dict[str, Any]) -> dict[str, Any]:
        """Write the outcome of the attempt ``claim`` holds; raise ``ClaimLost`` if it lost it."""
        version = claim.resource_version
        conflicts = unavailable = 0
        while conflicts < OUTCOME_RETRIES:
            try:
                return self.jobs.patch_status(
                    claim.namespace, claim.object_name, status, resource_version=version
                )
            except kube.NotFound as exc:
                raise ClaimLost("the job was deleted") from exc
            except kube.Unavailable as exc:
                delay = UNAVAILABLE_BACKOFF[min(unavailable, len(UNAVAILABLE_BACKOFF) - 1)]
                unavailable += 1
                log.warning("job.outcome_write_retry", job=claim.object_name, error=str(exc),
                            retry_in=delay)
                time.sleep(delay)
                continue
            except kube.Conflict:
                conflicts += 1
                try:
                    current = self.jobs.get(claim.namespace, claim.object_name)
                except kube.Unavailable:
                    continue
                held = (current.get("status") or {}).get("claim")
                if held != claim.token:
                    raise ClaimLost(
                        f"the job was claimed again by "
                        f"{(current.get('status') or {}).get('runner') or 'someone else'}"
                    ) from None
                version = current["metadata"]["resourceVersion"]
        raise ClaimLost(f"the job kept changing under {OUTCOME_RETRIES} writes")
