"""Following graphs until they end: a watch on their objects, and a display of their progress.

The graph's status already holds the counts per job phase, so following a graph watches
one object per graph, never its Jobs: a graph of ten thousand jobs costs the API server
one watch. Each namespace is watched by a thread that puts events on a queue; the main
thread owns the display and the deadline, so a timeout never waits on a quiet watch.

In a terminal the display is a live progress bar per graph; anywhere else (a pipe, CI
logs) it is one line per graph phase change, so logs stay readable.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Self

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from overseer import kube
from overseer.api import GRAPH_LABEL
from overseer.cli.errors import ERROR, GRAPH_FAILED, OK, CliError
from overseer.cli.session import Session
from overseer.cli.snapshot import error_text

# A watch is renewed this often even if nothing happens, and the graphs are read afresh
# then: a connection that died without the server closing it, or an event lost on the
# way, delays the display by at most this long instead of stalling it for ever.
WATCH_SECONDS = 30
# How long following goes on trying while the API server cannot be reached.
UNREACHABLE_SECONDS = 60.0
# How many failed jobs the end of a failed graph lists, with their errors.
LISTED_FAILURES = 20
PHASE_ORDER = ("waiting", "eligible", "started", "finished", "failed", "aborted")


@dataclass
class Followed:
    """What the follower knows of one graph: its latest object and the phase last shown."""

    namespace: str
    name: str
    body: dict[str, Any]
    shown_phase: str | None = None

    @property
    def status(self) -> dict[str, Any]:
        return self.body.get("status") or {}

    @property
    def phase(self) -> str:
        return self.status.get("phase") or "Pending"

    @property
    def is_over(self) -> bool:
        return self.phase in ("Finished", "Failed")

    @property
    def total(self) -> int:
        return self.status.get("total") or len((self.body.get("spec") or {}).get("jobs") or [])

    @property
    def counts(self) -> dict[str, int]:
        return self.status.get("counts") or {}

    def summary(self) -> str:
        """Finished out of total, then every other phase that has jobs in it."""
        others = ", ".join(f"{p} {self.counts[p]}" for p in PHASE_ORDER
                           if p != "finished" and self.counts.get(p))
        text = f"{self.counts.get('finished', 0)}/{self.total} finished"
        return f"{text} ({others})" if others else text


@dataclass
class _Watches:
    """One watch thread per namespace, all feeding one queue of (namespace, event)."""

    session: Session
    events: queue.Queue[tuple[str, dict[str, Any] | BaseException]] = field(
        default_factory=queue.Queue)

    def start(self, namespace: str, names: list[str], resource_version: str) -> None:
        thread = threading.Thread(target=self._run, args=(namespace, names, resource_version),
                                  name=f"watch-{namespace}", daemon=True)
        thread.start()

    def _run(self, namespace: str, names: list[str], version: str) -> None:
        graphs = self.session.graphs
        # One graph: let the server filter. Several: watch the namespace, filter here.
        selectors = {"field_selector": f"metadata.name={names[0]}"} if len(names) == 1 else {}
        try:
            while True:
                try:
                    for event in graphs.watch(namespace, resource_version=version,
                                              timeout_seconds=WATCH_SECONDS, **selectors):
                        version = event["object"]["metadata"]["resourceVersion"]
                        if event["type"] != "BOOKMARK":
                            self.events.put((namespace, event))
                except kube.Gone:
                    pass  # too far behind to resume: the fresh read below catches up
                except kube.Unavailable:
                    pass  # the connection broke (a restart, a proxy): read afresh, below
                version = self._reread(namespace, names, selectors)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread to report
            self.events.put((namespace, exc))

    def _reread(self, namespace: str, names: list[str], selectors: dict[str, str]) -> str:
        """Put each graph as it is now on the queue; the list's version to watch on from.

        While the API server cannot be reached it tries again, for ``UNREACHABLE_SECONDS``
        at most: following is worth a restart's wait, not a hang for ever.
        """
        deadline = time.monotonic() + UNREACHABLE_SECONDS
        delay = 0.5
        while True:
            try:
                listing = self.session.graphs.list(namespace, **selectors)
                break
            except kube.Unavailable:
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(2 * delay, 5.0)
        for body in listing["items"]:
            if body["metadata"]["name"] in names:
                self.events.put((namespace, {"type": "MODIFIED", "object": body}))
        return listing["metadata"]["resourceVersion"]


def follow(session: Session, bodies: Iterable[dict[str, Any]], *, timeout: float | None) -> int:
    """Show the graphs' progress until all have ended; the exit code their ends call for."""
    followed = {(b["metadata"]["namespace"], b["metadata"]["name"]): Followed(
        b["metadata"]["namespace"], b["metadata"]["name"], b) for b in bodies}
    watches = _Watches(session)
    by_namespace: dict[str, list[Followed]] = {}
    for item in followed.values():
        by_namespace.setdefault(item.namespace, []).append(item)
    for namespace, items in by_namespace.items():
        # The oldest version seen in the namespace, so no event after any create is missed.
        version = min((i.body["metadata"]["resourceVersion"] for i in items),
                      key=lambda v: (len(v), v))
        watches.start(namespace, [i.name for i in items], version)

    console = session.console
    display = _Live(console, followed.values()) if console.is_terminal else _Lines(console)
    deadline = None if timeout is None else time.monotonic() + timeout
    with display:
        for item in followed.values():
            display.update(item)
        while not all(item.is_over for item in followed.values()):
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                display.stop()
                running = "; ".join(f"jobgraph/{i.name}: {i.phase}, {i.summary()}"
                                    for i in followed.values() if not i.is_over)
                raise CliError(f"timed out after {timeout:g}s waiting for {running} "
                               "(the graph goes on running)")
            try:
                wait = 1.0 if left is None else min(left, 1.0)
                namespace, event = watches.events.get(timeout=wait)
            except queue.Empty:
                continue
            if isinstance(event, BaseException):
                raise event
            body = event["object"]
            changed = followed.get((namespace, body["metadata"]["name"]))
            if changed is None:
                continue
            if event["type"] == "DELETED":
                raise CliError(f'jobgraph "{changed.name}" was deleted while it ran')
            changed.body = body
            display.update(changed)

    return report(session, list(followed.values()))


