"""What the benchmark needs of a cluster: a connection, the apiserver's metrics, processes.

The benchmark talks HTTP to the API server itself (urllib here, aiohttp in the ceiling
load) instead of going through the official client: the numbers it reports must not
include a client's overhead, and it needs the raw ``/metrics`` text anyway.
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import re
import shutil
import ssl
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

from overseer.devcluster import Process

REPO = Path(__file__).resolve().parents[1]
WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY"})


@dataclass
class Connection:
    """The API server and the admin credentials a kubeconfig names."""

    server: str
    ca_file: str | None
    cert_file: str | None
    key_file: str | None
    token: str | None
    insecure: bool = False

    @classmethod
    def from_kubeconfig(cls, path: Path) -> Connection:
        config = yaml.safe_load(Path(path).read_text())
        current = config.get("current-context")
        context = next(c["context"] for c in config["contexts"] if c["name"] == current)
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        user = next((u["user"] for u in config.get("users", [])
                     if u["name"] == context.get("user")), {})
        # The client key must be a file for ssl; keep it private and remove it at exit.
        spool = Path(tempfile.mkdtemp(prefix="bench-creds-"))
        atexit.register(shutil.rmtree, spool, ignore_errors=True)

        def material(data_key: str, file_key: str, source: dict[str, Any]) -> str | None:
            if source.get(data_key):
                target = spool / data_key
                target.write_bytes(base64.b64decode(source[data_key]))
                target.chmod(0o600)
                return str(target)
            return source.get(file_key)

        return cls(
            server=cluster["server"].rstrip("/"),
            ca_file=material("certificate-authority-data", "certificate-authority", cluster),
            cert_file=material("client-certificate-data", "client-certificate", user),
            key_file=material("client-key-data", "client-key", user),
            token=user.get("token"),
            insecure=bool(cluster.get("insecure-skip-tls-verify")),
        )

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.cert_file and self.key_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def request(self, method: str, path: str, body: bytes | None = None, *,
                content_type: str = "application/json", accept: str = "application/json",
                timeout: float = 60) -> tuple[int, bytes]:
        request = urllib.request.Request(
            self.server + path, data=body, method=method,
            headers={**self.headers(), "Content-Type": content_type, "Accept": accept})
        try:
            with urllib.request.urlopen(request, context=self._context, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def json(self, method: str, path: str, body: Any = None, **kwargs: Any) -> dict[str, Any]:
        data = None if body is None else (body if isinstance(body, bytes) else
                                          json.dumps(body).encode())
        status, out = self.request(method, path, data, **kwargs)
        if status >= 300:
            raise RuntimeError(f"{method} {path}: HTTP {status}: {out[:300]!r}")
        return json.loads(out)

    @property
    def _context(self) -> ssl.SSLContext:
        if not hasattr(self, "_cached_context"):
            self._cached_context = self.ssl_context()
        return self._cached_context


# --- the apiserver's own request counts ---------------------------------------------------

_LINE = re.compile(r'^apiserver_request_total\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

RequestKey = tuple[str, str, str, str, str]  # verb, group, resource, subresource, code


_DURATION = re.compile(
    r'^(?P<metric>apiserver_request_duration_seconds|'
    r'apiserver_flowcontrol_request_wait_duration_seconds)_(?P<kind>sum|count)'
    r'\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)')


class Scrape(Counter):  # type: ignore[type-arg]
    """Request counts by key, and the server's time spent per (verb, resource)."""

    durations: dict[tuple[str, str, str], float]


def request_counts(conn: Connection) -> Scrape:
    """``apiserver_request_total`` as the server counts it now, by verb, resource and code.

    Also keeps the sums and counts of ``apiserver_request_duration_seconds`` (the time the
    server took) and of APF's queue wait, by verb and resource, in ``durations``.
    """
    status, text = conn.request("GET", "/metrics", timeout=30)
    if status != 200:
        raise RuntimeError(f"GET /metrics: HTTP {status}")
    counts = Scrape()
    counts.durations = {}
    for line in text.decode().splitlines():
        duration = _DURATION.match(line)
        if duration:
            labels = dict(_LABEL.findall(duration["labels"]))
            name = labels.get("resource", "")
            if labels.get("subresource"):
                name += "/" + labels["subresource"]
            key = (duration["metric"].split("_")[1] + "_" + duration["kind"],
                   labels.get("verb", labels.get("priority_level", "")), name)
            counts.durations[key] = counts.durations.get(key, 0.0) + float(duration["value"])
            continue
        match = _LINE.match(line)
        if not match:
            continue
        labels = dict(_LABEL.findall(match["labels"]))
        key = (labels.get("verb", ""), labels.get("group", ""), labels.get("resource", ""),
               labels.get("subresource", ""), labels.get("code", ""))
        counts[key] += int(float(match["value"]))
    return counts


