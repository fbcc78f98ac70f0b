"""``overseer dag``: draw a graph's jobs, coloured by phase, as Mermaid, DOT or a PNG image."""

from __future__ import annotations

import argparse
from pathlib import Path

from overseer import render
from overseer.cli.errors import OK, CliError
from overseer.cli.session import Session
from overseer.cli.snapshot import snapshot

FORMATS = ("mermaid", "dot", "png")


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "dag", help="draw a graph's jobs as Mermaid, DOT or PNG",
        description="Draw the jobs of GRAPH and their dependencies, each labelled with its "
        "name and phase and coloured by phase. png needs Graphviz's dot program.")
    parser.add_argument("graph", metavar="GRAPH")
    parser.add_argument("--format", choices=FORMATS, default="mermaid")
    parser.add_argument("--output", "-o", metavar="FILE", type=Path,
                        help="write to FILE instead of stdout (required for png)")
    parser.set_defaults(run=run)


def run(session: Session, args: argparse.Namespace) -> int:
    # Checked before any request: a missing --output is known without asking the cluster.
    if args.format == "png" and args.output is None:
        raise CliError("--format png writes an image file; name it with --output FILE")

    shot = snapshot(session, args.graph)
    try:
        if args.format == "mermaid":
            text = render.mermaid(shot.nodes())
        else:
            text = render.dot(shot.nodes(), title=shot.name)
        if args.format == "png":
            render.png(text, args.output)
        elif args.output is not None:
            args.output.write_text(text)
        else:
            # The text itself, unwrapped and unstyled, so it can be piped into other tools.
            print(text, end="")
            return OK
    except render.RenderError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot write {args.output}: {exc.strerror}") from None
    session.console.print(f"wrote {args.output}")
    return OK
