"""The local control plane: its PKI offline, and a real start, use and stop."""

import json
import subprocess
import time
from base64 import b64decode
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from overseer.devcluster import CONTEXT, ControlPlane, _Pki


def test_pki_and_kubeconfig(tmp_path: Path) -> None:
    pki = _Pki(tmp_path / "pki")
    pki.ensure()
    ca = x509.load_pem_x509_certificate(pki.ca_crt.read_bytes())
    server = x509.load_pem_x509_certificate(pki.server_crt.read_bytes())
    admin = x509.load_pem_x509_certificate(pki.admin_crt.read_bytes())
    for cert in (server, admin):
        cert.verify_directly_issued_by(ca)

    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", "kubernetes.default.svc"} <= set(sans.get_values_for_type(x509.DNSName))
    assert "127.0.0.1" in {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    assert admin.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "overseer-admin"
    assert admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
        "system:masters"
    )
    assert (pki.admin_key.stat().st_mode & 0o777) == 0o600

    before = pki.ca_crt.read_bytes()
    pki.ensure()
    assert pki.ca_crt.read_bytes() == before, "the PKI is kept across starts"

    config = yaml.safe_load(pki.kubeconfig(server="https://127.0.0.1:1234"))
    assert config["current-context"] == CONTEXT
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"] == "https://127.0.0.1:1234"
    assert b64decode(cluster["certificate-authority-data"]) == pki.ca_crt.read_bytes()


def _kubectl(cp: ControlPlane, *args: str, kubeconfig: Path | None = None) -> str:
    env = cp.env() | ({"KUBECONFIG": str(kubeconfig)} if kubeconfig else {})
    result = subprocess.run(
        [str(cp.kubectl), *args], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.e2e
@pytest.mark.timeout(600)  # the first run may build the binaries
def test_control_plane_serves_and_stops(tmp_path: Path) -> None:
    with ControlPlane(tmp_path) as cp:
        assert cp.server.startswith("https://127.0.0.1:")
        version = json.loads(_kubectl(cp, "get", "--raw", "/version"))
        assert version["gitVersion"].startswith("v1.")
        assert _kubectl(cp, "auth", "can-i", "*", "*").strip() == "yes"

        _kubectl(cp, "create", "namespace", "x")
        _kubectl(cp, "create", "serviceaccount", "sa", "-n", "x")
        token = _kubectl(cp, "create", "token", "sa", "-n", "x").strip()
        # A kubeconfig with the token alone: with the admin's client certificate beside it,
        # the apiserver would authenticate the certificate instead.
        config = yaml.safe_load(cp.kubeconfig.read_text())
        config["users"][0]["user"] = {"token": token}
        token_only = tmp_path / "token-kubeconfig"
        token_only.write_text(yaml.safe_dump(config))
        whoami = json.loads(
            _kubectl(cp, "auth", "whoami", "-o", "json", kubeconfig=token_only)
        )
        assert whoami["status"]["userInfo"]["username"] == "system:serviceaccount:x:sa"

        pids = [p.popen.pid for p in cp._processes]
        assert len(pids) == 2
    # stop() waits for, and so reaps, both processes.
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists()


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_controller_manager_collects_garbage(tmp_path: Path) -> None:
    with ControlPlane(tmp_path, controller_manager=True) as cp:
        _kubectl(cp, "create", "namespace", "y")
        _kubectl(cp, "create", "configmap", "parent", "-n", "y")
        uid = _kubectl(cp, "get", "configmap", "parent", "-n", "y", "-o",
                       "jsonpath={.metadata.uid}")
        child = {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "child", "namespace": "y", "ownerReferences": [
                     {"apiVersion": "v1", "kind": "ConfigMap", "name": "parent", "uid": uid}]}}
        manifest = tmp_path / "child.json"
        manifest.write_text(json.dumps(child))
        _kubectl(cp, "create", "-f", str(manifest))
        _kubectl(cp, "delete", "configmap", "parent", "-n", "y", "--wait=true")
        deadline = time.monotonic() + 30
        while _kubectl(cp, "get", "configmap", "child", "-n", "y", "--ignore-not-found"):
            assert time.monotonic() < deadline, "the garbage collector did not delete the child"
            time.sleep(0.2)
