"""Drawing a graph's jobs: Mermaid and Graphviz text, and PNG through Graphviz's ``dot``.

Pure functions of the jobs and their phases, so they can be tested without a cluster and
reused by anything that has a graph in hand. Edges point from a dependency to the job that
waits for it, the direction work flows.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

# (fill, stroke) per job phase: grey for not yet runnable, yellow ready, blue running,
# green done, red failed, orange aborted.
PHASE_COLOURS: Final[dict[str, tuple[str, str]]] = {
    "Waiting": ("#eeeeee", "#9e9e9e"),
    "Eligible": ("#fff9c4", "#f9a825"),
    "Started": ("#bbdefb", "#1565c0"),
    "Finished": ("#c8e6c9", "#2e7d32"),
    "Failed": ("#ffcdd2", "#c62828"),
    "Aborted": ("#ffe0b2", "#ef6c00"),
}


class RenderError(Exception):
    """The drawing could not be made; the message says what to install or change."""


@dataclass(frozen=True)
class Node:
    """One job as drawn: its name in the graph, its phase (None: no Job exists yet)."""

    name: str
    phase: str | None = None
    depends_on: Sequence[str] = field(default_factory=tuple)


def _mermaid_id(name: str) -> str:
    # Job names are DNS labels. Mermaid reads "-" in an id as the start of an edge and
    # treats a bare "end" as a keyword, so ids get a prefix and "_" for "-"; the mapping
    # stays one-to-one because a DNS label never contains "_".
    return "j_" + name.replace("-", "_")


def mermaid(nodes: Sequence[Node]) -> str:
    """A Mermaid flowchart, top to bottom, each job labelled and coloured by its phase."""
    lines = ["flowchart TD"]
    for node in nodes:
        label = node.name if node.phase is None else f"{node.name}<br/>{node.phase}"
        lines.append(f'    {_mermaid_id(node.name)}["{label}"]')
    for node in nodes:
        for dep in node.depends_on:
            lines.append(f"    {_mermaid_id(dep)} --> {_mermaid_id(node.name)}")

    # One class per phase that occurs, in the order phases happen, so the text is stable.
    for phase, (fill, stroke) in PHASE_COLOURS.items():
        members = [_mermaid_id(n.name) for n in nodes if n.phase == phase]
        if members:
            lines.append(f"    classDef {phase} fill:{fill},stroke:{stroke}")
            lines.append(f"    class {','.join(members)} {phase}")
    return "\n".join(lines) + "\n"


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _quoted(text: str) -> str:
    return f'"{_escaped(text)}"'


def dot(nodes: Sequence[Node], *, title: str = "graph") -> str:
    """A Graphviz digraph, top to bottom, each job labelled and filled by its phase."""
    lines = [
        f"digraph {_quoted(title)} {{",
        "    rankdir=TB;",
        '    node [shape=box, style="rounded,filled", fillcolor="#ffffff", fontname="Helvetica"];',
    ]
    for node in nodes:
        if node.phase is None:
            lines.append(f"    {_quoted(node.name)};")
            continue
        fill, stroke = PHASE_COLOURS.get(node.phase, ("#ffffff", "#000000"))
        # "\n" in a DOT string is Graphviz's own line break, so it is written unescaped.
        label = f'"{_escaped(node.name)}\\n{_escaped(node.phase)}"'
        lines.append(
            f'    {_quoted(node.name)} [label={label}, fillcolor="{fill}", color="{stroke}"];'
        )
    for node in nodes:
        for dep in node.depends_on:
            lines.append(f"    {_quoted(dep)} -> {_quoted(node.name)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def png(dot_text: str, output: Path) -> None:
    """Write ``dot_text`` as a PNG image to ``output`` with Graphviz's ``dot`` program."""
    program = shutil.which("dot")
    if program is None:
        raise RenderError(
            "--format png needs Graphviz's dot program, which is not on PATH; "
            "install graphviz (e.g. apt-get install graphviz) or use --format dot"
        )
    result = subprocess.run(
        [program, "-Tpng", "-o", str(output)], input=dot_text, capture_output=True, text=True,
        timeout=120, check=False,
    )
    if result.returncode != 0:
        problem = result.stderr.strip().splitlines()[-1:] or [f"exit code {result.returncode}"]
        raise RenderError(f"dot could not write {output}: {problem[0]}")
