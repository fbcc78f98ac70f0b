"""The resource shapes of Overseer: JobGraph and Job, as pydantic models.

These models are the one source of truth for the resources. The CustomResourceDefinitions
in ``crds/`` are generated from them (``python -m overseer.crdgen``), the operator and the
runner parse what they read with them, and the graph builder writes manifests with them.

Field names are the camelCase of the Kubernetes API conventions on the wire and snake_case
in Python; ``model_dump(by_alias=True)`` gives the wire form.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP: Final = "overseer.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
CATEGORY: Final = "overseer"

GRAPH_PLURAL: Final = "jobgraphs"
JOB_PLURAL: Final = "jobs"

# Labels the operator puts on every Job, so that runners and people can select them.
GRAPH_LABEL: Final = f"{GROUP}/graph"
TYPE_LABEL: Final = f"{GROUP}/type"
# On each runner's Lease: the label that finds them, the annotation naming its job types.
RUNNER_LABEL: Final = f"{GROUP}/runner"
RUNNER_TYPES_ANNOTATION: Final = f"{GROUP}/types"

# A DNS-1123 label: job names become part of object names, types become label values.
DNS_LABEL: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# A graph name is a label value on its Jobs, so it is limited to 63 characters.
MAX_GRAPH_NAME: Final = 63
MAX_JOBS: Final = 20_000
# What a handler may return as the job's result; more would bloat the Job and etcd.
MAX_RESULT_BYTES: Final = 16 * 1024


class JobPhase(StrEnum):
    WAITING = "Waiting"
    ELIGIBLE = "Eligible"
    STARTED = "Started"
    FINISHED = "Finished"
    FAILED = "Failed"
    ABORTED = "Aborted"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_JOB_PHASES


TERMINAL_JOB_PHASES: Final = frozenset({JobPhase.FINISHED, JobPhase.FAILED, JobPhase.ABORTED})


class GraphPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    FINISHED = "Finished"
    FAILED = "Failed"

    @property
    def is_terminal(self) -> bool:
        return self in (GraphPhase.FINISHED, GraphPhase.FAILED)


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
    )


def _free_form(description: str) -> Any:
    """An object of any shape, kept as it is by the API server."""
    return Field(
        default_factory=dict,
        description=description,
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )


class Backoff(_Model):
    """How long to wait before the next attempt: initial * factor^(attempt-1), capped."""

    initial_seconds: float = Field(1.0, ge=0, description="Delay before the first retry.")
    factor: float = Field(2.0, ge=1, description="Multiplier applied per further retry.")
    max_seconds: float = Field(300.0, ge=0, description="Upper bound of any one delay.")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after attempt number ``attempt`` (1-based) before the next one."""
        return min(self.max_seconds, self.initial_seconds * self.factor ** max(0, attempt - 1))


class JobPolicy(_Model):
    """What a graph entry may set for itself and a graph may set as the default for all."""

    priority: int | None = Field(None, description="Higher runs first.")
    retries: int | None = Field(
        None, ge=0, le=100, description="Attempts after the first before the job is Failed."
    )
    backoff: Backoff | None = Field(None, description="Delay between attempts.")
    timeout_seconds: int | None = Field(
        None, ge=1, description="An attempt that runs longer fails with reason Timeout."
    )


class GraphJob(JobPolicy):
    """One entry of a graph: a named job of a type, with arguments and dependencies."""

    name: str = Field(
        ..., min_length=1, max_length=63, pattern=DNS_LABEL,
        description="Unique within the graph; the Job is named <graph>-<name>.",
    )
    type: str = Field(
        ..., min_length=1, max_length=63, pattern=DNS_LABEL,
        description="Selects the handler that runs the job.",
    )
    args: dict[str, Any] = _free_form("Passed to the handler as job.args.")
    depends_on: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="Names of jobs in the same graph that must finish first.",
        json_schema_extra={"items": {"type": "string", "maxLength": 63}},
    )


