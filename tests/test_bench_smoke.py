"""The benchmark command runs end to end and writes a report with every section.

A smoke run only: ``python -m bench.run --quick`` against the session's API server. It
checks that each section is there and that the figures are sane (counts add up, rates are
positive), never how fast anything was: timings depend on the machine.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, Cluster

pytestmark = pytest.mark.e2e

# The benchmark samples processes with psutil (the `bench` extra); without it there is
# nothing to run.
pytest.importorskip("psutil", reason="the benchmark needs psutil: pip install -e '.[bench]'")


def test_quick_benchmark_writes_a_report_with_every_section(cluster: Cluster, tmp_path: Path):
    out = tmp_path / "bench"
    cases = "ceiling,protocol,independent,chain,layered"
    peer = shutil.which("redis-server") is not None and _importable("celery")
    if peer:
        cases += ",peer"

    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--cases", cases, "--out", str(out),
         "--kubectl", cluster.kubectl_path],
        check=False, cwd=REPO, env=cluster.env, capture_output=True, text=True, timeout=240,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert (out / "report.md").read_text().startswith("# Overseer benchmark")

    meta = report["meta"]
    assert meta["versions"]["kubernetes"].startswith("v")
    assert meta["versions"]["kopf"] and meta["versions"]["python"]
    assert meta["machine"]["cores"] >= 1

    ceiling = report["ceiling"]
    assert ceiling["patches_per_s"] > 0
    assert all(level["conflicts"] == 0 and level["errors"] == 0 for level in ceiling["levels"])

    # The protocol alone: every job's four writes went through, with and without watches.
    rows = report["protocol"]["rows"]
    assert [row["watches"] for row in rows] == ["none", "operator + 4 runners"]
    assert all(row["errors"] == 0 and row["jobs_per_s"] > 0 for row in rows)
    # The lean clients that send the writes and read the watches spend CPU of their own,
    # which the protocol's cost with its clients adds to the servers'.
    assert all(row["clients_cpu_ms_per_job"] > 0 for row in rows)
    protocol = report["protocol"]
    if protocol["server_ms_per_job"] is not None:
        assert protocol["with_clients_ms_per_job"] == pytest.approx(
            protocol["server_ms_per_job"] + rows[1]["clients_cpu_ms_per_job"], abs=0.02)

    by_label = {c["label"]: c for c in report["cases"]}
    assert set(by_label) == {"independent-50", "chain-10", "layered-3x5"}
    for case in by_label.values():
        assert "error" not in case, case.get("traceback")
        assert case["completed"] is True
        assert case["job_phases"] == {"Finished": case["jobs"]}
        assert case["jobs_per_s"] > 0
        # The ceiling measured again just before the case, which its target uses.
        assert case["ceiling"]["patches_per_s"] > 0
        assert case["ceiling"]["conflicts"] == case["ceiling"]["errors"] == 0
        # Every job is created, claimed and finished by successful writes (at least: the
        # counts are the whole API server's, and the cluster may be shared).
        jobs_writes = case["writes"]["by_resource"]["jobs.overseer.dev"]
        assert jobs_writes["ok"] >= case["jobs"]
        assert case["writes"]["by_resource"]["jobs/status.overseer.dev"]["ok"] >= 2 * case["jobs"]
        assert case["claims"]["successful"] == case["jobs"]
        assert case["usage"]["operator"]["peak_rss_mb"] > 0
        assert case["usage"]["runners"]["peak_rss_mb"] > 0
        assert case["sizes"]["graph_kubectl_json_bytes"] > case["sizes"]["manifest_bytes"] > 0

    # A chain of 10 has 9 edges; a 3x5 layered graph has 10 jobs with dependencies.
    assert by_label["chain-10"]["handoff"]["total"]["count"] == 9
    assert by_label["layered-3x5"]["handoff"]["total"]["count"] == 10
    assert by_label["independent-50"]["handoff"]["total"]["count"] == 0

    if peer:
        rows = {c["shape"]: c for c in report["peer"]["cases"]}
        assert set(rows) == {"independent", "chain", "layered"}
        assert all(r["completed"] and r["jobs_per_s"] > 0 for r in rows.values())
        assert rows["chain"]["handoff"]["total"]["count"] == 9

    names = {t["name"] for t in report["targets"]}
    assert any(n.startswith("writes per job") for n in names)
    assert all(t["result"] in ("PASS", "MISS", "n/a") for t in report["targets"])


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True
