"""The ``overseer`` command: its arguments, and the one place where errors become messages.

Each command lives in a module of its own and registers its sub-parser; ``main`` parses,
opens the session, runs the command and turns every error a user can cause (a missing
file, a graph that does not exist, an API server that is down or says no) into one line
on stderr and exit code 2. Only a bug in Overseer itself shows a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import urllib3
from kubernetes import config

from overseer import kube
from overseer.cli import control, dag, get, submit
from overseer.cli.errors import ERROR, CliError
from overseer.cli.session import Session

PROG = "overseer"
# What a shell reports for a process ended by Ctrl-C.
INTERRUPTED = 130


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog=PROG, description="Submit, watch and steer Overseer job graphs.")
    top.add_argument("--namespace", "-n", metavar="NAMESPACE",
                     help="the namespace to work in (default: the kubeconfig context's "
                     "namespace, or default)")
    top.add_argument("--kubeconfig", metavar="FILE",
                     help="the kubeconfig to use (default: $KUBECONFIG, or ~/.kube/config)")
    commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    submit.add_parser(commands)
    get.add_parser(commands)
    dag.add_parser(commands)
    control.add_parsers(commands)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    session: Session | None = None
    try:
        session = Session.open(kubeconfig=args.kubeconfig, namespace=args.namespace)
        return args.run(session, args)
    except CliError as exc:
        return _fail(exc.message, code=exc.code)
    except kube.Unavailable as exc:
        if exc.status:
            return _fail(f"the API server is unavailable ({exc.status} {exc.reason}): "
                         f"{exc.message}")
        return _unreachable(session, exc.__cause__ or exc)
    except kube.KubeError as exc:
        return _fail(f"the API server answered {exc.status} {exc.reason}: {exc.message}")
    except urllib3.exceptions.HTTPError as exc:
        # Requests made outside kube.Resource (none today) would fail this way.
        return _unreachable(session, exc)
    except config.ConfigException as exc:
        return _fail(f"cannot load the kubeconfig: {exc}")
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted (graphs keep running)", file=sys.stderr)
        return INTERRUPTED


def _fail(message: str, *, code: int = ERROR) -> int:
    # Plain print, not rich: the message must stay one line whatever the terminal's width.
    print(f"{PROG}: {message}", file=sys.stderr)
    return code


def _unreachable(session: Session | None, exc: BaseException) -> int:
    where = (session.host if session is not None else None) or "its address"
    return _fail(f"cannot reach the API server at {where}: {_network_problem(exc)}")


def _network_problem(exc: BaseException) -> str:
    """The innermost cause of a failed request, e.g. "Connection refused"."""
    cause: BaseException | None = getattr(exc, "reason", None) or exc
    seen = set()
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        cause = cause.__cause__ or cause.__context__
    return str(getattr(exc, "reason", None) or exc)


if __name__ == "__main__":
    sys.exit(main())
