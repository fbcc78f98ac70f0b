"""The ``overseer`` command line, run as a user runs it, against a real API server.

Each test runs the command as a subprocess with the cluster's environment and reads its
stdout, stderr and exit code. The rendering of tables and trees is also tested on its
own, without a cluster, at the end of the file.
"""

from __future__ import annotations

import io
import os
import pty
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from overseer.builder import Graph
from overseer.cli import durations
from overseer.cli.get import jobs_table, jobs_tree
from overseer.cli.snapshot import JobRow
from tests.conftest import REPO, Cluster
from tests.helpers import get_graph, graph, job, wait_graph


def overseer(cluster: Cluster, *args: str, input: str | None = None,
             env: dict[str, str] | None = None, timeout: float = 120
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "overseer.cli", *args], check=False, cwd=REPO,
        env={**cluster.env, "PYTHONIOENCODING": "utf-8", **(env or {})},
        input=input, capture_output=True, text=True, timeout=timeout,
    )


def diamond(name: str = "diamond") -> Graph:
    g = Graph(name)
    a = g.job("a", type="noop")
    b = g.job("b", type="sleep", args={"seconds": 0.3}, depends_on=[a])
    c = g.job("c", type="noop", depends_on=[a])
    g.job("d", type="echo", depends_on=[b, c])
    return g


def failing(name: str = "oops") -> Graph:
    g = Graph(name)
    bad = g.job("bad", type="boom", args={"message": "disk on fire"})
    g.job("child", type="noop", depends_on=[bad])
    g.job("fine", type="noop")
    return g


def columns(output: str) -> list[list[str]]:
    """A table's cells, cut at the columns where the header's words start."""
    lines = output.rstrip("\n").splitlines()
    starts = [m.start() for m in re.finditer(r"\S+", lines[0])]
    bounds = list(zip(starts, starts[1:] + [None]))
    return [[line[a:b].strip() for a, b in bounds] for line in lines]


# submit


def test_submit_follow_runs_a_diamond_to_its_end_and_exits_0(
    cluster, namespace, start_runner, tmp_path: Path
):
    start_runner(namespace, "tests.handlers.basic")
    manifest = tmp_path / "diamond.yaml"
    manifest.write_text(diamond().to_yaml())

    result = overseer(cluster, "-n", namespace, "submit", str(manifest), "--follow",
                      "--timeout", "60")

    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert lines[0] == f"jobgraph/diamond created in namespace {namespace} (4 jobs)"
    assert lines[1] == "jobgraph/diamond Pending: 0/4 finished"
    assert lines[2].startswith("jobgraph/diamond Running: ")
    assert lines[-2:] == ["jobgraph/diamond Finished: 4/4 finished",
                          "jobgraph/diamond Finished: all 4 jobs finished"]
    # Off a terminal, one line per phase change of the graph, nothing in between.
    assert len(lines) == 5


def test_submit_follow_of_a_failing_graph_exits_1_with_the_failed_jobs_errors(
    cluster, namespace, start_runner, tmp_path: Path
):
    start_runner(namespace, "tests.handlers.basic")
    manifest = tmp_path / "oops.yaml"
    manifest.write_text(failing().to_yaml())

    result = overseer(cluster, "-n", namespace, "submit", str(manifest), "-f")

    assert (result.returncode, result.stderr) == (1, "")
    assert result.stdout.splitlines()[-2:] == [
        "jobgraph/oops Failed: 1 of 3 jobs failed (bad), 1 aborted, 1 finished",
        "  bad failed (attempt 1): ValueError: disk on fire",
    ]


def test_submit_follow_of_a_graph_the_operator_rejects_exits_1_with_its_message(
    cluster, namespace
):
    # A cycle passes the API server's schema; only the operator sees it.
    text = ("apiVersion: overseer.dev/v1alpha1\nkind: JobGraph\nmetadata: {name: loop}\n"
            "spec:\n  jobs:\n  - {name: a, type: noop, dependsOn: [b]}\n"
            "  - {name: b, type: noop, dependsOn: [a]}\n")

    result = overseer(cluster, "-n", namespace, "submit", "-", "--follow", "--timeout", "60",
                      input=text)

    assert (result.returncode, result.stderr) == (1, "")
    assert result.stdout.splitlines()[-1] == (
        "jobgraph/loop Failed: the dependencies form a cycle: a -> b -> a "
        "(each job depends on the next); remove one of these dependencies")


