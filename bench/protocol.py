"""What the API server spends on Overseer's protocol alone, with no operator and no runner.

Every job of Overseer costs the API server four writes (create, Eligible, claim, outcome)
and the delivery of their events to the watches that follow Jobs: the operator's (every
Job of the namespace) and each runner's (the Eligible Jobs of its types). This drives
exactly that from a lean client, with the bodies the operator and the runner write (built
by their own functions) on Jobs shaped as the operator creates them, as fast as the API
server answers, and measures the API server's and etcd's CPU per job.

Run with no watch, it is the cost of the writes; with the watches, the server-side cost of
the protocol, which no implementation of the operator or the runner can go below. On a
machine whose cores every component shares, two cores divided by that cost bound the jobs
per second of any Overseer, however lean its Python.
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

from bench.ceiling import (
    JOBS_PATH,
    STARTUP_SECONDS,
    _busy,
    common_start,
    create_graph,
    job_manifest,
    own_cpu,
    sample_window,
)
from bench.cluster import REPO, Connection
from controller.transitions import eligible
from overseer.api import TYPE_LABEL, JobPhase
from runner.claim import claim_status
from runner.outcomes import finished

# --- one load process ---------------------------------------------------------------------


def _step(step: int, created: dict[str, Any]) -> dict[str, Any]:
    """The status patch of step 0 (Eligible), 1 (the claim) or 2 (the outcome) of a job."""
    if step == 0:
        return eligible()
    if step == 1:
        return claim_status("protocol", uuid.uuid4().hex, 1)
    return finished(None, spec=created["spec"], attempt=1)


async def _load(conn: Connection, namespace: str, graph: str, graph_uid: str,
                connections: int, seconds: float, warmup: float,
                start_at: float) -> dict[str, Any]:
    import aiohttp

    base = conn.server + JOBS_PATH.format(namespace=namespace)
    connector = aiohttp.TCPConnector(limit=connections, ssl=conn.ssl_context())
    done = {"jobs": 0, "errors": 0}

    async with aiohttp.ClientSession(connector=connector, headers=conn.headers()) as session:
        start = await common_start(start_at)
        measure_from, end = start + warmup, start + warmup + seconds

        async def write(method: str, url: str, body: dict[str, Any]) -> dict[str, Any] | None:
            kind = "application/merge-patch+json" if method == "PATCH" else "application/json"
            async with session.request(method, url, data=json.dumps(body),
                                       headers={"Content-Type": kind}) as r:
                data = await r.read()
                return json.loads(data) if r.status in (200, 201) else None

        async def status(name: str, rv: str, patch: dict[str, Any]) -> str | None:
            out = await write("PATCH", f"{base}/{name}/status",
                              {"metadata": {"resourceVersion": rv}, "status": patch})
            return out["metadata"]["resourceVersion"] if out else None

        async def worker(w: int) -> None:
            n = 0
            while time.monotonic() < end:
                n += 1
                created = await write("POST", base,
                                      job_manifest(namespace, graph, graph_uid, f"{w}-{n}"))
                if created is None:
                    rv = None
                else:
                    name = created["metadata"]["name"]
                    rv = created["metadata"]["resourceVersion"]
                # The operator's Eligible, the runner's claim and its outcome, in order.
                for step in range(3):
                    if rv is None:
                        break
                    rv = await status(name, rv, _step(step, created))
                # Counted when it ends: in a steady state as many jobs end in the window as
                # start in it, and none is lost at the window's edges.
                if measure_from <= time.monotonic() <= end:
                    done["jobs" if rv is not None else "errors"] += 1

        cpu: dict[str, float] = {}
        await asyncio.gather(own_cpu(measure_from, end, cpu),
                             *(worker(i) for i in range(connections)))
    return {**done, "cpu_percent": round(100 * (cpu["end"] - cpu["start"]) / seconds, 1)}


# --- the watches, in a process of their own -----------------------------------------------


async def _watch(conn: Connection, namespace: str, runners: int, seconds: float) -> None:
    """The operator's watch and ``runners`` runners' Eligible watches, read and parsed."""
    import aiohttp

    base = conn.server + JOBS_PATH.format(namespace=namespace)
    eligible_only = {"fieldSelector": f"status.phase={JobPhase.ELIGIBLE}",
                     "labelSelector": f"{TYPE_LABEL} in (noop)"}
    queries = [{}] + [eligible_only] * runners
    connector = aiohttp.TCPConnector(limit=len(queries), ssl=conn.ssl_context())
    async with aiohttp.ClientSession(connector=connector, headers=conn.headers()) as session:
        async with session.get(base, params={"limit": "1"}) as r:
            version = (await r.json())["metadata"]["resourceVersion"]

        async def follow(query: dict[str, str]) -> None:
            params = {**query, "watch": "true", "resourceVersion": version,
                      "timeoutSeconds": str(int(seconds) + 5)}
            async with session.get(base, params=params, timeout=None) as r:
                async for line in r.content:
                    json.loads(line)

        try:
            await asyncio.wait_for(asyncio.gather(*(follow(q) for q in queries)), seconds)
        except TimeoutError:
            pass


# --- the driver ---------------------------------------------------------------------------


def run(conn: Connection, kubeconfig: Path, namespace: str, *, processes: int,
        connections: int, runners: int, seconds: float, server_pids: dict[str, int],
        watch: bool) -> dict[str, Any]:
    """One measurement: with the operator's and ``runners`` runners' watches if ``watch``."""
    warmup = 1.0
    common = ["--kubeconfig", str(kubeconfig), "--namespace", namespace]
    start_at = time.time() + STARTUP_SECONDS
    watcher = None
    if watch:
        # Open before the loads start, and kept until they are done.
        watcher = subprocess.Popen(
            [sys.executable, "-m", "bench.protocol", "watch", *common, "--runners",
             str(runners), "--seconds", str(STARTUP_SECONDS + warmup + seconds + 5)], cwd=REPO)
    tag = uuid.uuid4().hex[:5]
    graphs = [f"p{tag}{i}" for i in range(processes)]
    procs = [subprocess.Popen(
        [sys.executable, "-m", "bench.protocol", "load", *common, "--graph", graph,
         "--graph-uid", create_graph(conn, namespace, graph),
         "--connections", str(connections), "--seconds", str(seconds),
         "--warmup", str(warmup), "--start-at", str(start_at)],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
        for graph in graphs]
    servers = {k: psutil.Process(v) for k, v in server_pids.items()}
    # The watch reader is a client too: its CPU is what reading the events costs Python.
    clients = {"watch": psutil.Process(watcher.pid)} if watcher is not None else {}

    def cpu() -> dict[str, float]:
        return {k: sum(p.cpu_times()[:2]) for k, p in {**servers, **clients}.items()}

    (busy0, cpu0), (busy1, cpu1), wall = sample_window(
        start_at, warmup, seconds, lambda: (_busy(), cpu()))
    results = [json.loads(p.communicate(timeout=seconds + 120)[0].strip().splitlines()[-1])
               for p in procs]
    if watcher is not None:
        watcher.terminate()
        watcher.wait(10)
    jobs = sum(r["jobs"] for r in results)
    rate = jobs / seconds
    per_job = {k: round(1000 * (cpu1[k] - cpu0[k]) / (rate * wall), 2) if rate else None
               for k in servers}
    # The load processes measure their own CPU over the same window.
    clients_percent = sum(r["cpu_percent"] for r in results) + sum(
        100 * (cpu1[k] - cpu0[k]) / wall for k in clients)
    return {
        "watches": f"operator + {runners} runners" if watch else "none",
        "processes": processes, "connections_per_process": connections,
        "jobs_per_s": round(rate, 1), "errors": sum(r["errors"] for r in results),
        "server_cpu_ms_per_job": per_job,
        "server_cpu_percent": {k: round(100 * (cpu1[k] - cpu0[k]) / wall, 1) for k in servers},
        "client_cpu_percent_per_process": max(r["cpu_percent"] for r in results),
        "others_and_clients_cpu_percent": round(100 * max(0.0, (busy1 - busy0) - sum(
            cpu1[k] - cpu0[k] for k in servers)) / wall, 1),
        "clients_cpu_ms_per_job": round(10 * clients_percent / rate, 2) if rate else None,
    }


def measure(conn: Connection, kubeconfig: Path, namespace: str, *, runners: int,
            seconds: float, server_pids: dict[str, int], processes: int = 2,
            connections: int = 32) -> dict[str, Any]:
    """The protocol's cost with no watch, then with the watches of ``runners`` runners."""
    rows = [run(conn, kubeconfig, namespace, processes=processes, connections=connections,
                runners=runners, seconds=seconds, server_pids=server_pids, watch=w)
            for w in (False, True)]
    full = rows[-1]["server_cpu_ms_per_job"]
    server_ms = sum(v for v in full.values() if v)
    clients_ms = rows[-1]["clients_cpu_ms_per_job"]
    with_clients = server_ms + clients_ms if server_ms and clients_ms else None
    return {
        "writes_per_job": 4,
        "rows": rows,
        "server_ms_per_job": round(server_ms, 2) if server_ms else None,
        # Two cores (all of them) spent on the API server and etcd alone.
        "bound_jobs_per_s": round(psutil.cpu_count() * 1000 / server_ms, 1) if server_ms else None,
        # And with the lean Python clients that send the writes and read the watches: the
        # bare I/O of an operator and runners that decided nothing and logged nothing.
        "with_clients_ms_per_job": round(with_clients, 2) if with_clients else None,
        "bound_with_clients_jobs_per_s": (round(psutil.cpu_count() * 1000 / with_clients, 1)
                                          if with_clients else None),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.protocol")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("load", "watch"):
        sub = commands.add_parser(name, help=f"one {name} process (started by the driver)")
        sub.add_argument("--kubeconfig", type=Path, required=True)
        sub.add_argument("--namespace", required=True)
        sub.add_argument("--seconds", type=float, default=5)
        if name == "load":
            sub.add_argument("--graph", required=True)
            sub.add_argument("--graph-uid", required=True)
            sub.add_argument("--connections", type=int, default=16)
            sub.add_argument("--warmup", type=float, default=1)
            sub.add_argument("--start-at", type=float, default=0.0)
        else:
            sub.add_argument("--runners", type=int, default=4)
    args = parser.parse_args(argv)
    conn = Connection.from_kubeconfig(args.kubeconfig)
    if args.command == "load":
        result = asyncio.run(_load(conn, args.namespace, args.graph, args.graph_uid,
                                   args.connections, args.seconds, args.warmup,
                                   args.start_at))
        print(json.dumps(result), flush=True)
    else:
        asyncio.run(_watch(conn, args.namespace, args.runners, args.seconds))


if __name__ == "__main__":
    main()
