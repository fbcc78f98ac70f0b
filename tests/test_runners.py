"""Runners that die, stall or are told to stop: no job is lost, none is finished twice."""

from __future__ import annotations

import os
import signal
import time

from tests.conftest import read_ledger, wait_for
from tests.helpers import events, graph, job, jobs_of, phases, wait_graph

SHORT_LEASE = ("--lease-duration", "3", "--lease-renew-every", "1")


def held_by(cluster, namespace, graph_name, name):
    status = jobs_of(cluster, namespace, graph_name).get(name, {}).get("status") or {}
    return status.get("runner") if status.get("phase") == "Started" else None


def test_jobs_of_a_killed_runner_are_reclaimed_and_finish_on_another(
    cluster, namespace, start_runner, ledger
):
    doomed = start_runner(namespace, "tests.handlers.lifecycle", "--concurrency", "2",
                          "--identity", "doomed", *SHORT_LEASE)
    cluster.apply(graph("rescue", job("a", "slow", args={"seconds": 4}),
                        job("b", "slow", args={"seconds": 4})), namespace)
    wait_for(lambda: {held_by(cluster, namespace, "rescue", n) for n in "ab"} == {"doomed"},
             what="both jobs held by the doomed runner")

    start_runner(namespace, "tests.handlers.lifecycle", "--concurrency", "2",
                 "--identity", "rescuer", *SHORT_LEASE)
    doomed.kill()
    body = wait_graph(cluster, namespace, "rescue", "Finished", timeout=60)

    jobs = {n: j["status"] for n, j in jobs_of(cluster, namespace, "rescue").items()}
    for name in "ab":
        assert (jobs[name]["runner"], jobs[name]["attempt"], jobs[name]["reclaims"]) == (
            "rescuer", 2, 1)
    assert body["status"]["counts"]["finished"] == 2
    reclaimed = wait_for(lambda: events(cluster, namespace, "JobReclaimed"), what="an event")
    assert "runner doomed stopped renewing its lease for over 3s" in reclaimed[0]
    ends = [line["runner"] for line in read_ledger(ledger) if line.get("stage") == "end"]
    assert ends == ["rescuer", "rescuer"]
    # The dead runner's Lease is gone; the live one's remains.
    leases = cluster.kubectl("get", "leases", "-n", namespace, "-o", "name").stdout.split()
    assert leases == ["lease.coordination.k8s.io/rescuer"]


def test_a_runner_whose_claim_was_taken_over_cannot_overwrite_the_new_outcome(
    cluster, namespace, start_runner, ledger
):
    stalled = start_runner(namespace, "tests.handlers.lifecycle", "--identity", "stalled",
                           *SHORT_LEASE)
    cluster.apply(graph("takeover", job("a", "slow", args={"seconds": 2})), namespace)
    wait_for(lambda: held_by(cluster, namespace, "takeover", "a") == "stalled",
             what="the job held by the runner to be stalled")
    os.kill(stalled.popen.pid, signal.SIGSTOP)
    try:
        start_runner(namespace, "tests.handlers.lifecycle", "--identity", "fresh", *SHORT_LEASE)
        wait_graph(cluster, namespace, "takeover", "Finished", timeout=60)
    finally:
        os.kill(stalled.popen.pid, signal.SIGCONT)

    # The stalled runner wakes, finishes its (old) attempt and must drop the outcome.
    lost = wait_for(lambda: [e for e in stalled.events() if e["event"] == "job.claim_lost"],
                    timeout=30, what="the stalled runner to notice its lost claim")
    assert lost[0]["why"] == "the job was claimed again by fresh"
    status = jobs_of(cluster, namespace, "takeover")["a"]["status"]
    assert (status["phase"], status["runner"], status["attempt"]) == ("Finished", "fresh", 2)
    ends = sorted(line["runner"] for line in read_ledger(ledger) if line.get("stage") == "end")
    assert ends == ["fresh", "stalled"]


def test_sigterm_lets_short_handlers_finish_and_hands_back_the_rest(
    cluster, namespace, start_runner, ledger
):
    runner = start_runner(namespace, "tests.handlers.lifecycle", "--concurrency", "2",
                          "--identity", "leaving", "--grace-period", "2")
    cluster.apply(graph("drain", job("short", "slow", args={"seconds": 1}),
                        job("long", "slow", args={"seconds": 60})), namespace)
    wait_for(lambda: set(phases(cluster, namespace, "drain").values()) == {"Started"},
             what="both jobs started")

    runner.popen.send_signal(signal.SIGTERM)
    assert runner.popen.wait(timeout=20) == 0

    jobs = {n: j["status"] for n, j in jobs_of(cluster, namespace, "drain").items()}
    assert jobs["short"]["phase"] == "Finished"
    assert (jobs["long"]["phase"], jobs["long"]["reason"]) == ("Eligible", "RunnerStopped")
    assert jobs["long"]["message"] == (
        "runner leaving shut down before the handler finished; handed back to be run again")
    assert cluster.kubectl("get", "leases", "-n", namespace, "-o", "name").stdout == ""
    assert [e["event"] for e in runner.events()][-2:] == ["job.eligible", "runner.stopped"]

    # Nothing was lost: another runner picks the handed-back job up.
    start_runner(namespace, "tests.handlers.lifecycle")
    wait_for(lambda: held_by(cluster, namespace, "drain", "long") is not None,
             what="the handed-back job claimed again")
    assert jobs_of(cluster, namespace, "drain")["long"]["status"]["attempt"] == 2