def test_submit_follow_in_a_terminal_shows_a_live_display_and_the_same_end(
    cluster, namespace, start_runner, tmp_path: Path
):
    start_runner(namespace, "tests.handlers.basic")
    manifest = tmp_path / "diamond.yaml"
    manifest.write_text(diamond().to_yaml())
    controller, terminal = pty.openpty()

    process = subprocess.Popen(
        [sys.executable, "-m", "overseer.cli", "-n", namespace, "submit", str(manifest), "-f"],
        cwd=REPO, env={**cluster.env, "TERM": "xterm", "COLUMNS": "120"}, stdout=terminal,
        stderr=subprocess.PIPE, text=True)
    os.close(terminal)
    output = _read_all(controller)
    code = process.wait(timeout=60)

    assert (code, process.stderr.read()) == (0, "")
    # The live display redraws in place with escape codes; its last frame shows 4/4.
    assert "\x1b[" in output
    assert re.search(r"diamond.*Finished.*4/4", output)
    assert output.rstrip().endswith("jobgraph/diamond Finished: all 4 jobs finished")


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the other end is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")


def test_follow_reads_the_graph_afresh_when_its_watch_is_renewed(
    cluster, namespace, start_runner, tmp_path: Path, monkeypatch, capsys
):
    from overseer.cli import follow
    from overseer.cli.app import main

    monkeypatch.setattr(follow, "WATCH_SECONDS", 1)
    start_runner(namespace, "tests.handlers.basic")
    slow = Graph("slow")
    slow.job("nap", type="sleep", args={"seconds": 3})
    manifest = tmp_path / "slow.yaml"
    manifest.write_text(slow.to_yaml())

    code = main(["-n", namespace, "submit", str(manifest), "--follow", "--timeout", "60"])

    assert code == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "jobgraph/slow Finished: all 1 jobs finished")


def test_submit_creates_every_graph_of_a_multi_document_file_from_stdin(cluster, namespace):
    text = diamond("first").to_yaml() + "---\n" + failing("second").to_yaml()

    result = overseer(cluster, "-n", namespace, "submit", "-", input=text)

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        f"jobgraph/first created in namespace {namespace} (4 jobs)",
        f"jobgraph/second created in namespace {namespace} (3 jobs)",
    ]
    assert [j["name"] for j in get_graph(cluster, namespace, "second")["spec"]["jobs"]] == [
        "bad", "child", "fine"]


def test_submit_follow_gives_up_after_its_timeout_with_exit_code_2(cluster, namespace):
    # No runner: the job stays Eligible for ever.
    result = overseer(cluster, "-n", namespace, "submit", "-", "--follow", "--timeout", "1",
                      input=graph_yaml("stuck"))

    assert result.returncode == 2
    assert result.stderr.startswith("overseer: timed out after 1s waiting for jobgraph/stuck: ")
    assert result.stderr.endswith(" (the graph goes on running)\n")
    assert len(result.stderr.splitlines()) == 1


def graph_yaml(name: str) -> str:
    g = Graph(name)
    g.job("only", type="noop")
    return g.to_yaml()


# get


def test_get_lists_the_graphs_of_the_namespace(cluster, namespace, start_runner):
    start_runner(namespace, "tests.handlers.basic")
    cluster.apply(failing().manifest(), namespace)
    cluster.apply(diamond().manifest(), namespace)
    wait_graph(cluster, namespace, "oops", "Failed")
    wait_graph(cluster, namespace, "diamond", "Finished")

    result = overseer(cluster, "-n", namespace, "get")

    assert (result.returncode, result.stderr) == (0, "")
    rows = columns(result.stdout)
    assert rows[0] == ["NAME", "PHASE", "FINISHED", "FAILED", "AGE"]
    assert [row[:4] for row in rows[1:]] == [
        ["diamond", "Finished", "4/4", "0"],
        ["oops", "Failed", "1/3", "1"],
    ]
    assert all(re.fullmatch(r"\d+s", row[4]) for row in rows[1:])


def test_get_in_a_namespace_without_graphs_says_so(cluster, own_namespace):
    result = overseer(cluster, "-n", own_namespace, "get")

    assert (result.returncode, result.stderr, result.stdout) == (
        0, "", f"no graphs in namespace {own_namespace}\n")


