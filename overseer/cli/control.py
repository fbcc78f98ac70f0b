"""``overseer rerun | cancel | suspend | resume``: steer a graph by patching its spec.

Each command only writes the graph's spec; the operator and the runners read it and act.
So each says what it asked for, not what has happened yet.
"""

from __future__ import annotations

import argparse
from typing import Any

from overseer import kube
from overseer.cli.errors import OK, CliError
from overseer.cli.session import Session
from overseer.cli.snapshot import get_graph

# A rerun reads spec.rerun and writes it plus one. Two people rerunning at once would
# both write the same number and one rerun would be lost, so the write is preconditioned
# on the version read, and retried on a fresh read a few times.
RERUN_ATTEMPTS = 5


def add_parsers(commands: argparse._SubParsersAction) -> None:
    for name, run, summary in (
        ("rerun", rerun, "run a graph again from its Failed and Aborted jobs (spec.rerun + 1)"),
        ("cancel", cancel, "cancel a graph: running jobs are told, the rest aborted"),
        ("suspend", suspend, "stop runners from claiming jobs of a graph"),
        ("resume", resume, "let runners claim jobs of a suspended graph again"),
    ):
        parser = commands.add_parser(name, help=summary, description=summary[0].upper()
                                     + summary[1:] + ".")
        parser.add_argument("graph", metavar="GRAPH")
        parser.set_defaults(run=run)


def _patch(session: Session, name: str, body: dict[str, Any]) -> dict[str, Any]:
    try:
        return session.graphs.patch(session.namespace, name, body)
    except kube.NotFound:
        raise CliError(
            f'jobgraph "{name}" not found in namespace "{session.namespace}"') from None
    except (kube.Conflict, kube.Unavailable):
        raise
    except kube.KubeError as exc:
        raise CliError(f'the API server refused to change jobgraph "{name}": '
                       f"{exc.message}") from None


def rerun(session: Session, args: argparse.Namespace) -> int:
    for _ in range(RERUN_ATTEMPTS):
        body = get_graph(session, args.graph)
        current = int((body.get("spec") or {}).get("rerun") or 0)
        try:
            _patch(session, args.graph, {
                "metadata": {"resourceVersion": body["metadata"]["resourceVersion"]},
                "spec": {"rerun": current + 1},
            })
        except kube.Conflict:
            continue
        session.console.print(
            f"jobgraph/{args.graph}: rerun requested (spec.rerun {current} -> {current + 1})")
        return OK
    raise CliError(f'jobgraph "{args.graph}" kept changing under {RERUN_ATTEMPTS} attempts '
                   "to rerun it; try again")


def _set_flag(session: Session, name: str, *, field: str, value: bool, done: str,
              already: str) -> int:
    body = get_graph(session, name)
    if bool((body.get("spec") or {}).get(field)) is value:
        session.console.print(f"jobgraph/{name}: {already} (spec.{field} is "
                              f"{str(value).lower()})")
        return OK
    _patch(session, name, {"spec": {field: value}})
    session.console.print(f"jobgraph/{name}: {done} (spec.{field} set to {str(value).lower()})")
    return OK


def cancel(session: Session, args: argparse.Namespace) -> int:
    return _set_flag(session, args.graph, field="cancel", value=True,
                     done="cancel requested", already="already cancelled")


def suspend(session: Session, args: argparse.Namespace) -> int:
    return _set_flag(session, args.graph, field="suspend", value=True,
                     done="suspended", already="already suspended")


def resume(session: Session, args: argparse.Namespace) -> int:
    return _set_flag(session, args.graph, field="suspend", value=False,
                     done="resumed", already="not suspended")
