"""A real Kubernetes control plane on loopback, for tests and the demo.

This starts etcd and kube-apiserver as local processes bound to 127.0.0.1 only, with a PKI
generated on first start (a CA, an apiserver serving certificate, an admin client certificate in
``system:masters``, and an RSA service-account signing key) and writes a kubeconfig for it.
It is the same API server a cloud cluster runs, so CRDs, RBAC, admission, watches and
TokenRequest behave exactly as in production, without a cloud, a container runtime or root.

What is deliberately missing:

* No kubelet, so pods are accepted but never run. The operator and runners run as local
  processes with the kubeconfig instead, which is exactly the code that runs in the pods.
* By default no kube-controller-manager, so nothing that it does happens: deleted
  namespaces stay ``Terminating``, owner-reference garbage collection does not run, and no
  ``default`` service account is created in new namespaces (hence the ``ServiceAccount``
  admission plugin is disabled, or every pod would be rejected). ``controller_manager=True``
  adds one running only the garbage-collector, namespace and service-account controllers,
  for tests that rely on cleanup; it costs a second or two of start-up. The workload
  controllers (Job, ReplicaSet, ...) stay off: they would create pods that never run.

The binaries come from ``KUBEBUILDER_ASSETS`` (existing envtest binaries) or are built once,
pinned, by ``hack/build-tools.sh`` into a cache directory outside the repository.

Usage::

    with ControlPlane(state_dir=tmp_path) as cp:
        subprocess.run([cp.kubectl, "get", "ns"], env=cp.env(), check=True)

or from a shell, in the foreground until SIGINT/SIGTERM::

    python -m overseer.devcluster run --state-dir /tmp/overseer-dev
"""

import argparse
import atexit
import contextlib
import ctypes
import ctypes.util
import datetime
import ipaddress
import json
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import structlog
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = structlog.get_logger()

REPO = Path(__file__).resolve().parents[1]
BINARIES = ("etcd", "kube-apiserver", "kubectl")
CONTROLLER_MANAGER = "kube-controller-manager"
CONTROLLERS = ("garbage-collector-controller", "namespace-controller",
               "serviceaccount-controller")
CONTEXT = "overseer-dev"
SERVICE_CIDR = "10.0.0.0/24"
# The apiserver gives itself the first address of the service range (the `kubernetes`
# service); in-cluster clients reach it under that address and these names.
SERVICE_IP = "10.0.0.1"
SERVICE_DNS = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
READY_TIMEOUT = 90.0
STOP_GRACE = 5.0
CERT_DAYS = 365


class DevClusterError(RuntimeError):
    """The local control plane could not be found, built, started or reached."""


# --- binaries -----------------------------------------------------------------------------