def test_get_graph_shows_its_jobs_as_a_table(cluster, namespace, start_runner):
    start_runner(namespace, "tests.handlers.basic")
    cluster.apply(failing().manifest(), namespace)
    wait_graph(cluster, namespace, "oops", "Failed")

    result = overseer(cluster, "-n", namespace, "get", "oops")

    assert (result.returncode, result.stderr) == (0, "")
    summary, blank, table = result.stdout.split("\n", 2)
    assert (summary, blank) == (
        "jobgraph/oops Failed: 1 of 3 jobs failed (bad), 1 aborted, 1 finished", "")
    rows = columns(table)
    assert rows[0] == ["NAME", "TYPE", "PHASE", "ATTEMPT", "RUNNER", "DURATION", "REASON",
                       "MESSAGE"]
    by_name = {row[0]: row for row in rows[1:]}
    assert [row[0] for row in rows[1:]] == ["bad", "child", "fine"]
    assert by_name["bad"][:4] + by_name["bad"][6:] == [
        "bad", "boom", "Failed", "1", "HandlerError", "ValueError: disk on fire"]
    assert by_name["child"] == [
        "child", "noop", "Aborted", "0", "", "", "DependencyFailed",
        "not run because its dependency bad is Failed"]
    assert by_name["fine"][:4] + by_name["fine"][6:] == ["fine", "noop", "Finished", "1", "", ""]
    for name in ("bad", "fine"):
        assert by_name[name][4].startswith(cluster_host_prefix())
        assert re.fullmatch(r"\d+\.\ds", by_name[name][5])


def cluster_host_prefix() -> str:
    import socket
    return socket.gethostname()


def test_get_tree_shows_each_job_under_its_first_dependency(cluster, namespace, start_runner):
    start_runner(namespace, "tests.handlers.basic")
    cluster.apply(diamond().manifest(), namespace)
    wait_graph(cluster, namespace, "diamond", "Finished")

    result = overseer(cluster, "-n", namespace, "get", "diamond", "--tree")

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        "jobgraph/diamond Finished: all 4 jobs finished\n\n"
        "diamond\n"
        "└── a Finished\n"
        "    ├── b Finished\n"
        "    │   └── d Finished\n"
        "    └── c Finished\n"
        "        └── d (under b)\n"
    )


# dag


@pytest.fixture
def failed_graph(cluster, namespace, start_runner) -> str:
    start_runner(namespace, "tests.handlers.basic")
    cluster.apply(failing().manifest(), namespace)
    wait_graph(cluster, namespace, "oops", "Failed")
    return "oops"


def test_dag_mermaid_draws_the_jobs_with_their_phases(cluster, namespace, failed_graph):
    result = overseer(cluster, "-n", namespace, "dag", failed_graph, "--format", "mermaid")

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        "flowchart TD\n"
        '    j_bad["bad<br/>Failed"]\n'
        '    j_child["child<br/>Aborted"]\n'
        '    j_fine["fine<br/>Finished"]\n'
        "    j_bad --> j_child\n"
        "    classDef Finished fill:#c8e6c9,stroke:#2e7d32\n"
        "    class j_fine Finished\n"
        "    classDef Failed fill:#ffcdd2,stroke:#c62828\n"
        "    class j_bad Failed\n"
        "    classDef Aborted fill:#ffe0b2,stroke:#ef6c00\n"
        "    class j_child Aborted\n"
    )


def test_dag_dot_writes_graphviz_text_to_a_file(cluster, namespace, failed_graph,
                                                tmp_path: Path):
    out = tmp_path / "oops.dot"

    result = overseer(cluster, "-n", namespace, "dag", failed_graph, "--format", "dot",
                      "--output", str(out))

    assert (result.returncode, result.stderr, result.stdout) == (0, "", f"wrote {out}\n")
    assert out.read_text() == (
        'digraph "oops" {\n'
        "    rankdir=TB;\n"
        '    node [shape=box, style="rounded,filled", fillcolor="#ffffff", '
        'fontname="Helvetica"];\n'
        '    "bad" [label="bad\\nFailed", fillcolor="#ffcdd2", color="#c62828"];\n'
        '    "child" [label="child\\nAborted", fillcolor="#ffe0b2", color="#ef6c00"];\n'
        '    "fine" [label="fine\\nFinished", fillcolor="#c8e6c9", color="#2e7d32"];\n'
        '    "bad" -> "child";\n'
        "}\n"
    )


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_dag_png_is_drawn_with_graphviz(cluster, namespace, failed_graph, tmp_path: Path):
    out = tmp_path / "oops.png"

    result = overseer(cluster, "-n", namespace, "dag", failed_graph, "--format", "png",
                      "-o", str(out))

    assert (result.returncode, result.stderr) == (0, "")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_dag_png_without_graphviz_says_to_install_it(cluster, namespace, failed_graph,
                                                     tmp_path: Path):
    # A PATH without dot on it; the interpreter is started by its full path.
    result = overseer(cluster, "-n", namespace, "dag", failed_graph, "--format", "png",
                      "-o", str(tmp_path / "oops.png"), env={"PATH": str(tmp_path)})

    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "overseer: --format png needs Graphviz's dot program, which is not on PATH; "
        "install graphviz (e.g. apt-get install graphviz) or use --format dot\n")


