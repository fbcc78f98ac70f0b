"""Drawing a graph: Mermaid and DOT text from jobs and their phases, without a cluster."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from overseer import render
from overseer.render import Node

DIAMOND = [
    Node("split", "Finished"),
    Node("left", "Failed", ("split",)),
    Node("right", "Started", ("split",)),
    Node("end", "Aborted", ("left", "right")),
]


def test_mermaid_labels_each_job_with_name_and_phase_and_colours_it_by_phase():
    assert render.mermaid(DIAMOND) == (
        "flowchart TD\n"
        '    j_split["split<br/>Finished"]\n'
        '    j_left["left<br/>Failed"]\n'
        '    j_right["right<br/>Started"]\n'
        '    j_end["end<br/>Aborted"]\n'
        "    j_split --> j_left\n"
        "    j_split --> j_right\n"
        "    j_left --> j_end\n"
        "    j_right --> j_end\n"
        "    classDef Started fill:#bbdefb,stroke:#1565c0\n"
        "    class j_right Started\n"
        "    classDef Finished fill:#c8e6c9,stroke:#2e7d32\n"
        "    class j_split Finished\n"
        "    classDef Failed fill:#ffcdd2,stroke:#c62828\n"
        "    class j_left Failed\n"
        "    classDef Aborted fill:#ffe0b2,stroke:#ef6c00\n"
        "    class j_end Aborted\n"
    )


def test_mermaid_ids_keep_hyphenated_names_apart_and_a_job_without_a_phase_plain():
    nodes = [Node("total-0", None), Node("total-1", "Waiting", ("total-0",))]

    assert render.mermaid(nodes) == (
        "flowchart TD\n"
        '    j_total_0["total-0"]\n'
        '    j_total_1["total-1<br/>Waiting"]\n'
        "    j_total_0 --> j_total_1\n"
        "    classDef Waiting fill:#eeeeee,stroke:#9e9e9e\n"
        "    class j_total_1 Waiting\n"
    )


def test_dot_labels_each_job_with_name_and_phase_and_fills_it_by_phase():
    assert render.dot(DIAMOND, title="shapes") == (
        'digraph "shapes" {\n'
        "    rankdir=TB;\n"
        '    node [shape=box, style="rounded,filled", fillcolor="#ffffff", '
        'fontname="Helvetica"];\n'
        '    "split" [label="split\\nFinished", fillcolor="#c8e6c9", color="#2e7d32"];\n'
        '    "left" [label="left\\nFailed", fillcolor="#ffcdd2", color="#c62828"];\n'
        '    "right" [label="right\\nStarted", fillcolor="#bbdefb", color="#1565c0"];\n'
        '    "end" [label="end\\nAborted", fillcolor="#ffe0b2", color="#ef6c00"];\n'
        '    "split" -> "left";\n'
        '    "split" -> "right";\n'
        '    "left" -> "end";\n'
        '    "right" -> "end";\n'
        "}\n"
    )


def test_every_job_phase_has_a_colour():
    from overseer.api import JobPhase

    assert set(render.PHASE_COLOURS) == {p.value for p in JobPhase}


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_png_is_drawn_by_graphviz(tmp_path: Path):
    out = tmp_path / "g.png"

    render.png(render.dot(DIAMOND), out)

    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_png_without_graphviz_says_to_install_it(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(render.RenderError) as caught:
        render.png(render.dot(DIAMOND), tmp_path / "g.png")

    assert str(caught.value) == (
        "--format png needs Graphviz's dot program, which is not on PATH; "
        "install graphviz (e.g. apt-get install graphviz) or use --format dot")
