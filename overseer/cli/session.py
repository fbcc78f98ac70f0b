"""What every command works with: the API client, the namespace, and the console to print to."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import config
from rich.console import Console

from overseer import kube
from overseer.cli.errors import CliError

# Where a pod finds its own namespace; the CLI run inside a pod defaults to it.
_POD_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def make_console() -> Console:
    """A console for output; markup and highlighting off, since names and messages are data.

    Off a terminal (a pipe, a test) rich would wrap at 80 columns and break table rows and
    messages in two, so lines are left as long as they are.
    """
    console = Console(markup=False, highlight=False)
    if not console.is_terminal:
        console = Console(markup=False, highlight=False, width=10_000, soft_wrap=True)
    return console


def _kubeconfig_path() -> str | None:
    """The kubeconfig named by KUBECONFIG, checked to exist; None means the client's default."""
    path = os.environ.get("KUBECONFIG") or None
    if path is not None and not all(Path(p).is_file() for p in path.split(os.pathsep) if p):
        raise CliError(f"kubeconfig {path}: no such file")
    if path is None and not Path(config.KUBE_CONFIG_DEFAULT_LOCATION).expanduser().is_file():
        raise CliError("no kubeconfig: set KUBECONFIG, give --kubeconfig FILE, or create "
                       f"{config.KUBE_CONFIG_DEFAULT_LOCATION}")
    return path


def _in_a_pod() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and not os.environ.get("KUBECONFIG")


def default_namespace() -> str:
    """The namespace of the kubeconfig's current context, or of the pod, or "default"."""
    if _in_a_pod():
        try:
            return _POD_NAMESPACE.read_text().strip() or "default"
        except OSError:
            return "default"
    try:
        _, active = config.list_kube_config_contexts(config_file=_kubeconfig_path())
    except config.ConfigException as exc:
        raise CliError(f"cannot load the kubeconfig: {exc}") from None
    return (active or {}).get("context", {}).get("namespace") or "default"


@dataclass
class Session:
    """The cluster and namespace a command talks to, both found on first use.

    Nothing is read before a command needs it, so "no such file" for a manifest is not
    hidden behind a problem with the kubeconfig.
    """

    given_namespace: str | None = None
    console: Console = field(default_factory=make_console)
    _namespace: str | None = None
    _api_client: Any = None

    @classmethod
    def open(cls, *, kubeconfig: str | None, namespace: str | None) -> Session:
        if kubeconfig:
            # kube.load_config reads the kubeconfig named by KUBECONFIG; naming the file
            # there makes --kubeconfig and the environment variable mean the same.
            os.environ["KUBECONFIG"] = kubeconfig
        return cls(given_namespace=namespace)

    @property
    def namespace(self) -> str:
        if self._namespace is None:
            self._namespace = self.given_namespace or default_namespace()
        return self._namespace

    @property
    def api_client(self) -> Any:
        if self._api_client is None:
            if not _in_a_pod():
                _kubeconfig_path()
            try:
                self._api_client = kube.load_config(pool_size=4)
            except (config.ConfigException, OSError) as exc:
                raise CliError(f"cannot load the kubeconfig: {exc}") from None
        return self._api_client

    @property
    def host(self) -> str | None:
        """The API server's address, once a client was made (None before)."""
        return self._api_client.configuration.host if self._api_client is not None else None

    @property
    def graphs(self) -> kube.Resource:
        return kube.graphs(self.api_client)

    @property
    def jobs(self) -> kube.Resource:
        return kube.jobs(self.api_client)