def report(session: Session, graphs: list[Followed]) -> int:
    """Print how each graph ended, and for a failed one which jobs failed and why."""
    console = session.console
    code = OK
    for item in graphs:
        message = item.status.get("message")
        console.print(f"jobgraph/{item.name} {item.phase}" + (f": {message}" if message else ""))
        if item.phase == "Failed":
            code = GRAPH_FAILED
            for line in _failed_jobs(session, item):
                console.print(f"  {line}")
        elif item.phase != "Finished":
            code = ERROR
    return code


def _failed_jobs(session: Session, item: Followed) -> list[str]:
    # The server filters on phase (a selectable field) and returns one page, so a graph
    # with thousands of failed jobs costs a small read; the count comes from the status.
    listing = session.jobs.list(
        item.namespace, label_selector=f"{GRAPH_LABEL}={item.name}",
        field_selector="status.phase=Failed", limit=LISTED_FAILURES)
    items = listing["items"]
    lines = []
    for body in sorted(items, key=lambda b: b["spec"]["name"]):
        status = body.get("status") or {}
        lines.append(f"{body['spec']['name']} failed (attempt {status.get('attempt', 0)}): "
                     f"{error_text(status)}")
    more = item.counts.get("failed", len(items)) - len(items)
    if more > 0:
        lines.append(f"and {more} more failed jobs: overseer -n {item.namespace} get {item.name}")
    return lines


class _Lines:
    """Off a terminal: one line whenever a graph's phase changes."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def stop(self) -> None:
        pass

    def update(self, item: Followed) -> None:
        if item.phase != item.shown_phase:
            item.shown_phase = item.phase
            self.console.print(f"jobgraph/{item.name} {item.phase}: {item.summary()}")


class _Live:
    """In a terminal: a progress bar per graph with its phase and counts, redrawn live."""

    def __init__(self, console: Console, graphs: Iterable[Followed]) -> None:
        self.progress = Progress(
            TextColumn("{task.fields[name]}", style="bold"),
            TextColumn("{task.fields[phase]}"),
            # Plain colours: rich's default truecolour shades come out grey on 16-colour
            # terminals, which made a finished bar look empty.
            BarColumn(complete_style="blue", finished_style="green"),
            MofNCompleteColumn(),
            TextColumn("{task.fields[others]}"),
            console=console,
        )
        self.tasks: dict[tuple[str, str], TaskID] = {
            (g.namespace, g.name): self.progress.add_task(
                g.name, name=g.name, phase=g.phase, others="", total=g.total or None)
            for g in graphs
        }

    def __enter__(self) -> Self:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def stop(self) -> None:
        self.progress.stop()

    def update(self, item: Followed) -> None:
        others = ", ".join(f"{p} {item.counts[p]}" for p in PHASE_ORDER
                           if p != "finished" and item.counts.get(p))
        self.progress.update(
            self.tasks[(item.namespace, item.name)], phase=item.phase, others=others,
            total=item.total or None, completed=item.counts.get("finished", 0))