class JobGraphSpec(_Model):
    jobs: list[GraphJob] = Field(
        ...,
        min_length=1,
        max_length=MAX_JOBS,
        description="The jobs of the graph. Immutable once created.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self == oldSelf", "message": "spec.jobs is immutable"}
            ]
        },
    )
    defaults: JobPolicy | None = Field(None, description="Policy for jobs that set none.")
    priority: int = Field(
        0, description="Jobs of a graph with higher priority are claimed before any job of a "
        "graph with lower priority; a job's own priority orders jobs within equal graphs.",
    )
    parallelism: int | None = Field(
        None, ge=1, description="At most this many jobs of the graph are Started at once.",
    )
    suspend: bool = Field(False, description="While true, runners claim no job of the graph.")
    cancel: bool = Field(
        False, description="Set to true to cancel: running jobs are told, the rest Aborted.",
        json_schema_extra={"x-kubernetes-validations": [
            {"rule": "oldSelf == false || self == true",
             "message": "a cancelled graph stays cancelled"}
        ]},
    )
    rerun: int = Field(
        0, ge=0, description="Increase to run the graph again from its Failed and Aborted jobs; "
        "Finished jobs keep their results.",
    )
    active_deadline_seconds: int | None = Field(
        None, ge=1, description="The graph is cancelled if it runs longer than this.",
    )
    ttl_seconds_after_finished: int | None = Field(
        None, ge=0, description="Delete the graph and its Jobs this long after it ends.",
    )


class Condition(_Model):
    """A condition as the Kubernetes API conventions describe it."""

    type: str
    status: str = Field(..., json_schema_extra={"enum": ["True", "False", "Unknown"]})
    reason: str | None = None
    message: str | None = None
    last_transition_time: str | None = Field(None, json_schema_extra={"format": "date-time"})
    observed_generation: int | None = None


class JobCounts(_Model):
    waiting: int = 0
    eligible: int = 0
    started: int = 0
    finished: int = 0
    failed: int = 0
    aborted: int = 0


class JobGraphStatus(_Model):
    phase: GraphPhase = Field(GraphPhase.PENDING, description="Where the graph as a whole is.")
    reason: str | None = Field(None, description="Why the graph is in its phase, CamelCase.")
    message: str | None = Field(None, description="A human-readable explanation.")
    total: int | None = Field(None, description="Number of jobs in the graph.")
    counts: JobCounts | None = Field(None, description="Number of jobs in each phase.")
    progress: str | None = Field(None, description="Finished/total, for kubectl get.")
    started_at: str | None = Field(None, json_schema_extra={"format": "date-time"})
    finished_at: str | None = Field(None, json_schema_extra={"format": "date-time"})
    observed_generation: int | None = None
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )


class JobSpec(JobPolicy):
    """A Job as the operator creates it from its graph's entry."""

    graph: str = Field(..., description="The JobGraph this job belongs to.")
    graph_priority: int = Field(0, description="The graph's priority, copied at creation.")
    name: str = Field(..., description="The job's name within its graph.")
    type: str = Field(..., description="Selects the handler that runs the job.")
    args: dict[str, Any] = _free_form("Passed to the handler as job.args.")
    depends_on: list[str] = Field(
        default_factory=list, description="Names of jobs in the same graph."
    )


class JobError(_Model):
    type: str = Field(..., description="The exception's class name, or a reason such as Timeout.")
    message: str = Field("", description="The exception's message.")


class JobStatus(_Model):
    phase: JobPhase = Field(JobPhase.WAITING, description="Where the job is in its life cycle.")
    attempt: int = Field(0, description="Attempts started so far; the current one while Started.")
    runner: str | None = Field(None, description="The runner that holds or held the claim.")
    claim: str | None = Field(None, description="Token of the current claim, new per attempt.")
    cancel_requested: bool | None = Field(
        None, description="Set by the operator on a Started job of a cancelled graph; the "
        "runner holding it cancels the handler.",
    )
    reclaims: int | None = Field(
        None, description="Times the job was handed back because its runner was lost.",
    )
    reason: str | None = Field(None, description="Why the job is in its phase, CamelCase.")
    message: str | None = Field(None, description="A human-readable explanation.")
    error: JobError | None = Field(None, description="What made the last attempt fail.")
    result: Any = Field(
        None,
        description="The handler's return value.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    eligible_at: str | None = Field(None, json_schema_extra={"format": "date-time"})
    next_attempt_at: str | None = Field(
        None, description="A retried job is not claimed before this time.",
        json_schema_extra={"format": "date-time"},
    )
    started_at: str | None = Field(None, json_schema_extra={"format": "date-time"})
    finished_at: str | None = Field(None, json_schema_extra={"format": "date-time"})
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )


def job_object_name(graph: str, job: str) -> str:
    """The name of the Job object for the entry ``job`` of ``graph``."""
    return f"{graph}-{job}"
