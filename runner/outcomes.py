"""How a handler ends a job other than by returning or raising: ``abort`` and ``fault``."""

from __future__ import annotations


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