# rerun, cancel, suspend, resume: what they write into the spec


def test_rerun_increases_spec_rerun_by_one_each_time(cluster, own_namespace):
    cluster.apply(graph("again", job("a")), own_namespace)

    first = overseer(cluster, "-n", own_namespace, "rerun", "again")
    assert get_graph(cluster, own_namespace, "again")["spec"]["rerun"] == 1
    second = overseer(cluster, "-n", own_namespace, "rerun", "again")

    assert get_graph(cluster, own_namespace, "again")["spec"]["rerun"] == 2
    assert (first.returncode, first.stderr, first.stdout) == (
        0, "", "jobgraph/again: rerun requested (spec.rerun 0 -> 1)\n")
    assert second.stdout == "jobgraph/again: rerun requested (spec.rerun 1 -> 2)\n"


def test_cancel_sets_spec_cancel(cluster, own_namespace):
    cluster.apply(graph("stop", job("a")), own_namespace)

    result = overseer(cluster, "-n", own_namespace, "cancel", "stop")

    assert (result.returncode, result.stderr, result.stdout) == (
        0, "", "jobgraph/stop: cancel requested (spec.cancel set to true)\n")
    assert get_graph(cluster, own_namespace, "stop")["spec"]["cancel"] is True


def test_suspend_and_resume_set_and_clear_spec_suspend(cluster, own_namespace):
    cluster.apply(graph("pause", job("a")), own_namespace)

    suspended = overseer(cluster, "-n", own_namespace, "suspend", "pause")
    spec_while_suspended = get_graph(cluster, own_namespace, "pause")["spec"]
    resumed = overseer(cluster, "-n", own_namespace, "resume", "pause")

    assert suspended.stdout == "jobgraph/pause: suspended (spec.suspend set to true)\n"
    assert spec_while_suspended["suspend"] is True
    assert resumed.stdout == "jobgraph/pause: resumed (spec.suspend set to false)\n"
    assert get_graph(cluster, own_namespace, "pause")["spec"]["suspend"] is False
    assert (suspended.returncode, resumed.returncode) == (0, 0)


