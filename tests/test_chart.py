"""The Helm chart: it lints, renders what the API server accepts, rejects bad values with a
message that says what is wrong, installs the objects it promises, and its RBAC is enough
for the operator and a runner to run a graph, and no more.

No kubelet runs here, so the chart's pods never start. The RBAC is proven the way the
pods would use it: the operator and a runner run as local processes with kubeconfigs that
hold nothing but a token of the chart's ServiceAccounts.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
import tarfile
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from overseer.devcluster import ControlPlane
from tests.conftest import REPO, Cluster, Processes
from tests.helpers import graph, job, jobs_of, wait_graph

pytestmark = pytest.mark.e2e

CHART = REPO / "helm" / "overseer"
RELEASE = "ovs"
OPERATOR_SA = f"{RELEASE}-overseer-operator"
RUNNER_SA = f"{RELEASE}-overseer-runner-basic"

VALUES: dict[str, Any] = {
    "runnerPools": [
        {"name": "basic", "handlers": "tests.handlers.basic", "replicas": 2, "concurrency": 3},
        {"name": "sales", "image": "overseer-sales:0.1.0",
         "handlers": "examples.sales.handlers", "types": ["split", "total"]},
    ],
    "metrics": {"enabled": True},
}


class Helm:
    def __init__(self, binary: str, cluster: Cluster, home: Path) -> None:
        self.binary = binary
        # Helm's own cache, config and data in a directory of the test session's.
        self.env = {**cluster.env, "HELM_CACHE_HOME": str(home / "cache"),
                    "HELM_CONFIG_HOME": str(home / "config"),
                    "HELM_DATA_HOME": str(home / "data")}

    def __call__(self, *args: str, values: dict[str, Any] | None = None, check: bool = True
                 ) -> subprocess.CompletedProcess[str]:
        argv = [self.binary, *args]
        if values is not None:
            argv += ["-f", "-"]
        result = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=120,
                                input=None if values is None else yaml.safe_dump(values))
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stderr}")
        return result

    def template(self, namespace: str, values: dict[str, Any], *extra: str) -> list[dict]:
        out = self("template", RELEASE, str(CHART), "-n", namespace, *extra, values=values)
        return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.fixture(scope="module")
def helm(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    out = subprocess.run([str(REPO / "hack" / "build-tools.sh"), "helm"], capture_output=True,
                         text=True, timeout=1800, check=True)
    return Helm(str(Path(out.stdout.strip()) / "helm"), cluster, tmp_path_factory.mktemp("helm"))


def kinds_and_names(docs: list[dict]) -> set[tuple[str, str]]:
    return {(doc["kind"], doc["metadata"]["name"]) for doc in docs}


# --- the chart itself --------------------------------------------------------------------


SALES_VALUES = yaml.safe_load((REPO / "examples" / "values-sales.yaml").read_text())


@pytest.mark.parametrize("values", [{}, VALUES, SALES_VALUES],
                         ids=["defaults", "two-pools", "values-sales"])
def test_lint_passes_strict(helm: Helm, values: dict[str, Any]) -> None:
    result = helm("lint", "--strict", str(CHART), values=values)
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


def test_the_charts_crds_are_the_repositorys_crds(helm: Helm, tmp_path: Path) -> None:
    # One copy: the chart's crds/ is a link to the repository's, which the CRD test keeps
    # equal to what the models generate. Helm follows the link when it renders and packages.
    link = CHART / "crds"
    assert link.is_symlink() and link.resolve() == (REPO / "crds").resolve()
    repo_crds = {p.name: p.read_text() for p in sorted((REPO / "crds").glob("*.yaml"))}

    rendered = helm.template("default", {}, "--include-crds")
    crds = [d for d in rendered if d["kind"] == "CustomResourceDefinition"]
    assert crds == [yaml.safe_load(text) for text in repo_crds.values()]

    shown = helm("show", "crds", str(CHART)).stdout
    assert [d for d in yaml.safe_load_all(shown) if d] == crds

    helm("package", str(CHART), "-d", str(tmp_path))
    with tarfile.open(tmp_path / "overseer-0.1.0.tgz") as tar:
        members = [m for m in tar.getmembers() if m.name.startswith("overseer/crds/")]
        packaged = {Path(m.name).name: tar.extractfile(m).read().decode()  # type: ignore
                    for m in members}
    assert packaged == repo_crds


def test_a_first_install_creates_the_crds_through_the_link(cluster: Cluster, helm: Helm,
                                                          tmp_path: Path) -> None:
    # The session's cluster has the CRDs already, and helm skips existing ones; a control
    # plane of this test's own has none.
    if cluster.control_plane is None:
        pytest.skip("needs the local control plane; KUBECONFIG names another cluster")
    with ControlPlane(tmp_path / "cp") as fresh:
        env = {**helm.env, **fresh.env()}
        subprocess.run([str(fresh.kubectl), "create", "namespace", "fresh"], env=env,
                       check=True, capture_output=True, timeout=60)
        subprocess.run([helm.binary, "install", RELEASE, str(CHART), "-n", "fresh"], env=env,
                       check=True, capture_output=True, timeout=120)
        crds = subprocess.run(
            [str(fresh.kubectl), "get", "crd", "-o", "jsonpath={.items[*].metadata.name}"],
            env=env, check=True, capture_output=True, text=True, timeout=60)
    assert crds.stdout.split() == ["jobgraphs.overseer.dev", "jobs.overseer.dev"]


def test_template_is_accepted_by_the_api_server(cluster: Cluster, helm: Helm,
                                                own_namespace: str) -> None:
    for values in ({}, VALUES, SALES_VALUES, {**VALUES, "operator": {"clusterWide": True}}):
        docs = helm.template(own_namespace, values)
        result = cluster.kubectl("apply", "--dry-run=server", "-n", own_namespace, "-f", "-",
                                 input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                   "items": docs}))
        assert result.stdout.count("(server dry run)") == len(docs)


def test_renders_one_deployment_account_and_role_per_pool(helm: Helm) -> None:
    docs = helm.template("team", VALUES)
    assert kinds_and_names(docs) == {
        ("ServiceAccount", "ovs-overseer-operator"),
        ("ServiceAccount", "ovs-overseer-runner-basic"),
        ("ServiceAccount", "ovs-overseer-runner-sales"),
        ("ClusterRole", "team-ovs-overseer-operator"),
        ("ClusterRoleBinding", "team-ovs-overseer-operator"),
        ("Role", "ovs-overseer-operator"),
        ("Role", "ovs-overseer-runner-basic"),
        ("Role", "ovs-overseer-runner-sales"),
        ("RoleBinding", "ovs-overseer-operator"),
        ("RoleBinding", "ovs-overseer-runner-basic"),
        ("RoleBinding", "ovs-overseer-runner-sales"),
        ("Deployment", "ovs-overseer-operator"),
        ("Deployment", "ovs-overseer-runner-basic"),
        ("Deployment", "ovs-overseer-runner-sales"),
        ("Service", "ovs-overseer-operator-metrics"),
        ("Service", "ovs-overseer-runner-basic-metrics"),
        ("Service", "ovs-overseer-runner-sales-metrics"),
    }


def deployments(docs: list[dict]) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}


def test_operator_and_runners_get_the_commands_the_design_names(helm: Helm) -> None:
    found = deployments(helm.template("team", VALUES))
    operator = found["ovs-overseer-operator"]["spec"]["template"]["spec"]
    (container,) = operator["containers"]
    assert container["command"] == [
        "overseer-operator", "--namespace", "team", "--log-format", "json",
        "--log-level", "INFO", "--liveness", "http://0.0.0.0:8080/healthz",
        "--metrics-port", "9090",
    ]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "liveness"}
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "liveness": 8080, "metrics": 9090}
    assert found["ovs-overseer-operator"]["spec"]["replicas"] == 1
    assert found["ovs-overseer-operator"]["spec"]["strategy"] == {"type": "Recreate"}

    basic = found["ovs-overseer-runner-basic"]["spec"]
    assert basic["replicas"] == 2
    (runner,) = basic["template"]["spec"]["containers"]
    assert runner["image"] == "overseer:0.1.0"
    assert runner["command"] == [
        "overseer-runner", "--handlers", "tests.handlers.basic", "--namespace", "team",
        "--concurrency", "3", "--log-format", "json", "--log-level", "INFO",
        "--metrics-port", "9091",
    ]
    assert runner["env"][:2] == [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    ]
    assert basic["template"]["spec"]["terminationGracePeriodSeconds"] == 60

    (sales,) = found["ovs-overseer-runner-sales"]["spec"]["template"]["spec"]["containers"]
    assert sales["image"] == "overseer-sales:0.1.0"
    assert sales["command"][:9] == [
        "overseer-runner", "--handlers", "examples.sales.handlers", "--namespace", "team",
        "--concurrency", "1", "--types", "split,total"]


def test_values_sales_runs_the_sales_handlers_from_the_example_image(helm: Helm) -> None:
    found = deployments(helm.template("sales", SALES_VALUES))
    (runner,) = found["ovs-overseer-runner-sales"]["spec"]["template"]["spec"]["containers"]
    assert runner["image"] == "overseer-sales:0.1.0"
    assert runner["command"][:3] == ["overseer-runner", "--handlers", "examples.sales.handlers"]
    (operator,) = found["ovs-overseer-operator"]["spec"]["template"]["spec"]["containers"]
    assert operator["image"] == "overseer:0.1.0"


def test_watch_namespaces_get_a_role_each_and_cluster_wide_a_cluster_role(helm: Helm) -> None:
    docs = helm.template("ops", {"operator": {"watchNamespaces": ["team-a", "team-b"]}})
    roles = {(d["kind"], d["metadata"]["namespace"]) for d in docs
             if d["kind"] in ("Role", "RoleBinding")}
    assert roles == {("Role", "team-a"), ("Role", "team-b"),
                     ("RoleBinding", "team-a"), ("RoleBinding", "team-b")}
    command = deployments(docs)["ovs-overseer-operator"]["spec"]["template"]["spec"][
        "containers"][0]["command"]
    assert command[1:5] == ["--namespace", "team-a", "--namespace", "team-b"]

    docs = helm.template("ops", {"operator": {"clusterWide": True}})
    assert {(d["kind"], d["metadata"]["name"]) for d in docs if "Role" in d["kind"]} == {
        ("ClusterRole", "ops-ovs-overseer-operator"),
        ("ClusterRoleBinding", "ops-ovs-overseer-operator"),
        ("ClusterRole", "ops-ovs-overseer-operator-graphs"),
        ("ClusterRoleBinding", "ops-ovs-overseer-operator-graphs"),
    }
    command = deployments(docs)["ovs-overseer-operator"]["spec"]["template"]["spec"][
        "containers"][0]["command"]
    assert command[1] == "--all-namespaces"


def test_every_pod_runs_unprivileged_on_a_read_only_root(helm: Helm) -> None:
    for name, deployment in deployments(helm.template("team", VALUES)).items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"] == {
            "runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        }, name
        (container,) = pod["containers"]
        assert container["securityContext"] == {
            "runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
            "privileged": False, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }, name
        assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}], name
        assert pod["volumes"] == [{"name": "tmp", "emptyDir": {}}], name
        assert pod["serviceAccountName"] == name


def test_service_monitors_render_only_where_the_kind_exists(helm: Helm) -> None:
    values = {**VALUES, "metrics": {"enabled": True, "serviceMonitor": {"enabled": True}}}
    refused = helm("template", RELEASE, str(CHART), values=values, check=False)
    assert refused.returncode == 1
    assert ("metrics.serviceMonitor.enabled needs the ServiceMonitor kind "
            "(monitoring.coreos.com/v1, from the Prometheus Operator)") in refused.stderr

    docs = helm.template("team", values,
                         "--api-versions", "monitoring.coreos.com/v1/ServiceMonitor")
    monitors = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "ServiceMonitor"}
    assert sorted(monitors) == ["ovs-overseer-operator", "ovs-overseer-runner-basic",
                                "ovs-overseer-runner-sales"]
    assert monitors["ovs-overseer-runner-basic"]["endpoints"] == [
        {"port": "metrics", "interval": "30s"}]


@pytest.mark.parametrize(("values", "message"), [
    ({"runnerPools": [{"name": "a", "handlers": "m", "replicas": "2"}]},
     "- at '/runnerPools/0/replicas': got string, want integer"),
    ({"runnerPools": [{"name": "a"}]},
     "- at '/runnerPools/0': missing property 'handlers'"),
    ({"runnerPools": [{"name": "a", "handlers": "m", "replica": 2}]},
     "- at '/runnerPools/0': additional properties 'replica' not allowed"),
    ({"runnerPools": [{"name": "a", "handlers": "m", "concurrency": 0}]},
     "- at '/runnerPools/0/concurrency': minimum: got 0, want 1"),
    ({"runnerPools": [{"name": "a", "handlers": "my-jobs/handlers.py"}]},
     "- at '/runnerPools/0/handlers': 'my-jobs/handlers.py' does not match pattern"),
    ({"operator": {"watchNamespaces": ["team-*"]}},
     "- at '/operator/watchNamespaces/0': 'team-*' does not match pattern"),
    ({"operator": {"replicas": 2}},
     "- at '/operator/replicas': value must be one of 0, 1"),
    ({"runnerpools": []},
     "- at '': additional properties 'runnerpools' not allowed"),
], ids=["replicas-string", "no-handlers", "unknown-key", "concurrency-0", "handlers-path",
        "namespace-glob", "two-operators", "misspelt-top-level"])
def test_schema_rejects_bad_values_saying_where(helm: Helm, values: dict[str, Any],
                                                message: str) -> None:
    result = helm("template", RELEASE, str(CHART), values=values, check=False)
    assert result.returncode == 1
    assert "values don't meet the specifications of the schema(s)" in result.stderr
    assert message in result.stderr


def test_two_pools_of_one_name_are_refused(helm: Helm) -> None:
    values = {"runnerPools": [{"name": "a", "handlers": "m1"}, {"name": "a", "handlers": "m2"}]}
    result = helm("template", RELEASE, str(CHART), values=values, check=False)
    assert result.returncode == 1
    assert 'runnerPools: the name "a" is used twice' in result.stderr


# --- installed into the local control plane ----------------------------------------------


@dataclass
class Release:
    namespace: str
    notes: str


@pytest.fixture(scope="module")
def release(cluster: Cluster, helm: Helm) -> Iterator[Release]:
    """The chart installed into a namespace of its own that the shared operator ignores."""
    namespace = f"chart-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", namespace)
    # The CRDs are in already (the session installed them): helm skips existing CRDs.
    # No replicas: on a cluster with a kubelet (kind), pods would start, and the operator
    # pod would serve the namespace beside the one the RBAC test runs.
    values = {**VALUES, "operator": {"replicas": 0},
              "runnerPools": [{**pool, "replicas": 0} for pool in VALUES["runnerPools"]]}
    result = helm("install", RELEASE, str(CHART), "-n", namespace, values=values)
    try:
        yield Release(namespace, result.stdout)
    finally:
        # Uninstall removes the cluster-scoped objects, which the namespace does not own.
        helm("uninstall", RELEASE, "-n", namespace, "--wait=false", check=False)
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


@pytest.fixture(scope="module")
def installed(release: Release) -> str:
    return release.namespace


def test_install_notes_say_what_to_do_next(release: Release) -> None:
    ns = release.namespace
    assert f"Overseer 0.1.0 is installed in namespace {ns}." in release.notes
    assert f"The operator serves graphs in: {ns}" in release.notes
    assert "basic: tests.handlers.basic, 0 x concurrency 3" in release.notes
    assert "sales: examples.sales.handlers (types split, total), 0 x concurrency 1" in release.notes
    assert f"kubectl -n {ns} apply -f graph.yaml      # a JobGraph" in release.notes
    assert f"kubectl -n {ns} get overseer             # graphs and their jobs" in release.notes


def test_install_creates_the_objects(cluster: Cluster, installed: str) -> None:
    listing = json.loads(cluster.kubectl(
        "get", "deployments,serviceaccounts,roles,rolebindings,services", "-n", installed,
        "-l", f"app.kubernetes.io/instance={RELEASE}", "-o", "json").stdout)
    assert kinds_and_names(listing["items"]) == {
        ("Deployment", "ovs-overseer-operator"),
        ("Deployment", "ovs-overseer-runner-basic"),
        ("Deployment", "ovs-overseer-runner-sales"),
        ("ServiceAccount", "ovs-overseer-operator"),
        ("ServiceAccount", "ovs-overseer-runner-basic"),
        ("ServiceAccount", "ovs-overseer-runner-sales"),
        ("Role", "ovs-overseer-operator"),
        ("Role", "ovs-overseer-runner-basic"),
        ("Role", "ovs-overseer-runner-sales"),
        ("RoleBinding", "ovs-overseer-operator"),
        ("RoleBinding", "ovs-overseer-runner-basic"),
        ("RoleBinding", "ovs-overseer-runner-sales"),
        ("Service", "ovs-overseer-operator-metrics"),
        ("Service", "ovs-overseer-runner-basic-metrics"),
        ("Service", "ovs-overseer-runner-sales-metrics"),
    }
    cluster_scoped = json.loads(cluster.kubectl(
        "get", "clusterroles,clusterrolebindings", "-l",
        f"app.kubernetes.io/instance={RELEASE}", "-o", "json").stdout)
    assert {(kind, name) for kind, name in kinds_and_names(cluster_scoped["items"])
            if name.startswith(installed)} == {
        ("ClusterRole", f"{installed}-ovs-overseer-operator"),
        ("ClusterRoleBinding", f"{installed}-ovs-overseer-operator"),
    }


# (verb, resource, subresource): what each process does, read from its code.
OPERATOR_MAY = [
    ("get", "jobgraphs.overseer.dev", ""), ("list", "jobgraphs.overseer.dev", ""),
    ("watch", "jobgraphs.overseer.dev", ""), ("patch", "jobgraphs.overseer.dev", ""),
    ("delete", "jobgraphs.overseer.dev", ""),
    ("get", "jobgraphs.overseer.dev", "status"), ("patch", "jobgraphs.overseer.dev", "status"),
    ("get", "jobs.overseer.dev", ""), ("list", "jobs.overseer.dev", ""),
    ("watch", "jobs.overseer.dev", ""), ("create", "jobs.overseer.dev", ""),
    ("delete", "jobs.overseer.dev", ""), ("deletecollection", "jobs.overseer.dev", ""),
    ("get", "jobs.overseer.dev", "status"), ("patch", "jobs.overseer.dev", "status"),
    ("get", "leases.coordination.k8s.io", ""), ("list", "leases.coordination.k8s.io", ""),
    ("watch", "leases.coordination.k8s.io", ""), ("delete", "leases.coordination.k8s.io", ""),
    ("create", "events", ""), ("patch", "events", ""),
    ("create", "events.events.k8s.io", ""), ("patch", "events.events.k8s.io", ""),
    ("list", "customresourcedefinitions.apiextensions.k8s.io", ""),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io", ""),
    ("list", "namespaces", ""), ("watch", "namespaces", ""),
]
OPERATOR_MAY_NOT = [
    ("update", "jobgraphs.overseer.dev", ""), ("create", "jobgraphs.overseer.dev", ""),
    ("deletecollection", "jobgraphs.overseer.dev", ""), ("update", "jobs.overseer.dev", ""),
    ("patch", "jobs.overseer.dev", ""), ("create", "leases.coordination.k8s.io", ""),
    ("update", "leases.coordination.k8s.io", ""), ("get", "secrets", ""),
    ("list", "secrets", ""), ("create", "pods", ""), ("list", "pods", ""),
    ("create", "customresourcedefinitions.apiextensions.k8s.io", ""),
    ("get", "customresourcedefinitions.apiextensions.k8s.io", ""),
    ("patch", "customresourcedefinitions.apiextensions.k8s.io", ""),
    ("get", "namespaces", ""), ("create", "namespaces", ""), ("delete", "namespaces", ""),
    ("create", "roles.rbac.authorization.k8s.io", ""),
]
RUNNER_MAY = [
    ("get", "jobs.overseer.dev", ""), ("list", "jobs.overseer.dev", ""),
    ("watch", "jobs.overseer.dev", ""),
    ("get", "jobs.overseer.dev", "status"), ("patch", "jobs.overseer.dev", "status"),
    ("get", "jobgraphs.overseer.dev", ""),
    ("create", "leases.coordination.k8s.io", ""), ("get", "leases.coordination.k8s.io", ""),
    ("update", "leases.coordination.k8s.io", ""), ("patch", "leases.coordination.k8s.io", ""),
    ("delete", "leases.coordination.k8s.io", ""),
]
RUNNER_MAY_NOT = [
    ("create", "jobs.overseer.dev", ""), ("delete", "jobs.overseer.dev", ""),
    ("deletecollection", "jobs.overseer.dev", ""), ("patch", "jobs.overseer.dev", ""),
    ("update", "jobs.overseer.dev", ""), ("update", "jobs.overseer.dev", "status"),
    ("list", "jobgraphs.overseer.dev", ""), ("watch", "jobgraphs.overseer.dev", ""),
    ("patch", "jobgraphs.overseer.dev", ""), ("patch", "jobgraphs.overseer.dev", "status"),
    ("create", "jobgraphs.overseer.dev", ""), ("delete", "jobgraphs.overseer.dev", ""),
    ("list", "leases.coordination.k8s.io", ""), ("watch", "leases.coordination.k8s.io", ""),
    ("create", "events", ""), ("get", "secrets", ""), ("create", "pods", ""),
    ("list", "customresourcedefinitions.apiextensions.k8s.io", ""),
]


def can_i(cluster: Cluster, namespace: str, account: str,
          checks: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], bool]:
    answers = {}
    for verb, resource, subresource in checks:
        extra = ["--subresource", subresource] if subresource else []
        result = cluster.kubectl(
            "auth", "can-i", f"--as=system:serviceaccount:{namespace}:{account}", verb,
            resource, *extra, "-n", namespace, check=False)
        answers[(verb, resource, subresource)] = result.stdout.strip() == "yes"
    return answers


@pytest.mark.parametrize(("account", "may", "may_not"), [
    (OPERATOR_SA, OPERATOR_MAY, OPERATOR_MAY_NOT),
    (RUNNER_SA, RUNNER_MAY, RUNNER_MAY_NOT),
], ids=["operator", "runner"])
def test_accounts_may_do_what_their_code_does_and_nothing_else(
        cluster: Cluster, installed: str, account: str, may: list, may_not: list) -> None:
    assert can_i(cluster, installed, account, may) == {check: True for check in may}
    assert can_i(cluster, installed, account, may_not) == {check: False for check in may_not}


def test_accounts_may_not_touch_another_namespace(cluster: Cluster, installed: str,
                                                  own_namespace: str) -> None:
    for account in (OPERATOR_SA, RUNNER_SA):
        result = cluster.kubectl(
            "auth", "can-i", f"--as=system:serviceaccount:{installed}:{account}", "list",
            "jobs.overseer.dev", "-n", own_namespace, check=False)
        assert result.stdout.strip() == "no", account


def token_kubeconfig(cluster: Cluster, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig holding only a token of ``account``: no client certificate to win over it."""
    token = cluster.kubectl("create", "token", account, "-n", namespace,
                            "--duration", "1h").stdout.strip()
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    context = next(c["context"] for c in admin["contexts"]
                   if c["name"] == admin["current-context"])
    server = next(c["cluster"] for c in admin["clusters"] if c["name"] == context["cluster"])
    ca = server.get("certificate-authority-data") or base64.b64encode(
        Path(server["certificate-authority"]).read_bytes()).decode()
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server["server"],
                                               "certificate-authority-data": ca}}],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "c", "user": account,
                                                "namespace": namespace}}],
        "current-context": "sa",
    }))
    path.chmod(0o600)
    return path