def writes_summary(before: Counter[RequestKey], after: Counter[RequestKey], jobs: int
                   ) -> dict[str, Any]:
    """Writes between two scrapes, by resource: successful, conflicts (409), other errors."""
    by_resource: dict[str, dict[str, Any]] = {}
    reads: Counter[str] = Counter()
    for key in set(after) | set(before):
        delta = after[key] - before[key]
        if delta <= 0:
            continue
        verb, group, resource, subresource, code = key
        name = f"{resource}/{subresource}" if subresource else resource
        if group:
            name = f"{name}.{group}"
        if verb not in WRITE_VERBS:
            reads[f"{verb} {name}"] += delta
            continue
        row = by_resource.setdefault(name, {"ok": 0, "conflict": 0, "error": 0, "by_verb": {}})
        outcome = "ok" if code.startswith("2") else "conflict" if code == "409" else "error"
        row[outcome] += delta
        row["by_verb"][f"{verb} {code}"] = row["by_verb"].get(f"{verb} {code}", 0) + delta
    ok = sum(r["ok"] for r in by_resource.values())
    conflicts = sum(r["conflict"] for r in by_resource.values())
    errors = sum(r["error"] for r in by_resource.values())
    for row in by_resource.values():
        row["ok_per_job"] = round(row["ok"] / jobs, 3) if jobs else None
        row["conflict_per_job"] = round(row["conflict"] / jobs, 3) if jobs else None
    latency: dict[str, float] = {}
    bd, ad = getattr(before, "durations", {}), getattr(after, "durations", {})
    for (kind, verb, name), total in ad.items():
        if not kind.endswith("_sum"):
            continue
        count_key = (kind[:-4] + "_count", verb, name)
        n = ad.get(count_key, 0) - bd.get(count_key, 0)
        if n > 0 and (verb in WRITE_VERBS or kind.startswith("flowcontrol")):
            label = ("server " if kind.startswith("request") else "APF wait ") + f"{verb} {name}"
            latency[label] = round(1000 * (total - bd.get((kind, verb, name), 0.0)) / n, 2)
    return {
        "successful": ok,
        "conflicts": conflicts,
        "errors": errors,
        "successful_per_job": round(ok / jobs, 3) if jobs else None,
        "conflicts_per_job": round(conflicts / jobs, 3) if jobs else None,
        "all_attempts_per_job": round((ok + conflicts + errors) / jobs, 3) if jobs else None,
        "by_resource": dict(sorted(by_resource.items())),
        "reads": dict(sorted(reads.items())),
        "mean_ms": dict(sorted(latency.items())),
    }


# --- processes ----------------------------------------------------------------------------


def start_python(name: str, argv: list[str], *, log_dir: Path, env: dict[str, str]) -> Process:
    """Start ``python argv`` from the repository root, logging to ``log_dir/name.log``."""
    return Process(name, [sys.executable, *argv], log_dir / f"{name}.log", env=env, cwd=REPO)


@dataclass
class RssSampler:
    """Samples the resident memory and CPU time of some processes until stopped."""

    pids: dict[str, list[int]]
    interval: float = 0.25
    peak: dict[str, int] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _started: float = 0.0

    def start(self) -> RssSampler:
        self._procs = {role: [psutil.Process(p) for p in pids] for role, pids in self.pids.items()}
        self._cpu0 = {role: sum(self._cpu(p) for p in procs) for role, procs in self._procs.items()}
        self._started = time.monotonic()
        self._busy0 = self._busy()
        self._self0 = self._cpu(psutil.Process())
        self._thread = threading.Thread(target=self._loop, daemon=True, name="rss-sampler")
        self._thread.start()
        return self

    @staticmethod
    def _busy() -> float:
        t = psutil.cpu_times()
        return sum(t) - t.idle - getattr(t, "iowait", 0.0)

    @staticmethod
    def _cpu(proc: psutil.Process) -> float:
        try:
            t = proc.cpu_times()
            return t.user + t.system
        except psutil.Error:
            return 0.0

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        for role, procs in self._procs.items():
            for proc in procs:
                try:
                    rss = proc.memory_info().rss
                except psutil.Error:
                    continue
                self.peak[role] = max(self.peak.get(role, 0), rss)

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.sample()
        wall = time.monotonic() - self._started
        out: dict[str, Any] = {}
        ours = self._cpu(psutil.Process()) - self._self0
        for role, procs in self._procs.items():
            cpu = sum(self._cpu(p) for p in procs) - self._cpu0[role]
            ours += cpu
            out[role] = {"peak_rss_mb": round(self.peak.get(role, 0) / 2**20, 1),
                         "cpu_seconds": round(cpu, 2),
                         "cpu_percent_of_one_core": round(100 * cpu / wall, 1) if wall else None}
        # The machine as a whole: how busy it was, and how much of that was not ours (other
        # processes sharing the cores make every figure of the case slower).
        busy = self._busy() - self._busy0
        out["machine"] = {
            "busy_percent_of_all_cores": round(100 * busy / wall / psutil.cpu_count(), 1)
            if wall else None,
            "others_cpu_percent_of_one_core": round(100 * max(0.0, busy - ours) / wall, 1)
            if wall else None,
            "load_average_1m_at_end": round(psutil.getloadavg()[0], 2),
        }
        return out


def control_plane_pids(cp: Any) -> dict[str, int]:
    """Process ids of a ``ControlPlane``'s etcd and kube-apiserver, when we started it."""
    if cp is None:
        return {}
    return {p.name: p.popen.pid for p in getattr(cp, "_processes", [])}


def env_for(kubeconfig: Path, extra_path: str | None = None) -> dict[str, str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "OVERSEER_LOG_FORMAT": "json",
           "PYTHONPATH": str(REPO)}
    if extra_path:
        env["PATH"] = f"{extra_path}{os.pathsep}{env.get('PATH', os.defpath)}"
    return env
