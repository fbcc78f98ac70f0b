"""The runner process: claims Eligible jobs of its types, runs their handlers, writes outcomes.

Threads, not asyncio: handlers are the user's plain functions and may block on anything.
One thread keeps the queue of Eligible jobs current; the main thread claims jobs while it
has a free slot; a pool of ``concurrency`` threads runs the handlers and writes outcomes.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog

from overseer import kube
from overseer.api import MAX_RESULT_BYTES, JobPhase, job_object_name
from runner.claim import Claim, Claimer, ClaimLost
from runner.context import Job
from runner.outcomes import Aborted, Faulted
from runner.queue import EligibleQueue
from runner.registry import Registry

log = structlog.get_logger("overseer.runner")


def default_identity() -> str:
    """Unique per process: the pod (or host) name and a short random suffix."""
    base = os.environ.get("POD_NAME") or socket.gethostname()
    return f"{base}-{uuid.uuid4().hex[:6]}"


class Runner:
    def __init__(
        self,
        *,
        api_client: Any,
        namespace: str,
        registry: Registry,
        identity: str | None = None,
        concurrency: int = 1,
    ) -> None:
        if not registry:
            raise ValueError("the registry has no handlers: there is no job type to run")
        self.namespace = namespace
        self.registry = registry
        self.identity = identity or default_identity()
        self.concurrency = concurrency
        self.jobs = kube.jobs(api_client)
        self.claimer = Claimer(self.jobs, self.identity)
        self.queue = EligibleQueue()
        self.stopping = threading.Event()
        self._slots = threading.Semaphore(concurrency)
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="handler")
        self.log = log.bind(runner=self.identity, namespace=namespace)

    def run(self) -> None:
        """Claim and run jobs until ``stop`` is called; then let running handlers finish."""
        watcher = threading.Thread(
            target=self.queue.watch_forever,
            args=(self.jobs, self.namespace, list(self.registry), self.stopping),
            name="eligible-watch", daemon=True,
        )
        watcher.start()
        self.log.info("runner.started", types=sorted(self.registry), concurrency=self.concurrency)
        try:
            while not self.stopping.is_set():
                if not self._slots.acquire(timeout=0.5):
                    continue
                body = self.queue.take(timeout=0.5)
                if body is None or self.stopping.is_set():
                    self._slots.release()
                    continue
                claim = self.claimer.claim(body)
                if claim is None:
                    # Another runner was first; the watch drops the job from the queue.
                    self._slots.release()
                    continue
                self._pool.submit(self._attempt, claim)
        finally:
            self._pool.shutdown(wait=True)
            self.log.info("runner.stopped")

    def stop(self) -> None:
        self.stopping.set()

    def _attempt(self, claim: Claim) -> None:
        try:
            self._run_handler(claim)
        finally:
            self._slots.release()

    def _job(self, claim: Claim) -> Job:
        spec = claim.body["spec"]

        def load_results() -> dict[str, Any]:
            return {
                dep: (self.jobs.get(claim.namespace, job_object_name(spec["graph"], dep))
                      .get("status") or {}).get("result")
                for dep in spec.get("dependsOn", ())
            }

        return Job(
            name=spec["name"], type=spec["type"], graph=spec["graph"],
            namespace=claim.namespace, args=spec.get("args") or {}, attempt=claim.attempt,
            runner=self.identity, depends_on=tuple(spec.get("dependsOn", ())),
            _load_results=load_results,
        )

    def _run_handler(self, claim: Claim) -> None:
        job = self._job(claim)
        bound = self.log.bind(graph=job.graph, job=job.name, type=job.type, attempt=job.attempt)
        bound.info("job.started")
        try:
            result = self.registry[job.type](job)
            status = finished_status(result)
        except Aborted as exc:
            status = {"phase": JobPhase.ABORTED, "reason": "Aborted", "message": exc.message,
                      "finishedAt": kube.now()}
        except Faulted as exc:
            status = {"phase": JobPhase.ELIGIBLE, "reason": "Faulted", "message": exc.message,
                      "eligibleAt": kube.now()}
        except Exception as exc:  # noqa: BLE001 - a handler's failure is the job's, not ours
            bound.debug("job.traceback", traceback=traceback.format_exc())
            status = failed_status(type(exc).__name__, str(exc), reason="HandlerError")

        try:
            self.claimer.write_outcome(claim, status)
        except ClaimLost as exc:
            bound.warning("job.claim_lost", dropped=str(status["phase"]), why=str(exc))
            return
        except kube.KubeError as exc:
            bound.error("job.outcome_write_failed", phase=str(status["phase"]), error=str(exc))
            return
        event = "job." + str(status["phase"]).lower()
        if status["phase"] == JobPhase.FINISHED:
            bound.info(event)
        else:
            bound.warning(event, reason=status.get("reason"), message=status.get("message"))


def failed_status(error_type: str, message: str, *, reason: str) -> dict[str, Any]:
    return {
        "phase": JobPhase.FAILED,
        "reason": reason,
        "message": f"{error_type}: {message}" if message else error_type,
        "error": {"type": error_type, "message": message},
        "finishedAt": kube.now(),
    }


def finished_status(result: Any) -> dict[str, Any]:
    """The Finished status for ``result``, or Failed if it cannot be stored as the result."""
    try:
        size = len(json.dumps(result, separators=(",", ":")).encode())
    except (TypeError, ValueError) as exc:
        return failed_status("ResultNotSerializable",
                             f"the handler's return value is not JSON: {exc}",
                             reason="ResultNotSerializable")
    if size > MAX_RESULT_BYTES:
        return failed_status(
            "ResultTooLarge",
            f"the handler returned {size} bytes of JSON; a result may be at most "
            f"{MAX_RESULT_BYTES} bytes (store big outputs elsewhere and return a reference)",
            reason="ResultTooLarge",
        )
    return {"phase": JobPhase.FINISHED, "result": result, "reason": None, "message": None,
            "error": None, "finishedAt": kube.now()}
