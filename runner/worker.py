"""The runner process: claims Eligible jobs of its types, runs their handlers, writes outcomes.

Threads, not asyncio: handlers are the user's plain functions and may block on anything.
One thread keeps the queue of Eligible jobs current, another polls the jobs this runner
holds (to hear of cancellation), another renews the runner's Lease. The main thread claims
jobs while it has a free slot, and each claimed job gets a supervising thread that runs the
handler as an ``Attempt``, enforces its timeout and writes its outcome.

On SIGTERM the runner stops claiming, gives running handlers the grace period to finish,
hands back (Eligible, not Failed) the ones that do not, and deletes its Lease.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any

import structlog

from overseer import kube
from overseer.api import job_object_name
from runner import metrics, outcomes
from runner.attempt import Attempt, Cancelled, Interrupted, TimedOut
from runner.claim import Claim, Claimer, ClaimLost
from runner.context import Job
from runner.lease import RunnerLease
from runner.queue import EligibleQueue
from runner.registry import Registry

log = structlog.get_logger("overseer.runner")

# How often a supervisor looks at its attempt's deadline and cancellation flags. The end
# of a handler wakes it at once; this only bounds how late a timeout is noticed.
SUPERVISE_TICK = 0.2
# How often the runner looks for cancellation of the jobs it holds (``_poll_held``).
HELD_POLL = 1.0


def default_identity() -> str:
    """Unique per process: the pod (or host) name and a short random suffix."""
    base = (os.environ.get("POD_NAME") or socket.gethostname()).lower()
    return f"{base}-{uuid.uuid4().hex[:6]}"


@dataclass
class Held:
    """A job this runner holds, with what may end its attempt early."""

    claim: Claim
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None


class Runner:
    def __init__(
        self,
        *,
        api_client: Any,
        namespace: str,
        registry: Registry,
        identity: str | None = None,
        concurrency: int = 1,
        grace_period: float = 25.0,
        lease_duration: int = 15,
        lease_renew_every: float = 5.0,
    ) -> None:
        if not registry:
            raise ValueError("the registry has no handlers: there is no job type to run")
        self.namespace = namespace
        self.registry = registry
        self.identity = identity or default_identity()
        self.concurrency = concurrency
        self.grace_period = grace_period
        self.jobs = kube.jobs(api_client)
        self.claimer = Claimer(self.jobs, self.identity)
        self.queue = EligibleQueue()
        self.lease = RunnerLease(
            api_client, namespace=namespace, identity=self.identity, types=list(registry),
            duration=lease_duration, renew_every=lease_renew_every,
        )
        self.stopping = threading.Event()
        self._stop_watching = threading.Event()  # set once jobs are handed back
        self._abandon = threading.Event()   # set when the grace period is over
        self._slots = threading.Semaphore(concurrency)
        self._held: dict[str, Held] = {}
        self._held_lock = threading.Lock()
        self.log = log.bind(runner=self.identity, namespace=namespace)

    # --- the main loop

    def run(self) -> None:
        """Claim and run jobs until ``stop`` is called; then shut down gracefully."""
        self.lease.acquire()
        self._hand_back_leftovers()
        for target, name in ((self._watch_eligible, "eligible-watch"),
                             (self._poll_held, "held-poll")):
            threading.Thread(target=target, name=name, daemon=True).start()
        self.log.info("runner.started", types=sorted(self.registry), concurrency=self.concurrency)
        next_gauges = 0.0
        try:
            while not self.stopping.is_set():
                if time.monotonic() >= next_gauges:
                    next_gauges = time.monotonic() + 1.0
                    for job_type, depth in self.queue.depth_by_type(self.registry).items():
                        metrics.queue_depth.labels(job_type).set(depth)
                if not self._slots.acquire(timeout=0.5):
                    continue
                body = self.queue.take(timeout=0.5)
                if body is None or self.stopping.is_set():
                    self._slots.release()
                    continue
                try:
                    claim = self.claimer.claim(body)
                except kube.KubeError as exc:
                    # The API server is away (restarting, say). Nothing was claimed; the
                    # watch relists when it is back.
                    self.log.warning("job.claim_failed", job=body["metadata"]["name"],
                                     error=str(exc))
                    self._slots.release()
                    self.stopping.wait(1.0)
                    continue
                if claim is None:
                    # Another runner was first; the watch drops the job from the queue.
                    metrics.claims.labels("conflict").inc()
                    self._slots.release()
                    continue
                metrics.claims.labels("won").inc()
                self._observe_handoff(claim)
                self._hold(claim)
        finally:
            self._shut_down()

    def _hand_back_leftovers(self) -> None:
        """Jobs Started under this identity by an earlier life of this runner go back.

        With a fixed ``--identity`` a restarted runner renews the same Lease, so the
        operator never sees the old process die; the jobs it held are handed back here.
        """
        leftovers = self.jobs.list(self.namespace, field_selector=(
            f"status.runner={self.identity},status.phase=Started"))["items"]
        for body in leftovers:
            try:
                self.jobs.patch_status(
                    self.namespace, body["metadata"]["name"],
                    outcomes.handed_back("RunnerRestarted",
                                         f"runner {self.identity} restarted while running it"),
                    resource_version=body["metadata"]["resourceVersion"])
            except (kube.Conflict, kube.NotFound):
                continue
            self.log.warning("job.handed_back", job=body["spec"]["name"],
                             graph=body["spec"]["graph"], reason="RunnerRestarted")

    def stop(self) -> None:
        """Stop claiming; ``run`` then lets running handlers finish and returns."""
        self.stopping.set()

    def _shut_down(self) -> None:
        held = self._held_now()
        if held:
            self.log.info("runner.draining", running=len(held), grace_period=self.grace_period)
        deadline = time.monotonic() + self.grace_period
        for h in held:
            if h.thread is not None:
                h.thread.join(max(0.0, deadline - time.monotonic()))
        self._abandon.set()
        for h in self._held_now():
            if h.thread is not None:
                h.thread.join(10)
        self._stop_watching.set()
        self.lease.release()
        self.log.info("runner.stopped")

    @staticmethod
    def _observe_handoff(claim: Claim) -> None:
        status = claim.body.get("status") or {}
        if status.get("eligibleAt") and status.get("startedAt"):
            waited = (kube.parse_time(status["startedAt"])
                      - kube.parse_time(status["eligibleAt"])).total_seconds()
            metrics.eligible_to_started.labels(claim.body["spec"]["type"]).observe(max(0, waited))

    def _held_now(self) -> list[Held]:
        with self._held_lock:
            return list(self._held.values())

    def _hold(self, claim: Claim) -> None:
        held = Held(claim)
        held.thread = threading.Thread(target=self._supervise, args=(held,),
                                       name=f"supervise-{claim.object_name}", daemon=True)
        with self._held_lock:
            self._held[claim.object_name] = held
        held.thread.start()

    # --- watches

    def _watch_eligible(self) -> None:
        self.queue.watch_forever(self.jobs, self.namespace, list(self.registry),
                                 self._stop_watching)

    def _poll_held(self) -> None:
        """Look at the jobs this runner holds every ``HELD_POLL`` s, for cancellation.

        A poll, not a watch: a watch on ``status.runner`` would carry every claim and
        outcome of this runner back to it (two events per job for nothing), while a
        cancellation is rare and a second's delay in noticing it costs nothing. The list is
        answered from the API server's cache (resourceVersion 0), and only while jobs are held.
        """
        selector = f"status.runner={self.identity},status.phase=Started"
        while not self._stop_watching.wait(HELD_POLL):
            if not self._held_now():
                continue
            try:
                items = self.jobs.list(self.namespace, field_selector=selector,
                                       resource_version="0")["items"]
            except kube.KubeError as exc:
                self.log.warning("held.poll_failed", error=str(exc))
                continue
            for body in items:
                status = body.get("status") or {}
                if not status.get("cancelRequested"):
                    continue
                with self._held_lock:
                    held = self._held.get(body["metadata"]["name"])
                if held is not None and status.get("claim") == held.claim.token:
                    held.cancel.set()

    # --- one attempt

    def _job(self, claim: Claim, stopping: threading.Event) -> Job:
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
            stopping=stopping, _load_results=load_results,
        )

    def _supervise(self, held: Held) -> None:
        claim = held.claim
        try:
            stopping = threading.Event()
            job = self._job(claim, stopping)
            bound = self.log.bind(graph=job.graph, job=job.name, type=job.type,
                                  attempt=job.attempt)
            bound.info("job.started")
            metrics.running.inc()
            began = time.monotonic()
            try:
                status = self._run_attempt(job, claim, held, stopping, bound)
            finally:
                metrics.running.dec()
                metrics.handler_seconds.labels(job.type).observe(time.monotonic() - began)
            outcome = self._write(claim, status, bound)
            metrics.jobs.labels(job.type, outcome).inc()
        finally:
            with self._held_lock:
                self._held.pop(claim.object_name, None)
            self._slots.release()

    def _run_attempt(self, job: Job, claim: Claim, held: Held, stopping: threading.Event,
                     bound: Any) -> dict[str, Any]:
        spec = claim.body["spec"]
        timeout = spec.get("timeoutSeconds")
        attempt = Attempt(self.registry[job.type], job).start()
        deadline = time.monotonic() + timeout if timeout else None

        # Wait for the handler, or for the first reason to stop it early.
        while not attempt.wait(SUPERVISE_TICK):
            if deadline is not None and time.monotonic() >= deadline:
                stopping.set()
                attempt.interrupt(TimedOut)
                return outcomes.failed(
                    "Timeout", f"the handler ran longer than timeoutSeconds ({timeout}s)",
                    reason="Timeout", spec=spec, attempt=job.attempt)
            if held.cancel.is_set():
                stopping.set()
                attempt.interrupt(Cancelled)
                return outcomes.aborted("cancelled with its graph while running")
            if self._abandon.is_set():
                stopping.set()
                attempt.interrupt(Interrupted)
                return outcomes.handed_back(
                    "RunnerStopped",
                    f"runner {self.identity} shut down before the handler finished; "
                    "handed back to be run again")

        error = attempt.result.error
        if error is None:
            return outcomes.finished(attempt.result.value, spec=spec, attempt=job.attempt)
        if isinstance(error, outcomes.Aborted):
            return outcomes.aborted(error.message)
        if isinstance(error, outcomes.Faulted):
            return outcomes.faulted(error.message, spec=spec, attempt=job.attempt)
        if isinstance(error, Cancelled):
            return outcomes.aborted("cancelled with its graph while running")
        bound.debug("job.traceback", traceback="".join(
            traceback.format_exception(type(error), error, error.__traceback__)))
        return outcomes.failed(type(error).__name__, str(error), reason="HandlerError",
                               spec=spec, attempt=job.attempt)

    def _write(self, claim: Claim, status: dict[str, Any], bound: Any) -> str:
        """Write the attempt's outcome; say how it ended, for the metrics."""
        try:
            self.claimer.write_outcome(claim, status)
        except ClaimLost as exc:
            bound.warning("job.claim_lost", dropped=str(status["phase"]), why=str(exc))
            return "claim_lost"
        except kube.KubeError as exc:
            # Refused (400, 413, 422: the outcome itself is bad). Left alone the job would
            # stay Started for ever under a live runner; fail it with the reason instead.
            bound.error("job.outcome_rejected", phase=str(status["phase"]), error=str(exc))
            try:
                self.claimer.write_outcome(claim, outcomes.rejected(str(exc)))
            except (ClaimLost, kube.KubeError) as again:
                bound.error("job.outcome_write_failed", error=str(again))
                return "write_failed"
            return "outcome_rejected"
        event = "job." + str(status["phase"]).lower()
        if status["phase"] == "Finished":
            bound.info(event)
            return "finished"
        bound.warning(event, reason=status.get("reason"), message=status.get("message"))
        return str(status.get("reason") or status["phase"]).lower()
