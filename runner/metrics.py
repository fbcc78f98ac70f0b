"""The runner's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Handlers of short jobs: most finish in milliseconds, some take minutes.
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
                    300, 900, 3600)
# From Eligible to Started: the hand-off Overseer promises to keep in milliseconds.
HANDOFF_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60)

jobs = Counter("overseer_runner_jobs", "Attempts by job type and how they ended",
               ["type", "outcome"])
handler_seconds = Histogram("overseer_runner_handler_duration_seconds",
                            "Time a handler ran, per attempt", ["type"],
                            buckets=DURATION_BUCKETS)
claims = Counter("overseer_runner_claims", "Claims by result: won, or conflict (another "
                 "runner was first)", ["result"])
eligible_to_started = Histogram("overseer_runner_eligible_to_started_seconds",
                                "From a job becoming Eligible to this runner starting it",
                                ["type"], buckets=HANDOFF_BUCKETS)
running = Gauge("overseer_runner_running_handlers", "Handlers running now")
queue_depth = Gauge("overseer_runner_queue_depth",
                    "Eligible jobs this runner could claim, by type", ["type"])