def find_binaries() -> Path:
    """Return the directory holding etcd, kube-apiserver and kubectl.

    ``KUBEBUILDER_ASSETS`` wins when set; otherwise the pinned versions are built (once) by
    ``hack/build-tools.sh``, whose last line of stdout is the directory.
    """
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets:
        return _check_binaries(Path(assets), source="KUBEBUILDER_ASSETS")
    script = REPO / "hack" / "build-tools.sh"
    if not script.is_file():
        raise DevClusterError(f"{script} not found and KUBEBUILDER_ASSETS is not set")
    # The script builds only what is missing from its cache (the first time, for minutes)
    # and prints its progress to stderr, which passes through.
    log.info("devcluster.binaries.locate", script=str(script))
    result = subprocess.run(
        ["bash", str(script), "control-plane"], stdout=subprocess.PIPE, text=True, check=False
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise DevClusterError(f"{script} control-plane failed (exit {result.returncode})")
    return _check_binaries(Path(lines[-1]), source=str(script))


def _check_binaries(bin_dir: Path, *, source: str, extra: tuple[str, ...] = ()) -> Path:
    missing = [name for name in (*BINARIES, *extra) if not os.access(bin_dir / name, os.X_OK)]
    if missing:
        raise DevClusterError(f"{source}: no executable {', '.join(missing)} in {bin_dir}")
    return bin_dir


# --- certificates -------------------------------------------------------------------------


def _new_ec_key() -> ec.EllipticCurvePrivateKey:
    # ECDSA P-256: generated in microseconds, unlike RSA, and accepted by Go's TLS stack.
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _issue(
    *,
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate | None,
    ca_key: ec.EllipticCurvePrivateKey,
    usage: x509.ObjectIdentifier | None = None,
    sans: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    """Sign a certificate for ``key``; self-signed CA when ``ca_cert`` is None."""
    now = datetime.datetime.now(datetime.UTC)
    is_ca = ca_cert is None
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if ca_cert is None else ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # Backdated a little so that a slightly skewed clock does not reject it.
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=False,  # ECDSA keys sign; they never encipher
                key_cert_sign=is_ca,
                crl_sign=is_ca,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


class _Pki:
    """The files of the cluster's PKI under ``state_dir/pki``, generated once."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.ca_crt = directory / "ca.crt"
        self.server_crt = directory / "apiserver.crt"
        self.server_key = directory / "apiserver.key"
        self.admin_crt = directory / "admin.crt"
        self.admin_key = directory / "admin.key"
        self.sa_key = directory / "sa.key"
        self.sa_pub = directory / "sa.pub"

    def ensure(self) -> None:
        # Kept across restarts of the same state dir so that existing kubeconfigs, client
        # certificates and service-account tokens stay valid.
        files = (self.ca_crt, self.server_crt, self.server_key, self.admin_crt,
                 self.admin_key, self.sa_key, self.sa_pub)
        if all(f.is_file() for f in files):
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)

        ca_key = _new_ec_key()
        ca = _issue(subject=_name("overseer-dev-ca"), key=ca_key, ca_cert=None, ca_key=ca_key)

        server_key = _new_ec_key()
        sans: list[x509.GeneralName] = [
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address(SERVICE_IP)),
            x509.DNSName("localhost"),
            *(x509.DNSName(name) for name in SERVICE_DNS),
        ]
        server = _issue(subject=_name("kube-apiserver"), key=server_key, ca_cert=ca,
                        ca_key=ca_key, usage=ExtendedKeyUsageOID.SERVER_AUTH, sans=sans)

        # The apiserver maps O to groups and CN to the user name; system:masters bypasses
        # RBAC entirely, so the admin can bootstrap everything else.
        admin_key = _new_ec_key()
        admin = _issue(subject=_name("overseer-admin", "system:masters"), key=admin_key,
                       ca_cert=ca, ca_key=ca_key, usage=ExtendedKeyUsageOID.CLIENT_AUTH)

        # Service-account tokens are signed with RS256 (RSA), the algorithm every
        # Kubernetes token consumer supports.
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

        self.ca_crt.write_bytes(_cert_pem(ca))
        self.server_crt.write_bytes(_cert_pem(server))
        _write_private(self.server_key, _key_pem(server_key))
        self.admin_crt.write_bytes(_cert_pem(admin))
        _write_private(self.admin_key, _key_pem(admin_key))
        _write_private(self.sa_key, _key_pem(sa_key))
        self.sa_pub.write_bytes(sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        log.info("devcluster.pki.generated", dir=str(self.dir))

    def kubeconfig(self, *, server: str) -> str:
        def data(path: Path) -> str:
            return b64encode(path.read_bytes()).decode()

        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": CONTEXT, "cluster": {
                "server": server, "certificate-authority-data": data(self.ca_crt)}}],
            "users": [{"name": CONTEXT, "user": {
                "client-certificate-data": data(self.admin_crt),
                "client-key-data": data(self.admin_key)}}],
            "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT}}],
            "current-context": CONTEXT,
            "preferences": {},
        }
        return yaml.safe_dump(config, sort_keys=False)

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_crt))
        context.load_cert_chain(str(self.admin_crt), str(self.admin_key))
        return context


# --- processes ----------------------------------------------------------------------------


def _free_ports(count: int) -> list[int]:
    """Ports on 127.0.0.1 that are free now (all held open together, so they differ)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that makes the child get SIGKILL when this process dies, on Linux.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the process,
    so it is only used from the main thread, which lives as long as the process does; from
    other threads children rely on stop() and the atexit hook. Everything is resolved here
    in the parent so that the child, between fork and exec, only makes two plain calls.
    """
    if not sys.platform.startswith("linux"):
        return None
    if threading.current_thread() is not threading.main_thread():
        log.debug("devcluster.pdeathsig.skipped", reason="not started from the main thread")
        return None
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    prctl = ctypes.CDLL(libc_name, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                      ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()
    getppid, exit_now = os.getppid, os._exit

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        # If the parent died before the prctl above, the signal will never come.
        if getppid() != parent:
            exit_now(1)

    return preexec


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        return f"({path}: {e})"
    return "\n".join(text.splitlines()[-lines:])


class Process:
    """A child process logging to a file: the control plane's, or an operator or runner of the
    tests, the demo or the benchmark.

    It leads a session of its own (a terminal's Ctrl-C stays away from it, so that the
    control plane can be stopped in order) and dies with this process if this process dies.
    """

    def __init__(self, name: str, argv: list[str], log_path: Path, *,
                 env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("wb")
        try:
            self.popen = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent(),
            )
        except BaseException:
            self._log.close()
            raise
        log.debug("devcluster.process.started", name=name, pid=self.popen.pid)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def _signal(self, signum: signal.Signals) -> None:
        # The child leads its own process group; signal the whole group so that nothing it
        # may have started is left behind. Only while unreaped, so the id is still ours.
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signum)

    def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM, and SIGKILL if it has not exited after ``grace`` seconds."""
        self._signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log.warning("devcluster.process.kill", name=self.name, pid=self.popen.pid)
            self._signal(signal.SIGKILL)
            self.popen.wait()
        self._log.close()
        log.debug("devcluster.process.stopped", name=self.name, code=self.popen.returncode)

    def kill(self) -> None:
        """SIGKILL at once, as a crash would end it."""
        self._signal(signal.SIGKILL)
        self.popen.wait()
        self._log.close()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def events(self) -> list[dict[str, Any]]:
        """The structlog events the process wrote, parsed from the JSON lines of its log."""
        out = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
        return out

    def tail(self, lines: int = 30) -> str:
        return _tail(self.log_path, lines)

    def describe(self) -> str:
        state = "running" if self.running() else f"exited with {self.popen.returncode}"
        return f"--- {self.name} ({state}), {self.log_path}:\n{_tail(self.log_path)}"


# --- control plane ------------------------------------------------------------------------


class ControlPlane:
    """etcd and kube-apiserver (and optionally kube-controller-manager) on loopback, with
    its PKI and kubeconfig in ``state_dir``.

    ``state_dir`` holds everything (``pki/``, ``etcd/``, ``*.log``, ``kubeconfig``); starting
    again on the same directory keeps the cluster's data and credentials. Ports are chosen
    afresh each start, so the kubeconfig is rewritten each time.
    """

    def __init__(
        self, state_dir: Path, bin_dir: Path | None = None, *, controller_manager: bool = False
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.controller_manager = controller_manager
        self._bin_dir = Path(bin_dir).resolve() if bin_dir is not None else None
        self.kubeconfig = self.state_dir / "kubeconfig"
        self.server = ""
        self._pki = _Pki(self.state_dir / "pki")
        self._processes: list[Process] = []

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = find_binaries()
        return self._bin_dir

    @property
    def kubectl(self) -> Path:
        return self.bin_dir / "kubectl"

    def env(self) -> dict[str, str]:
        """This process's environment with KUBECONFIG set and the binaries first on PATH."""
        path = os.environ.get("PATH", os.defpath)
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig),
                "PATH": f"{self.bin_dir}{os.pathsep}{path}"}

    def start(self, *, timeout: float = READY_TIMEOUT) -> Self:
        """Start etcd and kube-apiserver and return once ``/readyz`` answers ok.

        With ``controller_manager``, also wait until it has created the ``default`` service
        account, which shows that its controllers are running.
        """
        if self._processes:
            raise DevClusterError("control plane already started")
        extra = (CONTROLLER_MANAGER,) if self.controller_manager else ()
        bin_dir = _check_binaries(self.bin_dir, source="bin_dir", extra=extra)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._pki.ensure()
        etcd_port, peer_port, api_port = _free_ports(3)
        self.server = f"https://127.0.0.1:{api_port}"
        _write_private(self.kubeconfig, self._pki.kubeconfig(server=self.server).encode())

        started = time.monotonic()
        atexit.register(self.stop)
        try:
            etcd_url = f"http://127.0.0.1:{etcd_port}"
            self._spawn("etcd", self._etcd_args(bin_dir, etcd_url, peer_port))
            self._spawn("kube-apiserver", self._apiserver_args(bin_dir, etcd_url, api_port))
            deadline = started + timeout
            self._wait_for("/readyz", what="kube-apiserver ready", deadline=deadline,
                           ok=lambda status, body: status == 200 and body == "ok")
            if self.controller_manager:
                self._spawn(CONTROLLER_MANAGER, self._controller_manager_args(bin_dir))
                self._wait_for("/api/v1/namespaces/default/serviceaccounts/default",
                               what="kube-controller-manager working", deadline=deadline,
                               ok=lambda status, _body: status == 200)
        except BaseException:
            self.stop()
            raise
        log.info("devcluster.ready", server=self.server, kubeconfig=str(self.kubeconfig),
                 seconds=round(time.monotonic() - started, 2))
        return self

    def stop(self) -> None:
        """Stop in reverse start order: SIGTERM, then SIGKILL after a few seconds."""
        atexit.unregister(self.stop)
        if not self._processes:
            return
        for process in reversed(self._processes):
            process.stop()
        self._processes = []
        log.info("devcluster.stopped", state_dir=str(self.state_dir))

    def check_running(self) -> None:
        """Raise if any of the processes has exited since start()."""
        dead = [p for p in self._processes if not p.running()]
        if dead:
            raise DevClusterError("control plane process exited:\n" + self._describe())

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- internals

    def _spawn(self, name: str, argv: list[str]) -> None:
        self._processes.append(Process(name, argv, self.state_dir / f"{name}.log"))

    def _etcd_args(self, bin_dir: Path, client_url: str, peer_port: int) -> list[str]:
        peer_url = f"http://127.0.0.1:{peer_port}"
        return [
            str(bin_dir / "etcd"),
            "--data-dir", str(self.state_dir / "etcd"),
            "--listen-client-urls", client_url,
            "--advertise-client-urls", client_url,
            "--listen-peer-urls", peer_url,
            "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", f"default={peer_url}",
            # Throwaway clusters: durability on power loss is not worth the latency.
            "--unsafe-no-fsync",
            "--quota-backend-bytes", str(4 * 1024**3),
            "--log-level", "warn",
        ]

    def _apiserver_args(self, bin_dir: Path, etcd_url: str, port: int) -> list[str]:
        pki = self._pki
        return [
            str(bin_dir / "kube-apiserver"),
            "--bind-address", "127.0.0.1",
            "--advertise-address", "127.0.0.1",
            "--secure-port", str(port),
            "--etcd-servers", etcd_url,
            # Only used for self-signed certificates, which are not needed here; set so
            # that nothing is ever written to the default /var/run/kubernetes.
            "--cert-dir", str(pki.dir),
            "--tls-cert-file", str(pki.server_crt),
            "--tls-private-key-file", str(pki.server_key),
            "--client-ca-file", str(pki.ca_crt),
            "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file", str(pki.sa_pub),
            "--service-account-signing-key-file", str(pki.sa_key),
            "--service-cluster-ip-range", SERVICE_CIDR,
            "--authorization-mode", "RBAC",
            # Without kube-controller-manager no namespace gets a `default` service
            # account, and this plugin would reject every pod for lack of one.
            "--disable-admission-plugins", "ServiceAccount",
            # Pods never run here, but manifests asking for privilege must still validate.
            "--allow-privileged",
            # The `kubernetes` Endpoints may not hold a loopback address, so the default
            # reconciler would fail every 10s; nothing in-cluster needs to reach us anyway.
            "--endpoint-reconciler-type", "none",
        ]

    def _controller_manager_args(self, bin_dir: Path) -> list[str]:
        return [
            str(bin_dir / CONTROLLER_MANAGER),
            # The admin credentials: the controllers' own service-account identities would
            # need the token controller and the RBAC bootstrap it brings, for no gain here.
            "--kubeconfig", str(self.kubeconfig),
            "--controllers", ",".join(CONTROLLERS),
            "--leader-elect=false",
            # Its own HTTPS endpoint (metrics, health) is not needed; 0 means no listener.
            "--secure-port", "0",
        ]

    def _wait_for(
        self, path: str, *, what: str, deadline: float, ok: Callable[[int, str], bool]
    ) -> None:
        """Poll GET ``path`` as the admin until ``ok(status, body)``; raise with the logs."""
        url = f"{self.server}{path}"
        context = self._pki.ssl_context()
        last = "no answer yet"
        while time.monotonic() < deadline:
            self.check_running()
            try:
                with urllib.request.urlopen(url, context=context, timeout=2) as response:
                    status, body = response.status, response.read().decode(errors="replace")
            except urllib.error.HTTPError as e:
                status, body = e.code, e.read().decode(errors="replace")
            except (OSError, ssl.SSLError) as e:
                status, body = 0, str(e)
            if ok(status, body.strip()):
                return
            last = f"HTTP {status}: {body.strip()[:200]}" if status else body
            time.sleep(0.2)
        raise DevClusterError(
            f"{what}: no success from {url} in time (last: {last}):\n{self._describe()}"
        )

    def _describe(self) -> str:
        return "\n".join(p.describe() for p in self._processes)


# --- CLI ----------------------------------------------------------------------------------


def _run(state_dir: Path, bin_dir: Path | None, *, controller_manager: bool) -> int:
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("devcluster.signal", signal=signal.Signals(signum).name)
        stopping.set()

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)

    ready = Path(state_dir).resolve() / "ready"
    ready.unlink(missing_ok=True)
    cp = ControlPlane(state_dir, bin_dir, controller_manager=controller_manager)
    try:
        cp.start()
        # The machine-readable output: a shell line to use the cluster, and the binaries.
        print(f"export KUBECONFIG={cp.kubeconfig}", flush=True)
        print(cp.bin_dir, flush=True)
        ready.touch()
        while not stopping.wait(timeout=1.0):
            cp.check_running()
        return 0
    except DevClusterError as e:
        log.error("devcluster.failed", error=str(e))
        return 1
    finally:
        ready.unlink(missing_ok=True)
        cp.stop()


def main(argv: list[str] | None = None) -> int:
    # Log events go to stderr; stdout is kept for the machine-readable lines.
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )
    parser = argparse.ArgumentParser(prog="python -m overseer.devcluster", description=(
        "Run a local etcd + kube-apiserver on 127.0.0.1 for tests and the demo."))
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="start the control plane, stay in the foreground")
    run.add_argument("--state-dir", type=Path, required=True,
                     help="directory for PKI, etcd data, logs, kubeconfig and the ready file")
    run.add_argument("--bin-dir", type=Path, default=None,
                     help="directory with etcd, kube-apiserver, kubectl (default: found/built)")
    run.add_argument("--controller-manager", action="store_true",
                     help="also run kube-controller-manager (garbage collection, namespaces)")
    commands.add_parser("bin-dir", help="print the binaries' directory, building it if needed")
    args = parser.parse_args(argv)

    if args.command == "bin-dir":
        try:
            print(find_binaries(), flush=True)
        except DevClusterError as e:
            log.error("devcluster.failed", error=str(e))
            return 1
        return 0
    return _run(args.state_dir, args.bin_dir, controller_manager=args.controller_manager)


if __name__ == "__main__":
    sys.exit(main())
