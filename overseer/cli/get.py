"""``overseer get``: the graphs of a namespace, or one graph's jobs as a table or a tree."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from overseer import kube
from overseer.cli import durations
from overseer.cli.errors import OK
from overseer.cli.session import Session
from overseer.cli.snapshot import JobRow, snapshot, utcnow

# Terminal colours per phase, the same hues as the drawings of ``overseer dag``.
PHASE_STYLES: Final = {
    "Pending": "dim", "Waiting": "dim", "Eligible": "yellow", "Started": "blue",
    "Running": "blue", "Finished": "green", "Failed": "red", "Aborted": "dark_orange",
}

GRAPH_COLUMNS: Final = ("NAME", "PHASE", "FINISHED", "FAILED", "AGE")
JOB_COLUMNS: Final = ("NAME", "TYPE", "PHASE", "ATTEMPT", "RUNNER", "DURATION", "REASON",
                      "MESSAGE")


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "get", help="list graphs, or show one graph's jobs",
        description="With no GRAPH, list the graphs of the namespace. With GRAPH, show its "
        "jobs as a table, or with --tree as a tree by dependency.")
    parser.add_argument("graph", nargs="?", metavar="GRAPH")
    parser.add_argument("--tree", action="store_true",
                        help="show the jobs as a tree: each job under the jobs it depends on")
    parser.set_defaults(run=run)


def run(session: Session, args: argparse.Namespace) -> int:
    if args.graph is None:
        items = session.graphs.list(session.namespace)["items"]
        if not items:
            session.console.print(f"no graphs in namespace {session.namespace}")
            return OK
        session.console.print(graphs_table(items, now=utcnow()))
        return OK
    shot = snapshot(session, args.graph)
    # The graph's own word first: a rejected graph has no jobs to show, only its message.
    status = shot.body.get("status") or {}
    summary = f"jobgraph/{shot.name} {status.get('phase', 'Pending')}"
    if status.get("message"):
        summary += f": {status['message']}"
    session.console.print(Text(summary), end="\n\n")
    if args.tree:
        session.console.print(jobs_tree(shot.name, shot.jobs))
    else:
        session.console.print(jobs_table(shot.jobs, now=utcnow()))
    return OK


def _table(columns: Sequence[str]) -> Table:
    # kubectl's look: no borders, two spaces between columns, so the output reads the same
    # in a terminal and in a script that splits on runs of spaces.
    table = Table(box=None, pad_edge=False, padding=(0, 2, 0, 0), show_edge=False,
                  header_style="bold")
    for column in columns:
        table.add_column(column, no_wrap=True, overflow="ignore")
    return table


def _phase(phase: str | None) -> Text:
    if phase is None:
        return Text("-")
    return Text(phase, style=PHASE_STYLES.get(phase, ""))


def graphs_table(items: Sequence[dict[str, Any]], *, now: datetime) -> Table:
    table = _table(GRAPH_COLUMNS)
    for body in sorted(items, key=lambda b: b["metadata"]["name"]):
        status = body.get("status") or {}
        counts = status.get("counts") or {}
        total = status.get("total", len(body.get("spec", {}).get("jobs") or []))
        created = kube.parse_time(body["metadata"]["creationTimestamp"])
        table.add_row(
            body["metadata"]["name"],
            _phase(status.get("phase") or "Pending"),
            f"{counts.get('finished', 0)}/{total}",
            str(counts.get("failed", 0)),
            durations.age((now - created).total_seconds()),
        )
    return table


def jobs_table(jobs: Sequence[JobRow], *, now: datetime) -> Table:
    table = _table(JOB_COLUMNS)
    for job in jobs:
        duration = job.duration(now=now)
        table.add_row(
            job.name,
            job.type,
            _phase(job.phase),
            str(job.status.get("attempt", 0)),
            job.status.get("runner") or "",
            durations.short(duration) if duration is not None else "",
            job.status.get("reason") or "",
            job.status.get("message") or "",
        )
    return table


def jobs_tree(graph: str, jobs: Sequence[JobRow]) -> Tree:
    """The jobs as a tree: each job under the first job it depends on, with its subtree.

    A job with several dependencies appears in full once, under the first; under each
    other one it appears as a one-line reference, so the tree stays a tree and no subtree
    is printed twice. A job whose chain of first dependencies does not end at a job without
    dependencies (an unknown dependency, a cycle in a rejected graph) is shown at the top
    level, so every job is shown exactly once in full.
    """
    parent = _placement(jobs)
    children: dict[str, list[JobRow]] = {}
    for job in jobs:
        for dep in job.depends_on:
            children.setdefault(dep, []).append(job)

    tree = Tree(Text(graph, style="bold"))

    def add(branch: Tree, job: JobRow) -> None:
        node = branch.add(_label(job))
        for child in children.get(job.name, []):
            if parent[child.name] == job.name:
                add(node, child)
            else:
                node.add(_reference(child, parent[child.name]))

    for job in jobs:
        if parent[job.name] is None:
            add(tree, job)
    return tree


def _placement(jobs: Sequence[JobRow]) -> dict[str, str | None]:
    """Under which job each job is shown in full: its first dependency, or None for the top."""
    first = {job.name: job.depends_on[0] if job.depends_on else None for job in jobs}
    rooted: dict[str, bool] = {}
    for job in jobs:
        # Walk up the first dependencies until a known answer, a root, or a repeat.
        chain: list[str] = []
        name: str | None = job.name
        while name is not None and name not in rooted and name not in chain:
            chain.append(name)
            name = first[name] if first[name] in first else None
        if name is None:
            answer = True  # reached a job without (known) dependencies
        elif name in chain:
            answer = False  # went round a cycle
        else:
            answer = rooted[name]
        for link in chain:
            rooted[link] = answer
    return {
        job.name: first[job.name] if first[job.name] in first and rooted[job.name] else None
        for job in jobs
    }


def _label(job: JobRow) -> Text:
    text = Text(job.name)
    text.append(" ")
    text.append_text(_phase(job.phase))
    return text


def _reference(job: JobRow, shown_under: str | None) -> Text:
    where = f"under {shown_under}" if shown_under else "at the top level"
    text = Text(f"{job.name} ", style="dim")
    text.append(f"({where})", style="dim italic")
    return text
