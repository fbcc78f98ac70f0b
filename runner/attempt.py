"""One attempt at running a handler, in a thread of its own, with a timeout and cancellation.

Python cannot kill a thread. A handler that runs past its timeout, or whose graph was
cancelled, is interrupted by raising an exception inside its thread
(``PyThreadState_SetAsyncExc``): pure-Python code stops at its next instruction, while a
blocking call (a ``sleep``, a socket read) is interrupted only when it returns. An ``async
def`` handler is cancelled the asyncio way, at its next ``await``. Either way the runner
does not wait for the handler to give in: it writes the attempt's outcome at once, and a
thread that ignores the interruption runs on unobserved until it ends.
"""

from __future__ import annotations

import asyncio
import ctypes
import inspect
import threading
from dataclasses import dataclass
from typing import Any

from runner.context import Job
from runner.registry import Handler


class Interrupted(BaseException):
    """Raised inside a handler's thread to stop it. A BaseException, so that a handler's
    ``except Exception`` does not swallow it."""


class TimedOut(Interrupted):
    pass


class Cancelled(Interrupted):
    pass


@dataclass
class Result:
    """How an attempt ended: with a value, with an exception, or not yet (None for both)."""

    value: Any = None
    error: BaseException | None = None


class Attempt:
    """Runs ``handler(job)`` in a new daemon thread; ``wait`` for it, ``interrupt`` it."""

    def __init__(self, handler: Handler, job: Job) -> None:
        self.handler = handler
        self.job = job
        self.result = Result()
        self._done = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._interruption: type[Interrupted] | None = None
        self._thread = threading.Thread(target=self._run, name=f"job-{job.name}", daemon=True)

    def start(self) -> Attempt:
        self._thread.start()
        return self

    def wait(self, timeout: float | None) -> bool:
        """Whether the handler ended within ``timeout`` seconds."""
        return self._done.wait(timeout)

    def interrupt(self, kind: type[Interrupted]) -> None:
        """Ask the handler to stop by raising ``kind`` in it; returns without waiting."""
        if self._done.is_set():
            return
        self._interruption = kind
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
            return
        ident = self._thread.ident
        if ident is not None:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(ident), ctypes.py_object(kind))

    def _run(self) -> None:
        try:
            value = self.handler(self.job)
            if inspect.isawaitable(value):
                value = asyncio.run(self._await(value))
            self.result = Result(value=value)
        except asyncio.CancelledError:
            self.result = Result(error=(self._interruption or Cancelled)())
        except BaseException as exc:  # noqa: BLE001 - the handler's failure is the job's outcome
            self.result = Result(error=exc)
        finally:
            self._done.set()

    async def _await(self, awaitable: Any) -> Any:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.ensure_future(awaitable)
        if self._interruption is not None:  # interrupted before the loop existed
            self._task.cancel()
        return await self._task