def test_operator_and_runner_with_only_the_charts_rbac_run_a_graph(
        cluster: Cluster, installed: str, processes: Processes, tmp_path: Path) -> None:
    operator_config = token_kubeconfig(cluster, installed, OPERATOR_SA, tmp_path / "operator")
    runner_config = token_kubeconfig(cluster, installed, RUNNER_SA, tmp_path / "runner")
    # The token is the runner account's and no one else's.
    whoami = subprocess.run(
        [cluster.kubectl_path, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"],
        env={**cluster.env, "KUBECONFIG": str(runner_config)}, capture_output=True, text=True,
        timeout=60)
    assert whoami.stdout == f"system:serviceaccount:{installed}:{RUNNER_SA}"

    # The liveness endpoint the chart probes, on a free loopback port instead of 8080.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    operator = processes.start("operator", "-m", "controller", "--namespace", installed,
                               "--liveness", f"http://127.0.0.1:{port}/healthz",
                               env={"KUBECONFIG": str(operator_config)})
    runner = processes.start("runner", "-m", "runner", "--handlers", "tests.handlers.basic",
                             "--namespace", installed, "--identity", "chart-runner",
                             env={"KUBECONFIG": str(runner_config)})
    cluster.apply(graph("chain", job("first", "echo", args={"x": 1}),
                        job("second", "echo", "first")), installed)

    wait_graph(cluster, installed, "chain", "Finished", timeout=90)
    finished = jobs_of(cluster, installed, "chain")
    assert {name: body["status"]["phase"] for name, body in finished.items()} == {
        "first": "Finished", "second": "Finished"}
    assert {body["status"]["runner"] for body in finished.values()} == {"chart-runner"}

    # Nothing either process did was refused.
    def refusals(process: Any) -> list[str]:
        # 403 as a number of its own: a timestamp like 12:00:43.403 is not a refusal.
        return [line for line in process.log().splitlines()
                if re.search(r"(?<![\d.])403(?!\d)", line) or "forbidden" in line.lower()
                or "Not enough permissions" in line]
    assert refusals(runner) == []
    assert refusals(operator) == []
    # The runner keeps its Lease with the runner account's token too.
    leases = json.loads(cluster.kubectl("get", "leases.coordination.k8s.io", "-n", installed,
                                        "-l", "overseer.dev/runner=true", "-o", "json").stdout)
    assert [lease["metadata"]["name"] for lease in leases["items"]] == ["chart-runner"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
        assert answer.status == 200
    assert operator.popen.poll() is None and runner.popen.poll() is None
