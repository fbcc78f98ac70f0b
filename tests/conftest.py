"""Fixtures for the end-to-end tests: a real API server, the CRDs, the operator, runners.

Unless ``KUBECONFIG`` names a cluster, the session starts a local control plane (etcd and
kube-apiserver on loopback, see ``overseer.devcluster``). Each test gets a namespace of
its own. One operator serves every test namespace (``t-*``); a test that needs an
operator to itself (to kill or restart it) takes ``own_operator`` and a namespace outside
that pattern. Runners are started per test, as the same processes that run in the pods.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from overseer import kube
from overseer.devcluster import ControlPlane, Process

REPO = Path(__file__).resolve().parents[1]
SHARED_PREFIX = "t-"
OWN_PREFIX = "own-"


@dataclass
class Cluster:
    kubeconfig: Path
    env: dict[str, str]
    kubectl_path: str
    api_client: Any = None
    control_plane: ControlPlane | None = None

    def kubectl(self, *args: str, input: str | None = None, check: bool = True
                ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.kubectl_path, *args], env=self.env, input=input, capture_output=True,
            text=True, timeout=60,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
        return result

    def apply(self, manifest: dict[str, Any] | str, namespace: str, *, check: bool = True
              ) -> subprocess.CompletedProcess[str]:
        # JSON, not YAML: kubectl reads YAML 1.1, where a job named "y" or "no" is a boolean.
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        return self.kubectl("apply", "-n", namespace, "-f", "-", input=text, check=check)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    given = os.environ.get("KUBECONFIG")
    control_plane = None
    if given:
        env = dict(os.environ)
        kubectl = shutil.which("kubectl") or "kubectl"
        kubeconfig = Path(given)
    else:
        # With the controller-manager, deleted namespaces go away and owned Jobs are
        # garbage-collected, as on a real cluster.
        control_plane = ControlPlane(tmp_path_factory.mktemp("control-plane"),
                                     controller_manager=True).start()
        env = control_plane.env()
        kubectl = str(control_plane.kubectl)
        kubeconfig = control_plane.kubeconfig

    env = {**env, "KUBECONFIG": str(kubeconfig), "OVERSEER_LOG_FORMAT": "json",
           "PYTHONPATH": str(REPO)}
    os.environ["KUBECONFIG"] = str(kubeconfig)
    found = Cluster(kubeconfig=kubeconfig, env=env, kubectl_path=kubectl,
                    control_plane=control_plane)
    found.kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
    found.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                  "crd/jobgraphs.overseer.dev", "crd/jobs.overseer.dev")
    found.api_client = kube.load_config()
    try:
        yield found
    finally:
        if given is None:
            os.environ.pop("KUBECONFIG", None)
        if control_plane is not None:
            control_plane.stop()


@dataclass
class Processes:
    directory: Path
    env: dict[str, str]
    started: list[Process] = field(default_factory=list)

    def start(self, name: str, *argv: str, env: dict[str, str] | None = None) -> Process:
        log_path = self.directory / f"{name}-{len(self.started)}.log"
        process = Process(name, [sys.executable, *argv], log_path,
                          env={**self.env, **(env or {})}, cwd=REPO)
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.started):
            process.stop()

    def report(self) -> str:
        return "\n".join(f"--- {p.name} ({p.log_path})\n{p.log()[-4000:]}" for p in self.started)


@pytest.fixture(scope="session")
def shared_operator(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
                    ) -> Iterator[Process]:
    processes = Processes(tmp_path_factory.mktemp("operator"), cluster.env)
    process = processes.start("operator", "-m", "controller", "--namespace", f"{SHARED_PREFIX}*",
                              "--status-interval", "0.2")
    try:
        yield process
    finally:
        processes.stop_all()


def _slug(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")


def _make_namespace(cluster: Cluster, name: str) -> None:
    cluster.kubectl("create", "namespace", name)


@pytest.fixture
def namespace(cluster: Cluster, shared_operator: Process, request: pytest.FixtureRequest
              ) -> Iterator[str]:
    """A fresh namespace served by the shared operator."""
    name = f"{SHARED_PREFIX}{_slug(request)}-{uuid.uuid4().hex[:5]}"
    _make_namespace(cluster, name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def own_namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace that the shared operator does not serve."""
    name = f"{OWN_PREFIX}{_slug(request)}-{uuid.uuid4().hex[:5]}"
    _make_namespace(cluster, name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def processes(cluster: Cluster, tmp_path: Path, request: pytest.FixtureRequest
              ) -> Iterator[Processes]:
    procs = Processes(tmp_path, cluster.env)
    yield procs
    procs.stop_all()
    if request.node.stash.get(_FAILED, False):
        print(procs.report())


_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" and report.failed:
        item.stash[_FAILED] = True
    return report


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    """A file the test handlers append one line to per execution."""
    return tmp_path / "ledger.jsonl"


@pytest.fixture
def start_runner(processes: Processes, ledger: Path
                 ) -> Callable[..., Process]:
    def start(namespace: str, handlers: str, *extra: str, env: dict[str, str] | None = None
              ) -> Process:
        return processes.start(
            "runner", "-m", "runner", "--handlers", handlers, "--namespace", namespace, *extra,
            env={"OVERSEER_TEST_LEDGER": str(ledger), **(env or {})},
        )
    return start


def read_ledger(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for(predicate: Callable[[], Any], *, timeout: float = 60, interval: float = 0.1,
             what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
