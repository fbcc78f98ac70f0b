"""The peer: the same three shapes as Celery tasks on a local Redis (broker and results).

Each no-op task records its own start and end (``time.time()``) into a Redis hash, one
field per job; the benchmark reads the hash when every job has reported. The shapes:

* independent: a ``group`` of n no-op tasks;
* chain: a ``chain`` of n immutable no-op signatures;
* layered: one ``chord`` per layer, whose callback (``bench.layer``) starts the next
  layer's chord. Warning: this is an approximation. Celery cannot say "this task needs
  these three of the previous layer" without a chord per task; so every job of a layer
  waits for *all* jobs of the layer before (plus the callback task, one per layer). The
  hand-off of a layered job is therefore measured from the last finish of the previous
  layer.

Workers: one ``celery worker`` process with the prefork pool and ``-c N`` children, the
default prefetch, and gossip, mingle and heartbeats off.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from celery import Celery, chain, chord, group

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")

app = Celery("bench", broker=f"{REDIS_URL}/0", backend=f"{REDIS_URL}/1")
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    result_expires=3600,
)

_client = None


def _redis() -> Any:
    global _client
    if _client is None:
        import redis

        _client = redis.Redis.from_url(f"{REDIS_URL}/2")
    return _client


@app.task(name="bench.noop")
def noop(run: str, job: str) -> None:
    start = time.time()
    end = time.time()
    _redis().hset(f"bench:{run}", job, f"{start:.6f},{end:.6f}")


@app.task(name="bench.layer")
def next_layer(_results: Any, run: str, layer: int, layers: int, width: int) -> None:
    """The chord callback of layer ``layer - 1``: start layer ``layer``'s chord."""
    if layer >= layers:
        return
    header = group(noop.si(run, f"l{layer}-{c}") for c in range(width))
    chord(header, next_layer.s(run, layer + 1, layers, width)).apply_async()


# --- driving it ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(log_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A throwaway redis-server on 127.0.0.1 and a random port, with no persistence."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server is not installed")
    port = free_port()
    log = (log_dir / "redis.log").open("wb")
    proc = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port),
                             "--save", "", "--appendonly", "no", "--protected-mode", "yes"],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    import redis

    url = f"redis://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if redis.Redis.from_url(url).ping():
                return proc, url
        except redis.ConnectionError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("redis-server did not answer PING within 10 s")


def redis_version() -> str | None:
    binary = shutil.which("redis-server")
    if not binary:
        return None
    out = subprocess.run([binary, "--version"], capture_output=True, text=True,
                         check=False).stdout
    for part in out.split():
        if part.startswith("v="):
            return part[2:]
    return out.strip() or None


def start_worker(url: str, workers: int, log_dir: Path) -> subprocess.Popen[bytes]:
    from bench.cluster import REPO

    env = {**os.environ, "BENCH_REDIS_URL": url, "PYTHONPATH": str(REPO)}
    log = (log_dir / f"celery-worker-{workers}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bench.celery_peer", "worker",
         "--pool", "prefork", "--concurrency", str(workers), "--loglevel", "WARNING",
         "--without-gossip", "--without-mingle", "--without-heartbeat",
         "--hostname", f"bench{workers}@127.0.0.1"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _wait_for_worker(peer: Celery, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if peer.control.ping(timeout=0.5):
            return
    raise RuntimeError("the celery worker did not answer a ping in time")


def run_shape(kind: str, n: int, *, layers: int, width: int, run: str, timeout: float
              ) -> dict[str, Any]:
    """Submit one shape and wait until every job has reported; times from Redis."""
    from bench.throughput import percentiles

    r = _redis()
    key = f"bench:{run}"
    t0 = time.time()
    if kind == "independent":
        group(noop.si(run, f"j{i}") for i in range(n)).apply_async()
    elif kind == "chain":
        chain(noop.si(run, f"j{i}") for i in range(n)).apply_async()
    else:
        next_layer.delay(None, run, 0, layers, width)
    submitted = time.time() - t0
    deadline = time.monotonic() + timeout
    while r.hlen(key) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    raw = {k.decode(): tuple(map(float, v.decode().split(","))) for k, v in r.hgetall(key).items()}
    done = len(raw) == n
    last_end = max((e for _, e in raw.values()), default=None)
    seconds = last_end - t0 if last_end else None

    gaps: list[float] = []
    if kind == "chain":
        for i in range(1, n):
            if f"j{i}" in raw and f"j{i - 1}" in raw:
                gaps.append(raw[f"j{i}"][0] - raw[f"j{i - 1}"][1])
    elif kind == "layered":
        for layer in range(1, layers):
            ends = [raw[f"l{layer - 1}-{c}"][1] for c in range(width) if f"l{layer - 1}-{c}" in raw]
            if not ends:
                continue
            last = max(ends)
            gaps.extend(raw[f"l{layer}-{c}"][0] - last for c in range(width)
                        if f"l{layer}-{c}" in raw)
    return {"completed": done, "reported": len(raw), "submit_seconds": round(submitted, 3),
            "seconds": round(seconds, 3) if seconds else None,
            "jobs_per_s": round(len(raw) / seconds, 1) if seconds else None,
            "handoff": {"total": percentiles(gaps)}}


def run_peer(cases: list[tuple[str, int, int, int]], worker_counts: list[int], log_dir: Path,
             *, timeout: float) -> dict[str, Any]:
    """Every (kind, jobs, layers, width) shape with every worker count."""
    import celery
    import psutil

    from bench.cluster import RssSampler

    redis_proc, url = start_redis(log_dir)
    global _client
    _client = None
    app.conf.broker_url = f"{url}/0"
    app.conf.result_backend = f"{url}/1"
    os.environ["BENCH_REDIS_URL"] = url
    import redis

    rows = []
    try:
        for workers in worker_counts:
            worker = start_worker(url, workers, log_dir)
            try:
                _wait_for_worker(app)
                procs = [psutil.Process(worker.pid), *psutil.Process(worker.pid).children()]
                for kind, n, layers, width in cases:
                    sampler = RssSampler({"worker_processes": [p.pid for p in procs],
                                          "redis": [redis_proc.pid]}).start()
                    run = f"{kind}-{workers}-{time.time_ns()}"
                    _client = redis.Redis.from_url(f"{url}/2")
                    row = run_shape(kind, n, layers=layers, width=width, run=run,
                                    timeout=timeout)
                    row.update(shape=kind, jobs=n, workers=workers,
                               pool=f"prefork, 1 worker process x {workers} children",
                               usage=sampler.stop())
                    rows.append(row)
                    redis.Redis.from_url(url).flushall()
            finally:
                worker.terminate()
                try:
                    worker.wait(20)
                except subprocess.TimeoutExpired:
                    worker.kill()
    finally:
        redis_proc.terminate()
        redis_proc.wait(10)
    return {"available": True, "celery": celery.__version__, "redis": redis_version(),
            "cases": rows}
