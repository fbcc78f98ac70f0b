"""One throughput case: a graph of a shape, run to its end by the operator and N runners.

A case gets a namespace of its own, a fresh operator serving only that namespace and
fresh runners, so that nothing of an earlier case (an index, a queue, a connection) is
counted in this one. It measures, around the graph's creation and end:

* time from the create request to the last job's ``finishedAt`` (and to the graph's
  own ``Finished``), hence jobs/s;
* the API server's request counts before and after, so writes per job by resource, and
  conflicts, exactly as the server saw them;
* hand-off latency from the timestamps the system records in each Job's status;
* peak resident memory of the operator and of the biggest runner, sampled;
* how long the operator took to create every Job, and the size of the objects.

What "N runners" means: N handler slots, spread over ``min(N, max_processes)`` runner
processes of ``N / processes`` concurrency each (see ``runner_layout``).
"""

from __future__ import annotations

import json
import math
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from bench import shapes
from bench.cluster import (
    Connection,
    Process,
    RssSampler,
    env_for,
    request_counts,
    start_python,
    writes_summary,
)
from overseer.api import GRAPH_LABEL, GROUP, VERSION

# A graph whose phase and progress stay the same this long is stuck; the case ends there.
STALL_SECONDS = 60
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


@dataclass
class Context:
    conn: Connection
    kubeconfig: Path
    kubectl: str
    out_dir: Path
    server_pids: dict[str, int]
    max_processes: int = 4
    status_interval: float = 1.0
    profile: bool = False
    keep_namespaces: bool = True


def runner_layout(runners: int, max_processes: int) -> tuple[int, int]:
    """(processes, concurrency per process) for ``runners`` handler slots."""
    processes = max(1, min(runners, max_processes))
    return processes, math.ceil(runners / processes)


def parse_ts(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value).timestamp()


def percentiles(values: list[float]) -> dict[str, Any]:
    """p50/p95/p99/max in milliseconds (nearest rank), and the count."""
    if not values:
        return {"count": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, math.ceil(p * len(ordered)) - 1)], 2)

    return {"count": len(ordered), "p50_ms": rank(0.50), "p95_ms": rank(0.95),
            "p99_ms": rank(0.99), "max_ms": round(1000 * ordered[-1], 2)}


def _wait_settled(procs: list[Process], *, timeout: float = 40.0) -> None:
    """Wait until the processes have started up: their CPU use has fallen quiet."""
    watched = [psutil.Process(p.pid) for p in procs]
    deadline = time.monotonic() + timeout
    time.sleep(1.0)
    while time.monotonic() < deadline:
        for p in procs:
            if not p.running():
                raise RuntimeError(f"{p.name} exited during start-up:\n{p.tail()}")
        before = sum(sum(w.cpu_times()[:2]) for w in watched)
        time.sleep(0.5)
        after = sum(sum(w.cpu_times()[:2]) for w in watched)
        if after - before < 0.05:  # under 10% of one core, all of them together
            return