def test_the_namespace_defaults_to_the_kubeconfig_contexts(cluster, own_namespace,
                                                          tmp_path: Path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(cluster.kubeconfig.read_text())
    subprocess.run([cluster.kubectl_path, "--kubeconfig", str(kubeconfig), "config",
                    "set-context", "--current", f"--namespace={own_namespace}"], check=True,
                   capture_output=True)
    cluster.apply(graph("here", job("a")), own_namespace)

    result = overseer(cluster, "--kubeconfig", str(kubeconfig), "suspend", "here",
                      env={"KUBECONFIG": "/nonexistent"})

    assert (result.returncode, result.stderr) == (0, "")
    assert get_graph(cluster, own_namespace, "here")["spec"]["suspend"] is True


# errors a user can cause: one line on stderr, exit code 2


def _unreachable_kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "unreachable"
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n")
    return path


def test_user_errors_are_one_line_on_stderr_with_exit_code_2(cluster, namespace,
                                                            tmp_path: Path):
    (tmp_path / "bad.yaml").write_text("spec: [unclosed\n")
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    cluster.apply(graph("taken", job("a")), namespace)
    ns = ["-n", namespace]
    cases = [
        (["submit", str(tmp_path / "missing.yaml")],
         f"overseer: {tmp_path / 'missing.yaml'}: no such file"),
        (["submit", str(tmp_path / "bad.yaml")],
         (f"overseer: {tmp_path / 'bad.yaml'}: not valid YAML: expected ',' or ']', "
          "but got '<stream end>' (line 2, column 1)")),
        (["submit", str(tmp_path / "cm.yaml")],
         (f"overseer: {tmp_path / 'cm.yaml'}: document 1 is v1 ConfigMap; "
          "overseer submit takes overseer.dev/v1alpha1 JobGraph")),
        ([*ns, "get", "nope"], f'overseer: jobgraph "nope" not found in namespace "{namespace}"'),
        ([*ns, "dag", "nope"], f'overseer: jobgraph "nope" not found in namespace "{namespace}"'),
        ([*ns, "rerun", "nope"],
         f'overseer: jobgraph "nope" not found in namespace "{namespace}"'),
        ([*ns, "cancel", "nope"],
         f'overseer: jobgraph "nope" not found in namespace "{namespace}"'),
        ([*ns, "submit", "-", "--timeout", "5"],
         "overseer: --timeout limits --follow; give both, or neither"),
        ([*ns, "dag", "taken", "--format", "png"],
         "overseer: --format png writes an image file; name it with --output FILE"),
        ([*ns, "submit", "-"],
         (f'overseer: jobgraph "taken" already exists in namespace "{namespace}"; '
          "delete it or choose another name")),
        (["--kubeconfig", str(_unreachable_kubeconfig(tmp_path)), "get"],
         "overseer: cannot reach the API server at https://127.0.0.1:1: Connection refused"),
        (["--kubeconfig", str(tmp_path / "nokubeconfig"), "get"],
         f"overseer: kubeconfig {tmp_path / 'nokubeconfig'}: no such file"),
    ]
    taken = Graph("taken")
    taken.job("a", type="noop")

    outcomes = [
        overseer(cluster, *argv, input=taken.to_yaml() if argv[-1] == "-" else None)
        for argv, _ in cases
    ]

    assert [(r.returncode, r.stdout, r.stderr) for r in outcomes] == [
        (2, "", message + "\n") for _, message in cases]


def test_a_manifest_the_api_server_rejects_is_reported_with_its_message(cluster, namespace):
    text = ("apiVersion: overseer.dev/v1alpha1\nkind: JobGraph\nmetadata: {name: up}\n"
            "spec: {jobs: [{name: Upper, type: noop}]}\n")

    result = overseer(cluster, "-n", namespace, "submit", "-", input=text)

    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith(
        'overseer: the API server rejected jobgraph "up": JobGraph.overseer.dev "up" is invalid: '
        'spec.jobs[0].name: Invalid value: "Upper"')
    assert len(result.stderr.splitlines()) == 1


# rendering, without a cluster

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def _row(name: str, phase: str | None, *deps: str, **status: object) -> JobRow:
    return JobRow(name=name, type="noop", depends_on=deps,
                  status={"phase": phase, **status} if phase else {}, exists=phase is not None)


def _text(renderable: object) -> str:
    console = Console(width=200, color_system=None, markup=False, highlight=False,
                      file=io.StringIO(), record=True)
    console.print(renderable)
    return console.export_text()


def test_tree_shows_a_job_with_several_dependencies_once_and_refers_to_it_elsewhere():
    jobs = [
        _row("split", "Finished"),
        _row("total-0", "Finished", "split"),
        _row("total-1", "Started", "split"),
        _row("combine", "Waiting", "total-0", "total-1"),
        _row("report", None, "combine"),
        _row("other", "Eligible"),
    ]

    assert _text(jobs_tree("sales", jobs)) == (
        "sales\n"
        "├── split Finished\n"
        "│   ├── total-0 Finished\n"
        "│   │   └── combine Waiting\n"
        "│   │       └── report -\n"
        "│   └── total-1 Started\n"
        "│       └── combine (under total-0)\n"
        "└── other Eligible\n"
    )


def test_tree_shows_jobs_of_a_cycle_or_under_an_unknown_job_at_the_top_level():
    jobs = [_row("a", None, "b"), _row("b", None, "a"), _row("c", None, "missing"),
            _row("d", None, "c")]

    assert _text(jobs_tree("bad", jobs)) == (
        "bad\n"
        "├── a -\n"
        "│   └── b (at the top level)\n"
        "├── b -\n"
        "│   └── a (at the top level)\n"
        "└── c -\n"
        "    └── d -\n"
    )


def test_jobs_table_measures_duration_from_start_to_end_or_now():
    start = (NOW - timedelta(seconds=75)).isoformat().replace("+00:00", "Z")
    end = (NOW - timedelta(seconds=70)).isoformat().replace("+00:00", "Z")
    jobs = [
        _row("done", "Finished", startedAt=start, finishedAt=end, attempt=1, runner="r1"),
        _row("busy", "Started", startedAt=start, attempt=2, runner="r2"),
        _row("later", None),
    ]

    assert columns(_text(jobs_table(jobs, now=NOW))) == [
        ["NAME", "TYPE", "PHASE", "ATTEMPT", "RUNNER", "DURATION", "REASON", "MESSAGE"],
        ["done", "noop", "Finished", "1", "r1", "5.0s", "", ""],
        ["busy", "noop", "Started", "2", "r2", "1m15s", "", ""],
        ["later", "noop", "-", "0", "", "", "", ""],
    ]


@pytest.mark.parametrize(("seconds", "text"), [
    (0.04, "0.0s"), (59.94, "59.9s"), (60, "1m00s"), (3599, "59m59s"), (3600, "1h00m"),
    (90061, "1d1h"),
])
def test_short_durations(seconds: float, text: str):
    assert durations.short(seconds) == text
