"""The operator's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

transitions = Counter("overseer_operator_transitions",
                      "Job transitions the operator wrote, by the phase written and reason",
                      ["phase", "reason"])
conflicts = Counter("overseer_operator_write_conflicts",
                    "Job writes of the operator that met 409: someone wrote first")
jobs_created = Counter("overseer_operator_jobs_created", "Jobs created from graphs")
graphs = Gauge("overseer_operator_graphs", "Graphs the operator follows, by phase", ["phase"])
jobs = Gauge("overseer_operator_jobs", "Jobs the operator follows, by phase", ["phase"])
queue_depth = Gauge("overseer_operator_eligible_jobs",
                    "Eligible jobs waiting for a runner, by namespace and type",
                    ["namespace", "type"])
runners = Gauge("overseer_operator_live_runners", "Runners with a live Lease, by namespace",
                ["namespace"])
