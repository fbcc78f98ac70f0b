"""The benchmark command: ``python -m bench.run``.

It starts a control plane of its own on loopback (or uses the cluster ``KUBECONFIG``
names), installs the CRDs, and runs the cases it is asked for:

* ``ceiling``: the API server's rate for a preconditioned Job status patch (``bench.ceiling``);
* ``protocol``: the API server's and etcd's CPU per job for Overseer's writes and watches
  alone, driven with no operator and no runner (``bench.protocol``);
* ``independent``, ``chain``, ``layered``: a graph of that shape run by a fresh operator and
  each number of runners (``bench.throughput``);
* ``peer``: the same shapes as Celery tasks on a local Redis (``bench.celery_peer``).

It writes ``report.json`` (every figure, after each case, so an interrupted run keeps what
it measured) and ``report.md`` (the summary with the targets) into the output directory;
the control plane's state and every process's log go under ``logs/`` of the work
directory (``--work-dir``), which the command names at the end.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

import psutil

from bench import ceiling, protocol, report, shapes, throughput
from bench.cluster import REPO, Connection, control_plane_pids, env_for

ALL_CASES = ("ceiling", "protocol", "independent", "chain", "layered", "peer")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=None,
                   help="output directory (default bench/results/<UTC time>, with -quick "
                   "after it for --quick)")
    p.add_argument("--cases", default=",".join(ALL_CASES),
                   help=f"comma-separated subset of {','.join(ALL_CASES)}")
    p.add_argument("--runners", default="1,4,16",
                   help="runner counts (handler slots) to run each shape with")
    p.add_argument("--max-runner-processes", type=int, default=4,
                   help="N runners run as min(N, this) processes of N/processes concurrency")
    p.add_argument("--quick", action="store_true",
                   help="a small smoke version: 50 independent, chain of 10, 3x5 layered, "
                   "1 runner, a 2-second ceiling, 1 Celery worker")
    p.add_argument("--independent", type=int, default=1000, help="jobs of the independent shape")
    p.add_argument("--chain", type=int, default=200, help="length of the chain")
    p.add_argument("--layers", type=int, default=100)
    p.add_argument("--width", type=int, default=100)
    p.add_argument("--fan-in", type=int, default=3, help="dependencies per layered job")
    p.add_argument("--layered-runners", default=None,
                   help="runner counts for the layered shape only (default: --runners)")
    p.add_argument("--status-interval", type=float, default=1.0,
                   help="the operator's --status-interval")
    p.add_argument("--ceiling-levels", default="1x8,1x32,3x64",
                   help="PROCESSESxCONNECTIONS levels of the ceiling sweep")
    p.add_argument("--ceiling-seconds", type=float, default=6.0)
    p.add_argument("--protocol-seconds", type=float, default=8.0)
    p.add_argument("--peer-workers", default="1,4", help="Celery worker concurrencies")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds a case may take (default: 120 + jobs/10)")
    p.add_argument("--profile", action="store_true",
                   help="record py-spy stacks of the operator and one runner in every case")
    p.add_argument("--kubectl", default=None, help="kubectl to use with KUBECONFIG")
    p.add_argument("--work-dir", type=Path, default=None,
                   help="control plane state and every process's log (default: a new "
                   "temporary directory, kept and named at the end); never inside --out, "
                   "which is meant to be committed and must not hold the cluster's keys")
    args = p.parse_args(argv)
    if args.quick:
        args.independent, args.chain, args.layers, args.width = 50, 10, 3, 5
        args.runners = "1"
        args.ceiling_levels, args.ceiling_seconds = "1x4", 3.0
        args.protocol_seconds = 3.0
        args.peer_workers = "1"
    return args


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def versions(conn: Connection, bin_dir: Path | None) -> dict[str, Any]:
    out: dict[str, Any] = {"python": platform.python_version()}
    try:
        out["kubernetes"] = conn.json("GET", "/version")["gitVersion"]
    except Exception as exc:  # noqa: BLE001 - a report without a version still reports
        out["kubernetes"] = f"unknown ({exc})"
    out["etcd"] = None
    if bin_dir is not None:
        text = subprocess.run([str(bin_dir / "etcd"), "--version"], capture_output=True,
                              text=True, check=False).stdout
        out["etcd"] = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                            if line.lower().startswith("etcd version")), text.strip() or None)
    for package in ("kopf", "kubernetes", "celery", "redis", "aiohttp"):
        try:
            out[package if package != "kubernetes" else "kubernetes_client"] = (
                importlib.metadata.version(package))
        except importlib.metadata.PackageNotFoundError:
            out[package] = None
    redis_server = shutil.which("redis-server")
    if redis_server:
        text = subprocess.run([redis_server, "--version"], capture_output=True, text=True,
                              check=False).stdout
        out["redis"] = next((p[2:] for p in text.split() if p.startswith("v=")), text.strip())
    return out


def machine() -> dict[str, Any]:
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": psutil.cpu_count(), "cpu_model": model,
            "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
            "os": platform.platform()}


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    wanted = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(wanted) - set(ALL_CASES))
    if unknown:
        print(f"unknown cases {unknown}; choose from {','.join(ALL_CASES)}", file=sys.stderr)
        return 2
    started = datetime.datetime.now(datetime.UTC)
    # A smoke run's report is not one to keep: its default folder is ignored by git.
    out = args.out or REPO / "bench" / "results" / (
        started.strftime("%Y%m%dT%H%M%SZ") + ("-quick" if args.quick else ""))
    out.mkdir(parents=True, exist_ok=True)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="overseer-bench-"))
    (work / "logs").mkdir(parents=True, exist_ok=True)

    control_plane = None
    bin_dir: Path | None = None
    if os.environ.get("KUBECONFIG"):
        kubeconfig = Path(os.environ["KUBECONFIG"])
        kubectl = args.kubectl or shutil.which("kubectl") or "kubectl"
    else:
        from overseer.devcluster import ControlPlane

        control_plane = ControlPlane(work / "control-plane").start()
        kubeconfig, kubectl = control_plane.kubeconfig, str(control_plane.kubectl)
        bin_dir = control_plane.bin_dir
    conn = Connection.from_kubeconfig(kubeconfig)
    env = env_for(kubeconfig)
    server_pids = control_plane_pids(control_plane)

    result: dict[str, Any] = {
        "meta": {
            "command": "python -m bench.run " + " ".join(shlex.quote(a) for a in
                                                          (argv if argv is not None else
                                                           sys.argv[1:])),
            "started": started.isoformat(timespec="seconds"),
            "cluster": "own control plane on 127.0.0.1" if control_plane else str(kubeconfig),
            "work_dir": str(work),
            "code": _code_state(),
            "versions": versions(conn, bin_dir),
            "machine": machine(),
            "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "runner_meaning": (
                f"N runners = N handler slots in min(N, {args.max_runner_processes}) runner "
                "processes of ceil(N / processes) concurrency each"),
        },
        "ceiling": None,
        "protocol": None,
        "cases": [],
        "peer": None,
    }

    def save() -> None:
        result["targets"] = report.targets(result)
        result["meta"]["finished"] = datetime.datetime.now(datetime.UTC).isoformat(
            timespec="seconds")
        (out / "report.json").write_text(json.dumps(result, indent=2) + "\n")
        (out / "report.md").write_text(report.markdown(result))

    try:
        subprocess.run([kubectl, "apply", "--server-side", "-f", str(REPO / "crds")], env=env,
                       check=True, capture_output=True, timeout=120)
        subprocess.run([kubectl, "wait", "--for=condition=Established", "--timeout=60s",
                        "crd/jobgraphs.overseer.dev", "crd/jobs.overseer.dev"], env=env,
                       check=True, capture_output=True, timeout=120)

        # Established is not yet served: until the watch cache of a new resource has
        # filled, the API server answers 429 "storage is (re)initializing".
        deadline = time.monotonic() + 60
        for plural in ("jobgraphs", "jobs"):
            while conn.request("GET", f"/apis/overseer.dev/v1alpha1/{plural}?limit=1")[0] != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{plural} are not served 60 s after the CRDs")
                time.sleep(0.2)

        if "ceiling" in wanted:
            namespace = f"bench-ceiling-{uuid.uuid4().hex[:5]}"
            conn.json("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
            levels = [tuple(int(x) for x in level.split("x"))
                      for level in args.ceiling_levels.split(",")]
            _say(f"ceiling: levels {args.ceiling_levels}")
            result["ceiling"] = ceiling.sweep(conn, kubeconfig, namespace, levels=levels,
                                              seconds=args.ceiling_seconds,
                                              server_pids=server_pids)
            _say(f"ceiling: {result['ceiling']['patches_per_s']} patches/s")
            save()

        if "protocol" in wanted:
            namespace = f"bench-protocol-{uuid.uuid4().hex[:5]}"
            conn.json("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
            _say("protocol: four writes per job, without and with the watches of 4 runners")
            result["protocol"] = protocol.measure(conn, kubeconfig, namespace, runners=4,
                                                  seconds=args.protocol_seconds,
                                                  server_pids=server_pids)
            _say(f"protocol: {result['protocol']['server_ms_per_job']} ms of server CPU per "
                 f"job, at most {result['protocol']['bound_jobs_per_s']} jobs/s")
            save()

        ctx = throughput.Context(conn=conn, kubeconfig=kubeconfig, kubectl=kubectl,
                                 out_dir=work, server_pids=server_pids,
                                 max_processes=args.max_runner_processes,
                                 status_interval=args.status_interval, profile=args.profile,
                                 keep_namespaces=control_plane is not None)
        plan: list[tuple[shapes.Shape, list[int]]] = []
        if "independent" in wanted:
            plan.append((shapes.independent(args.independent), _ints(args.runners)))
        if "chain" in wanted:
            plan.append((shapes.chain(args.chain), _ints(args.runners)))
        if "layered" in wanted:
            plan.append((shapes.layered(args.layers, args.width, args.fan_in),
                         _ints(args.layered_runners or args.runners)))
        for shape, runner_counts in plan:
            for runners in runner_counts:
                timeout = args.timeout or 120 + shape.jobs / 10
                _say(f"{shape.label} with {runners} runners (timeout {timeout:.0f} s)")
                begun = time.monotonic()
                paired = None
                if result["ceiling"]:
                    paired = ceiling.sample(kubeconfig, result["ceiling"],
                                            seconds=args.ceiling_seconds,
                                            server_pids=server_pids)
                    _say(f"  ceiling just before: {paired['patches_per_s']} patches/s")
                try:
                    case = throughput.run_case(ctx, shape, runners, timeout=timeout)
                except Exception as exc:  # noqa: BLE001 - one failed case must not lose the rest
                    case = {"shape": shape.kind, "label": shape.label, "jobs": shape.jobs,
                            "runners": runners, "error": f"{type(exc).__name__}: {exc}",
                            "traceback": traceback.format_exc()}
                case["ceiling"] = paired
                case["wall_seconds"] = round(time.monotonic() - begun, 1)
                result["cases"].append(case)
                p50 = ((case.get("handoff") or {}).get("total") or {}).get("p50_ms")
                _say(f"  -> {case.get('jobs_per_s')} jobs/s, "
                     f"{(case.get('writes') or {}).get('successful_per_job')} writes/job"
                     + (f", hand-off p50 {p50} ms" if p50 is not None else "")
                     + (f", failed: {case['error']}" if case.get("error") else ""))
                save()

        if "peer" in wanted:
            result["peer"] = _peer(args, work)
            save()
    finally:
        save()
        if control_plane is not None:
            control_plane.stop()
    _say(f"report: {out / 'report.md'}; logs and per-job timelines: {work / 'logs'}")
    return 0


def _peer(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    if shutil.which("redis-server") is None:
        return {"available": False, "reason": "redis-server is not installed"}
    try:
        from bench import celery_peer
    except ImportError as exc:
        return {"available": False, "reason": f"celery is not installed ({exc})"}
    cases = [("independent", args.independent, 1, args.independent),
             ("chain", args.chain, args.chain, 1),
             ("layered", args.layers * args.width, args.layers, args.width)]
    _say(f"peer: celery with workers {args.peer_workers}")
    return celery_peer.run_peer(cases, _ints(args.peer_workers), work / "logs",
                                timeout=args.timeout or 300)


def _code_state() -> dict[str, Any]:
    """The commit measured, and whether the operator's or runner's code differed from it."""
    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=REPO, capture_output=True, text=True,
                              check=False)
        # Only trailing space: porcelain lines begin with a status column that may be blank.
        return done.stdout.rstrip() if done.returncode == 0 else ""

    changed = git("status", "--porcelain", "--", "controller", "runner", "overseer", "crds")
    return {"commit": git("rev-parse", "HEAD").strip() or None,
            "uncommitted_changes": [line[3:] for line in changed.splitlines()]}


def _say(message: str) -> None:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%H:%M:%S")
    print(f"[bench {stamp}] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
