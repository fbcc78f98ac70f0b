"""``overseer submit``: create the JobGraphs of a file, and optionally follow them to their end."""

from __future__ import annotations

import argparse
from typing import Any

from overseer import kube
from overseer.cli import manifests
from overseer.cli.errors import OK, CliError
from overseer.cli.follow import follow
from overseer.cli.session import Session


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "submit", help="create the JobGraphs in a YAML file",
        description="Create the JobGraphs in FILE (YAML, one or more documents; - for stdin). "
        "With --follow, show their progress until they end; the exit code is then 0 if all "
        "finished, 1 if one failed, 2 on a timeout or another error.")
    parser.add_argument("file", metavar="FILE")
    parser.add_argument("--follow", "-f", action="store_true",
                        help="show progress until the graphs end")
    parser.add_argument("--timeout", type=_positive, metavar="SECONDS",
                        help="with --follow, give up after this long (exit code 2)")
    parser.set_defaults(run=run)


def _positive(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds: {value}")
    return seconds


def run(session: Session, args: argparse.Namespace) -> int:
    if args.timeout is not None and not args.follow:
        raise CliError("--timeout limits --follow; give both, or neither")
    documents = manifests.read(args.file)
    # Every document is parsed and checked for kind and name before the first is created,
    # so a typo in the third does not leave the first two created. What only the API
    # server checks (the schema) can still reject a later document after earlier ones.
    created = [create(session, document) for document in documents]
    if not args.follow:
        return OK
    return follow(session, created, timeout=args.timeout)


def create(session: Session, document: dict[str, Any]) -> dict[str, Any]:
    """Create one JobGraph, in its own namespace if the manifest names one."""
    name = document["metadata"]["name"]
    namespace = document["metadata"].get("namespace") or session.namespace
    try:
        body = session.graphs.create(namespace, document)
    except kube.Conflict:
        raise CliError(f'jobgraph "{name}" already exists in namespace "{namespace}"; '
                       "delete it or choose another name") from None
    except kube.Unavailable:
        raise  # not a verdict on the manifest: reported as the server being unreachable
    except kube.NotFound as exc:
        raise CliError(f'cannot create jobgraph "{name}" in namespace "{namespace}": '
                       f"{exc.message}") from None
    except kube.KubeError as exc:
        raise CliError(f'the API server rejected jobgraph "{name}": {exc.message}') from None
    jobs = len((body.get("spec") or {}).get("jobs") or [])
    session.console.print(f"jobgraph/{name} created in namespace {namespace} ({jobs} jobs)")
    return body
