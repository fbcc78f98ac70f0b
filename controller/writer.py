"""The operator's API calls, run off the event loop.

kopf's handlers run on one asyncio loop; the kubernetes client blocks. Every write of the
operator goes through this small pool of threads, sized so that creating the Jobs of a big
graph or reclaiming a runner's jobs keeps several requests in flight at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from overseer import kube

T = TypeVar("T")


class Writer:
    """Runs the blocking client calls of the operator off the event loop."""

    def __init__(self, api_client: Any, *, concurrency: int = 16) -> None:
        self.api_client = api_client
        self.jobs = kube.jobs(api_client)
        self.graphs = kube.graphs(api_client)
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="writer")

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