def test_sigterm_with_nothing_running_exits_at_once(cluster, namespace, start_runner):
    runner = start_runner(namespace, "tests.handlers.lifecycle")
    wait_for(lambda: any(e["event"] == "runner.started" for e in runner.events()),
             what="the runner to start")
    runner.popen.send_signal(signal.SIGTERM)
    assert runner.popen.wait(timeout=10) == 0
    assert [e["event"] for e in runner.events()][-2:] == ["runner.stopping", "runner.stopped"]


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scrape(port: int) -> dict[str, float]:
    import urllib.request
    from prometheus_client.parser import text_string_to_metric_families
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


def test_runner_and_operator_serve_prometheus_metrics(
    cluster, own_namespace, processes, start_runner
):
    ns = own_namespace
    operator_port, runner_port = _free_port(), _free_port()
    processes.start("operator", "-m", "controller", "--namespace", ns,
                    "--metrics-port", str(operator_port))
    start_runner(ns, "tests.handlers.lifecycle", "--metrics-port", str(runner_port))
    cluster.apply(graph("measured", job("a", "context"), job("b", "context", "a"),
                        job("c", "aborter", "a")), ns)
    wait_graph(cluster, ns, "measured", "Failed")

    runner = wait_for(lambda: (m := _scrape(runner_port))
                      and m.get("overseer_runner_jobs_total{outcome=aborted,type=aborter}")
                      and m, what="runner metrics")
    assert runner["overseer_runner_jobs_total{outcome=finished,type=context}"] == 2
    assert runner["overseer_runner_jobs_total{outcome=aborted,type=aborter}"] == 1
    assert runner["overseer_runner_claims_total{result=won}"] == 3
    assert runner["overseer_runner_handler_duration_seconds_count{type=context}"] == 2
    assert runner["overseer_runner_eligible_to_started_seconds_count{type=context}"] == 2
    assert runner["overseer_runner_running_handlers{}"] == 0

    operator = wait_for(lambda: (m := _scrape(operator_port))
                        and m.get("overseer_operator_graphs{phase=Failed}") == 1 and m,
                        what="operator metrics")
    assert operator["overseer_operator_jobs_created_total{}"] == 3
    assert operator["overseer_operator_transitions_total{phase=Eligible,reason=}"] == 3
    assert operator["overseer_operator_jobs{phase=Finished}"] == 2
    assert operator["overseer_operator_jobs{phase=Aborted}"] == 1
    assert operator["overseer_operator_live_runners{namespace=" + ns + "}"] == 1


def test_a_runner_restarted_under_the_same_identity_hands_back_what_it_held(
    cluster, namespace, start_runner
):
    first = start_runner(namespace, "tests.handlers.lifecycle", "--identity", "fixed")
    cluster.apply(graph("reborn", job("a", "slow", args={"seconds": 30})), namespace)
    wait_for(lambda: held_by(cluster, namespace, "reborn", "a") == "fixed", what="a held")
    first.kill()

    again = start_runner(namespace, "tests.handlers.lifecycle", "--identity", "fixed")
    wait_for(lambda: any(e["event"] == "job.handed_back" for e in again.events()),
             what="the leftover handed back")
    status = wait_for(lambda: (s := jobs_of(cluster, namespace, "reborn")["a"]["status"])
                      .get("attempt") == 2 and s, what="a claimed again")
    assert status["runner"] == "fixed"
    assert again.popen.poll() is None


def test_a_paused_operator_does_not_judge_live_runners_dead(
    cluster, own_namespace, processes, start_runner, ledger
):
    # Paused for longer than the runners' leases, the operator has heard no renewal; the
    # runners renewed all along, and their Leases say so.
    ns = own_namespace
    operator = processes.start("operator", "-m", "controller", "--namespace", ns)
    for name in ("r1", "r2"):
        start_runner(ns, "tests.handlers.lifecycle", "--identity", name, *SHORT_LEASE)
    cluster.apply(graph("long", job("a", "slow", args={"seconds": 8}),
                        job("b", "slow", args={"seconds": 8})), ns)
    wait_for(lambda: {held_by(cluster, ns, "long", n) for n in "ab"} == {"r1", "r2"},
             what="both jobs held")

    os.kill(operator.pid, signal.SIGSTOP)
    try:
        time.sleep(5)  # past the runners' 3 s leases
    finally:
        os.kill(operator.pid, signal.SIGCONT)

    wait_graph(cluster, ns, "long", "Finished", timeout=60)
    jobs = {n: j["status"] for n, j in jobs_of(cluster, ns, "long").items()}
    assert {n: (s["attempt"], s.get("reclaims")) for n, s in jobs.items()} == {
        "a": (1, None), "b": (1, None)}
    assert sorted(line["job"] for line in read_ledger(ledger) if line.get("stage") == "end") == [
        "a", "b"]
    seen = [e["event"] for e in operator.events()]
    assert "runner.lost" not in seen
    assert seen.count("runner.heard_late") == 2