def list_jobs(conn: Connection, namespace: str, graph: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token = ""
    selector = urllib.parse.quote(f"{GRAPH_LABEL}={graph}")
    while True:
        path = (f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/jobs"
                f"?labelSelector={selector}&limit=1000")
        if token:
            path += f"&continue={urllib.parse.quote(token)}"
        page = conn.json("GET", path)
        items.extend(page.get("items", []))
        token = page.get("metadata", {}).get("continue") or ""
        if not token:
            return items


def graph_row(conn: Connection, namespace: str, name: str) -> tuple[str | None, str | None]:
    """(phase, progress) of a graph, read as a Table: cheap even for a 1 MiB graph."""
    status, data = conn.request(
        # resourceVersion=0: served from the watch cache, without reading (and decoding) a
        # big graph from etcd on every poll, which would load the server being measured.
        "GET", f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/jobgraphs/{name}"
        "?resourceVersion=0", accept=TABLE)
    if status != 200:
        return None, None
    table = json.loads(data)
    columns = [c["name"] for c in table["columnDefinitions"]]
    cells = table["rows"][0]["cells"] if table.get("rows") else []
    row = dict(zip(columns, cells))
    return row.get("Phase") or None, row.get("Finished") or None


def handoffs(items: list[dict[str, Any]]) -> dict[str, Any]:
    """For every job with dependencies: its start minus its last dependency's finish.

    Split in two at ``eligibleAt``: the operator's part (last dependency finished ->
    Eligible) and the runner's part (Eligible -> claimed, which sets startedAt).
    """
    by_name = {i["spec"]["name"]: i for i in items}
    total, operator_part, runner_part = [], [], []
    for item in items:
        deps = item["spec"].get("dependsOn") or []
        status = item.get("status") or {}
        started = parse_ts(status.get("startedAt"))
        if not deps or started is None:
            continue
        finishes = [parse_ts((by_name[d].get("status") or {}).get("finishedAt"))
                    for d in deps if d in by_name]
        if not finishes or any(f is None for f in finishes):
            continue
        last = max(f for f in finishes if f is not None)
        total.append(started - last)
        eligible = parse_ts(status.get("eligibleAt"))
        if eligible is not None:
            operator_part.append(eligible - last)
            runner_part.append(started - eligible)
    return {"total": percentiles(total), "operator_part": percentiles(operator_part),
            "runner_part": percentiles(runner_part)}


def kubectl_size(ctx: Context, namespace: str, kind: str, name: str) -> int | None:
    """``kubectl get -o json | wc -c``: the size of the object as a user would fetch it."""
    result = subprocess.run([ctx.kubectl, "get", "-n", namespace, kind, name, "-o", "json"],
                            env=env_for(ctx.kubeconfig), capture_output=True, timeout=120,
                            check=False)
    return len(result.stdout) if result.returncode == 0 else None


def _start_profiler(pid: int, path: Path) -> subprocess.Popen[bytes] | None:
    # py-spy is a console script of the venv this runs in, which need not be on PATH.
    binary = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    try:
        return subprocess.Popen([binary, "record", "--pid", str(pid), "--rate", "50",
                                 "--format", "raw", "--output", str(path), "--nonblocking"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except FileNotFoundError:
        return None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def run_case(ctx: Context, shape: shapes.Shape, runners: int, *, timeout: float
             ) -> dict[str, Any]:
    conn = ctx.conn
    namespace = f"bench-{shape.label}-r{runners}-{uuid.uuid4().hex[:5]}"
    graph_name = "g"
    case_dir = ctx.out_dir / "logs" / namespace
    case_dir.mkdir(parents=True, exist_ok=True)
    conn.json("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    env = env_for(ctx.kubeconfig)
    processes, concurrency = runner_layout(runners, ctx.max_processes)

    procs: list[Process] = []
    profilers: list[subprocess.Popen[bytes]] = []
    result: dict[str, Any] = {
        "shape": shape.kind, "label": shape.label, "jobs": shape.jobs, "runners": runners,
        "runner_processes": processes, "concurrency_per_process": concurrency,
        "namespace": namespace,
    }
    try:
        operator = start_python("operator", ["-m", "controller", "--namespace", namespace,
                                             "--status-interval", str(ctx.status_interval)],
                                log_dir=case_dir, env=env)
        procs.append(operator)
        runner_procs = [
            start_python(f"runner-{i}", ["-m", "runner", "--handlers", "bench.handlers",
                                         "--namespace", namespace,
                                         "--concurrency", str(concurrency)],
                         log_dir=case_dir, env=env)
            for i in range(processes)
        ]
        procs.extend(runner_procs)
        _wait_settled(procs)
        # kopf retries a failed startup activity once a minute; a benchmark must not wait.
        broken = [e for e in operator.events() if e.get("level") in ("error", "critical")
                  and e.get("logger") == "kopf.activities.startup"]
        if broken:
            raise RuntimeError(f"the operator failed to start: {broken[0].get('event')}")

        body = shapes.manifest(shape, graph_name)
        data = shapes.manifest_bytes(body)
        result["manifest_bytes"] = len(data)

        if ctx.profile:
            for proc in (operator, runner_procs[0]):
                p = _start_profiler(proc.pid, case_dir / f"{proc.name}.pyspy.txt")
                if p is not None:
                    profilers.append(p)
            time.sleep(1.0)

        sampler = RssSampler({"operator": [operator.pid],
                              "runners": [p.pid for p in runner_procs],
                              **{k: [v] for k, v in ctx.server_pids.items()}}).start()
        before = request_counts(conn)
        t0 = time.time()
        conn.json("POST", f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/jobgraphs", data)
        result["create_request_seconds"] = round(time.time() - t0, 3)

        deadline = time.monotonic() + timeout
        phase = progress = None
        graph_done_at = None
        # Progress shows in the graph's row once every Job exists, and before that in the
        # processes' logs (a line per job and transition): when neither moves, it is stuck.
        last_change, last_seen = time.monotonic(), None
        while time.monotonic() < deadline:
            phase, progress = graph_row(conn, namespace, graph_name)
            if phase in ("Finished", "Failed"):
                graph_done_at = time.time()
                break
            seen = (phase, progress, sum(_size(p.log_path) for p in procs))
            if seen != last_seen:
                last_seen, last_change = seen, time.monotonic()
            elif time.monotonic() - last_change > STALL_SECONDS:
                result["stalled"] = f"no progress for {STALL_SECONDS} s at {phase} {progress}"
                break
            for p in procs:
                if not p.running():
                    raise RuntimeError(f"{p.name} exited during the case:\n{p.tail()}")
            time.sleep(0.5)
        # Let the last writes (the graph's status, a runner's log) land before counting.
        time.sleep(1.5)
        after = request_counts(conn)
        usage = sampler.stop()
        for p in profilers:
            p.send_signal(signal.SIGINT)
        for p in profilers:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()

        items = list_jobs(conn, namespace, graph_name)
        graph = conn.json("GET", f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}"
                                 f"/jobgraphs/{graph_name}")
        # Every Job's timestamps, for looking at a case afterwards (not part of the report).
        (case_dir / "timeline.json").write_text(json.dumps({"t0": t0, "jobs": [
            {"name": i["spec"]["name"], "created": i["metadata"].get("creationTimestamp"),
             **{k: (i.get("status") or {}).get(k)
                for k in ("eligibleAt", "startedAt", "finishedAt", "runner", "attempt")}}
            for i in items]}))
        phases: dict[str, int] = {}
        for item in items:
            ph = (item.get("status") or {}).get("phase", "Waiting")
            phases[ph] = phases.get(ph, 0) + 1
        finishes = [parse_ts((i.get("status") or {}).get("finishedAt")) for i in items]
        finishes = [f for f in finishes if f is not None]
        last_finish = max(finishes) if finishes else None
        completed = phase == "Finished" and phases.get("Finished", 0) == shape.jobs
        seconds = (last_finish - t0) if last_finish else None
        graph_status = graph.get("status") or {}
        graph_finished = parse_ts(graph_status.get("finishedAt"))

        result.update({
            "completed": completed,
            "graph_phase": phase,
            "progress": progress,
            "job_phases": phases,
            "seconds": round(seconds, 3) if seconds else None,
            "jobs_per_s": round(len(finishes) / seconds, 1) if seconds else None,
            "graph_finished_seconds": round(graph_finished - t0, 3) if graph_finished else None,
            "graph_finished_seen_seconds": round(graph_done_at - t0, 3) if graph_done_at else None,
            "writes": writes_summary(before, after, shape.jobs),
            "handoff": handoffs(items),
            "usage": usage,
        })

        # Claims: every attempt began with one successful claim; every 409 on a Job's status
        # is a failed write, most of them lost claims (an outcome or the operator's
        # Waiting -> Eligible can meet one too, so this is an upper bound).
        claims = sum((i.get("status") or {}).get("attempt", 0) for i in items)
        jobs_status = result["writes"]["by_resource"].get(f"jobs/status.{GROUP}", {})
        failed = jobs_status.get("conflict", 0)
        result["claims"] = {"successful": claims, "failed_upper_bound": failed,
                            "failed_per_successful": round(failed / claims, 4) if claims else None}

        # Expansion: from the create request to the operator's 'graph.expanded', and to the
        # last Job's creationTimestamp (whole seconds only).
        expanded = next((e for e in operator.events() if e.get("event") == "graph.expanded"),
                        None)
        created = [parse_ts(i["metadata"].get("creationTimestamp")) for i in items]
        result["expansion"] = {
            "seconds_to_graph_expanded_log": round(parse_ts(expanded["timestamp"]) - t0, 3)
            if expanded and expanded.get("timestamp") else None,
            "seconds_to_last_job_created": round(max(c for c in created if c) - t0, 1)
            if created else None,
        }

        # Sizes: the graph, and the biggest Job (the one with the most dependencies).
        biggest = max(items, key=lambda i: len(json.dumps(i)), default=None)
        result["sizes"] = {
            "manifest_bytes": len(data),
            # As the API server serves it (compact JSON, about what etcd stores), and as
            # kubectl prints it (indented, so bigger).
            "graph_compact_json_bytes": len(json.dumps(graph, separators=(",", ":"))),
            "biggest_job_compact_json_bytes": len(json.dumps(biggest, separators=(",", ":")))
            if biggest else None,
            "graph_kubectl_json_bytes": kubectl_size(ctx, namespace, "jobgraphs.overseer.dev",
                                                     graph_name),
            "biggest_job_kubectl_json_bytes": kubectl_size(
                ctx, namespace, "jobs.overseer.dev", biggest["metadata"]["name"])
            if biggest else None,
        }
        result["errors_in_logs"] = sum(
            1 for p in procs for e in p.events() if e.get("level") in ("error", "critical"))
    finally:
        for p in profilers:
            if p.poll() is None:
                p.kill()
        for p in reversed(procs):
            p.stop()
        if not ctx.keep_namespaces:
            conn.request("DELETE", f"/api/v1/namespaces/{namespace}")
    return result
