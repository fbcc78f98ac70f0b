"""Handlers keyed by job type, and harnesses around them.

A handler is a plain function of the job, or a set of stages: ``pre_process(job) -> job``,
``process(job) -> result`` (required) and ``post_process(job, result) -> result``. A harness
wraps one stage with a wrapper that receives the stage and returns a replacement of the
same shape; a stage the handler lacks is wrapped around the identity, so a harness on
``pre_process`` runs for every handler. Harnesses nest: the last one applied is outermost.

    registry = Registry()

    @registry.handler("count")
    def count(job):
        return len(job.args["words"])

    registry.harness("process", timed)   # every handler of the registry
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from runner.context import Job

Stage = Literal["pre_process", "process", "post_process"]
STAGES: tuple[Stage, ...] = ("pre_process", "process", "post_process")


def _same_job(job: Job) -> Job:
    return job


def _same_result(job: Job, result: Any) -> Any:
    return result


_IDENTITY: dict[Stage, Callable[..., Any]] = {
    "pre_process": _same_job,
    "post_process": _same_result,
}


@dataclass(frozen=True)
class Handler:
    """What runs a job of one type: its stages, each called once per attempt."""

    process: Callable[[Job], Any]
    pre_process: Callable[[Job], Job] | None = None
    post_process: Callable[[Job, Any], Any] | None = None

    def __call__(self, job: Job) -> Any:
        if self.pre_process is not None:
            job = self.pre_process(job)
        result = self.process(job)
        if self.post_process is None:
            return result
        if inspect.isawaitable(result):
            # An async process stage: post-process its value once it has one.
            async def finish(pending: Any = result) -> Any:
                return self.post_process(job, await pending)  # type: ignore[misc]
            return finish()
        return self.post_process(job, result)

    def harnessed(
        self, stage: Stage, wrapper: Callable[[Callable[..., Any]], Callable[..., Any]]
    ) -> Handler:
        """This handler with ``stage`` replaced by ``wrapper(stage)``."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; choose one of {', '.join(STAGES)}")
        inner = getattr(self, stage) or _IDENTITY[stage]
        return dataclasses.replace(self, **{stage: wrapper(inner)})


def as_handler(value: Handler | Callable[[Job], Any]) -> Handler:
    if isinstance(value, Handler):
        return value
    if callable(value):
        return Handler(process=value)
    raise TypeError(f"a handler must be a function of the job or a Handler, not {value!r}")


class Registry(Mapping[str, Handler]):
    """Handlers by job type."""

    def __init__(self, handlers: Mapping[str, Handler | Callable[[Job], Any]] | None = None):
        self._handlers: dict[str, Handler] = {}
        for job_type, handler in (handlers or {}).items():
            self.add(job_type, handler)

    def add(self, job_type: str, handler: Handler | Callable[[Job], Any]) -> None:
        if job_type in self._handlers:
            raise ValueError(f"a handler for job type {job_type!r} is already registered")
        self._handlers[job_type] = as_handler(handler)

    def handler(
        self,
        job_type: str,
        *,
        pre_process: Callable[[Job], Job] | None = None,
        post_process: Callable[[Job, Any], Any] | None = None,
    ) -> Callable[[Callable[[Job], Any]], Callable[[Job], Any]]:
        """Register the decorated function as the ``process`` stage of ``job_type``."""

        def register(process: Callable[[Job], Any]) -> Callable[[Job], Any]:
            self.add(job_type, Handler(process, pre_process, post_process))
            return process

        return register

    def harness(
        self,
        stage: Stage,
        wrapper: Callable[[Callable[..., Any]], Callable[..., Any]],
        *,
        types: list[str] | None = None,
    ) -> None:
        """Wrap ``stage`` of every handler (or of those of ``types``) with ``wrapper``."""
        for job_type in types if types is not None else list(self._handlers):
            self._handlers[job_type] = self[job_type].harnessed(stage, wrapper)

    def __getitem__(self, job_type: str) -> Handler:
        return self._handlers[job_type]

    def __iter__(self) -> Iterator[str]:
        return iter(self._handlers)

    def __len__(self) -> int:
        return len(self._handlers)


def load(path: str) -> Registry:
    """The registry at ``module`` or ``module:attribute``.

    Without an attribute the module's ``registry`` is used, or else its ``HANDLERS``
    mapping of job type to function.
    """
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise LookupError(f"cannot import handler module {module_name!r}: {exc}") from exc
    names = [attribute] if attribute else ["registry", "HANDLERS"]
    for name in names:
        value = getattr(module, name, None)
        if isinstance(value, Registry):
            return value
        if isinstance(value, Mapping):
            return Registry(value)
    raise LookupError(
        f"module {module_name!r} has no {' or '.join(names)}: define a runner.Registry "
        "named 'registry' or a dict 'HANDLERS' of job type to function"
    )
