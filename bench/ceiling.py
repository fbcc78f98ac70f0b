"""The API server's own rate for the write Overseer makes most: a preconditioned status patch.

Every claim and every outcome is a merge-patch of a Job's status carrying the
resourceVersion it was decided on. This drives exactly that request, as fast as the API
server answers, from a lean client: several processes, each an asyncio loop of aiohttp
keep-alive connections, each connection patching Jobs of its own (so no two patches ever
conflict) and taking the next resourceVersion from the previous response.

The load runs at several levels of concurrency. The ceiling is the best rate; that it is
the server's and not the client's shows in the report twice: the client's CPU stays below
its share of the machine, and more concurrency does not raise the rate.

Warning: on a small machine the client shares the cores with etcd and the API server, so
the ceiling is that of the API server on what the client leaves it; the report gives the
CPU of each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

from bench.cluster import REPO, Connection
from controller.expand import job_body
from overseer.api import API_VERSION, GROUP, VERSION, GraphJob, JobGraphSpec, job_object_name
from runner.claim import claim_status

JOBS_PATH = f"/apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/jobs"
# Each connection patches Jobs of its own, in turn, so that no two patches conflict.
JOBS_PER_CONNECTION = 2


def create_graph(conn: Connection, namespace: str, name: str) -> str:
    """A JobGraph to own the benchmark's Jobs, so that a garbage collector keeps them; its uid.

    No operator serves the benchmark's own namespaces, so nothing acts on it.
    """
    body = {"apiVersion": API_VERSION, "kind": "JobGraph", "metadata": {"name": name},
            "spec": {"jobs": [{"name": "owner", "type": "noop"}]}}
    return conn.json("POST", f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/jobgraphs",
                     body)["metadata"]["uid"]


def job_manifest(namespace: str, graph: str, graph_uid: str, name: str) -> dict[str, Any]:
    """A Job as the operator creates it for job ``name`` of ``graph`` (named graph-name)."""
    entry = GraphJob(name=name, type="noop")
    meta = {"name": graph, "namespace": namespace, "uid": graph_uid}
    return job_body({"metadata": meta}, entry, JobGraphSpec(jobs=[entry]))


def create_jobs(conn: Connection, namespace: str, count: int) -> list[str]:
    """Create ``count`` Jobs of graph ``ceiling``; their object names."""
    path = JOBS_PATH.format(namespace=namespace)
    uid = create_graph(conn, namespace, "ceiling")
    names = []
    for i in range(count):
        body = job_manifest(namespace, "ceiling", uid, str(i))
        status, reply = conn.request("POST", path, json.dumps(body).encode())
        if status not in (201, 409):
            raise RuntimeError(f"creating Job {i}: HTTP {status}: {reply[:200]!r}")
        names.append(body["metadata"]["name"])
    return names


# --- one load process ---------------------------------------------------------------------


# Seconds the load processes are given to start (import, connect) before the common start.
STARTUP_SECONDS = 3.0


async def common_start(start_at: float) -> float:
    """Wait for the wall-clock time ``start_at`` the driver gave every load process; the
    monotonic time then. Every process and the driver's samples of the servers' CPU then
    cover the same window."""
    await asyncio.sleep(max(0.0, start_at - time.time()))
    return time.monotonic()


def sample_window(start_at: float, warmup: float, seconds: float,
                  sample: Any) -> tuple[Any, Any, float]:
    """``sample()`` at the start and at the end of the measured window of loads that start at
    ``start_at``; the two samples and the seconds between them."""
    time.sleep(max(0.0, start_at + warmup - time.time()))
    first, t0 = sample(), time.monotonic()
    time.sleep(max(0.0, start_at + warmup + seconds - time.time()))
    return first, sample(), time.monotonic() - t0


async def own_cpu(start: float, end: float, into: dict[str, float]) -> None:
    """This process's CPU time at the monotonic instants ``start`` and ``end``, into ``into``.

    A load process measures its own CPU over exactly the window it counts requests in.
    """
    await asyncio.sleep(max(0.0, start - time.monotonic()))
    into["start"] = time.process_time()
    await asyncio.sleep(max(0.0, end - time.monotonic()))
    into["end"] = time.process_time()


async def _load(conn: Connection, namespace: str, names: list[str], connections: int,
                seconds: float, warmup: float, start_at: float) -> dict[str, Any]:
    import aiohttp  # kopf's HTTP client, so already installed with the operator

    base = conn.server + JOBS_PATH.format(namespace=namespace)
    connector = aiohttp.TCPConnector(limit=connections, ssl=conn.ssl_context())
    counts = {"ok": 0, "conflict": 0, "error": 0}
    latencies: list[float] = []
    headers = {**conn.headers(), "Content-Type": "application/merge-patch+json"}
    async with aiohttp.ClientSession(connector=connector, headers=conn.headers()) as session:
        versions: dict[str, str] = {}
        for name in names:
            async with session.get(f"{base}/{name}") as r:
                versions[name] = (await r.json())["metadata"]["resourceVersion"]

        start = await common_start(start_at)
        measure_from = start + warmup
        end = measure_from + seconds

        async def worker(mine: list[str]) -> None:
            attempt = 0
            while True:
                for name in mine:
                    now = time.monotonic()
                    if now >= end:
                        return
                    attempt += 1
                    body = json.dumps({
                        "metadata": {"resourceVersion": versions[name]},
                        "status": claim_status("ceiling", uuid.uuid4().hex, attempt),
                    })
                    async with session.patch(f"{base}/{name}/status", data=body,
                                             headers=headers) as r:
                        data = await r.read()
                        done = time.monotonic()
                        if r.status == 200:
                            versions[name] = json.loads(data)["metadata"]["resourceVersion"]
                            outcome = "ok"
                        elif r.status == 409:
                            outcome = "conflict"
                        else:
                            outcome = "error"
                    if now >= measure_from:
                        counts[outcome] += 1
                        latencies.append(done - now)

        cpu: dict[str, float] = {}
        per = max(1, len(names) // connections)
        groups = [names[i * per:(i + 1) * per] for i in range(connections)]
        await asyncio.gather(own_cpu(measure_from, end, cpu),
                             *(worker(g) for g in groups if g))
    latencies.sort()

    def pct(p: float) -> float | None:
        return round(1000 * latencies[int(p * (len(latencies) - 1))], 2) if latencies else None

    cpu_percent = round(100 * (cpu["end"] - cpu["start"]) / seconds, 1)
    return {**counts, "seconds": seconds, "cpu_percent": cpu_percent,
            "latency_ms": {"p50": pct(0.5), "p99": pct(0.99)}}


# --- the sweep ----------------------------------------------------------------------------


def run_level(kubeconfig: Path, namespace: str, names: list[str], *, processes: int,
              connections: int, seconds: float, warmup: float,
              server_pids: dict[str, int]) -> dict[str, Any]:
    """Run ``processes`` load processes of ``connections`` each; rates and CPU of everyone."""
    per = len(names) // processes
    start_at = time.time() + STARTUP_SECONDS
    procs = []
    for i in range(processes):
        mine = names[i * per:(i + 1) * per]
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "bench.ceiling", "load", "--kubeconfig", str(kubeconfig),
             "--namespace", namespace, "--connections", str(connections),
             "--seconds", str(seconds), "--warmup", str(warmup), "--start-at", str(start_at),
             *mine],
            cwd=REPO, stdout=subprocess.PIPE, text=True))
    watched = {"client": [psutil.Process(p.pid) for p in procs],
               **{k: [psutil.Process(v)] for k, v in server_pids.items()}}

    def cpu() -> dict[str, float]:
        out = {}
        for role, ps in watched.items():
            total = 0.0
            for p in ps:
                try:
                    t = p.cpu_times()
                    total += t.user + t.system
                except psutil.Error:
                    pass
            out[role] = total
        return out

    (busy0, cpu0), (busy1, cpu1), wall = sample_window(
        start_at, warmup, seconds, lambda: (_busy(), cpu()))
    results = []
    for p in procs:
        out, _ = p.communicate(timeout=seconds + warmup + 120)
        results.append(json.loads(out.strip().splitlines()[-1]))
    ok = sum(r["ok"] for r in results)
    return {
        "processes": processes,
        "connections_per_process": connections,
        "jobs": len(names),
        "seconds": seconds,
        "patches_per_s": round(ok / seconds, 1),
        "conflicts": sum(r["conflict"] for r in results),
        "errors": sum(r["error"] for r in results),
        "latency_ms_p50": max((r["latency_ms"]["p50"] or 0) for r in results),
        "latency_ms_p99": max((r["latency_ms"]["p99"] or 0) for r in results),
        # Percent of one core, over the middle of the run; the machine has psutil.cpu_count().
        "cpu_percent": {role: round(100 * (cpu1[role] - cpu0[role]) / wall, 1)
                        for role in watched},
        "client_cpu_percent_per_process": max(r["cpu_percent"] for r in results),
        # CPU of everything else on the machine (another test run, say) over the window.
        "others_cpu_percent": round(100 * max(0.0, (busy1 - busy0) - sum(
            cpu1[role] - cpu0[role] for role in watched)) / wall, 1),
    }


def _busy() -> float:
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


def sweep(conn: Connection, kubeconfig: Path, namespace: str, *,
          levels: list[tuple[int, int]], seconds: float, server_pids: dict[str, int],
          jobs_per_connection: int = JOBS_PER_CONNECTION) -> dict[str, Any]:
    """Run every level; the ceiling is the best rate seen.

    The Jobs are left in place for ``sample``, which measures the best level again later.
    """
    most = max(p * c for p, c in levels) * jobs_per_connection
    names = create_jobs(conn, namespace, most)
    rows = []
    for processes, connections in levels:
        wanted = processes * connections * jobs_per_connection
        rows.append(run_level(kubeconfig, namespace, names[:wanted], processes=processes,
                              connections=connections, seconds=seconds, warmup=1.0,
                              server_pids=server_pids))
    best = max(rows, key=lambda r: r["patches_per_s"])
    # The client is not the bottleneck if at the best level no load process used a whole
    # core, or if the levels above the best one's concurrency did not do better.
    client_saturated = best["client_cpu_percent_per_process"] >= 90
    return {
        "request": "PATCH jobs/status, application/merge-patch+json, "
                   "metadata.resourceVersion precondition, the claim's body, on Jobs as "
                   "the operator creates them",
        "levels": rows,
        "patches_per_s": best["patches_per_s"],
        "best_level": {"processes": best["processes"],
                       "connections_per_process": best["connections_per_process"]},
        "client_saturated": client_saturated,
        "cores": psutil.cpu_count(),
        "namespace": namespace,
    }


def sample(kubeconfig: Path, sweep_result: dict[str, Any], *, seconds: float,
           server_pids: dict[str, int]) -> dict[str, Any]:
    """The sweep's best level once more, now.

    The API server's cost per write is not fixed: it grows as its watch cache fills with
    the history of recent writes (about 75 s of it), and it varies by a third between two
    runs of a few seconds. A throughput measured at one moment is therefore compared with
    a ceiling measured just before it, on the same server in the same state.
    """
    best = sweep_result["best_level"]
    count = best["processes"] * best["connections_per_process"] * JOBS_PER_CONNECTION
    names = [job_object_name("ceiling", str(i)) for i in range(count)]
    return run_level(kubeconfig, sweep_result["namespace"], names,
                     processes=best["processes"], connections=best["connections_per_process"],
                     seconds=seconds, warmup=1.0, server_pids=server_pids)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling")
    commands = parser.add_subparsers(dest="command", required=True)
    load = commands.add_parser("load", help="one load process (started by the sweep)")
    load.add_argument("--kubeconfig", type=Path, required=True)
    load.add_argument("--namespace", required=True)
    load.add_argument("--connections", type=int, default=16)
    load.add_argument("--seconds", type=float, default=5)
    load.add_argument("--warmup", type=float, default=1)
    load.add_argument("--start-at", type=float, default=0.0,
                      help="wall-clock time to start at, the same for every load process")
    load.add_argument("names", nargs="+")
    args = parser.parse_args(argv)
    conn = Connection.from_kubeconfig(args.kubeconfig)
    result = asyncio.run(_load(conn, args.namespace, args.names, args.connections,
                               args.seconds, args.warmup, args.start_at))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
