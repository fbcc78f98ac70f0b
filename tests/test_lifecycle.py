"""The life of a job beyond the happy path: retries, fault, abort, timeouts, results."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.conftest import read_ledger, wait_for
from tests.helpers import PhaseRecorder, graph, job, jobs_of, wait_graph

FAST_BACKOFF = {"initialSeconds": 0.5, "factor": 2, "maxSeconds": 5}


def runs(ledger: Path) -> Counter:
    return Counter(line["job"] for line in read_ledger(ledger) if "stage" not in line)


def test_failed_attempts_are_retried_with_backoff_until_one_succeeds(
    cluster, namespace, start_runner, ledger
):
    recorder = PhaseRecorder(cluster, namespace)
    start_runner(namespace, "tests.handlers.lifecycle")
    cluster.apply(graph("retry", job("flaky", "flaky", args={"fail_times": 2}, retries=3,
                                     backoff=FAST_BACKOFF)), namespace)

    wait_graph(cluster, namespace, "retry", "Finished")
    recorder.stop()

    status = jobs_of(cluster, namespace, "retry")["flaky"]["status"]
    assert (status["phase"], status["attempt"], status["result"]) == ("Finished", 3, {"attempt": 3})
    assert "error" not in status and "nextAttemptAt" not in status
    assert recorder.phases_of("flaky") == [
        "Waiting", "Eligible", "Started", "Eligible", "Started", "Eligible", "Started", "Finished"]
    retrying = [b["status"] for b in recorder.bodies
                if b["status"].get("reason") == "Retrying"]
    assert [r["message"] for r in retrying] == [
        "attempt 1 of 4 failed (RuntimeError: attempt 1 failed); retrying in 0.5s",
        "attempt 2 of 4 failed (RuntimeError: attempt 2 failed); retrying in 1s",
    ]
    assert retrying[0]["error"] == {"type": "RuntimeError", "message": "attempt 1 failed"}
    times = [line["time"] for line in read_ledger(ledger)]
    assert times[1] - times[0] >= 0.45 and times[2] - times[1] >= 0.95, "backoff not honoured"


def test_exhausted_retries_fail_the_job_and_abort_its_dependents(
    cluster, namespace, start_runner, ledger
):
    start_runner(namespace, "tests.handlers.lifecycle")
    cluster.apply(graph("doomed",
                        job("flaky", "flaky", args={"fail_times": 9}, retries=1,
                            backoff=FAST_BACKOFF),
                        job("after", "context", "flaky"),
                        job("later", "context", "after")), namespace)

    body = wait_graph(cluster, namespace, "doomed", "Failed")

    jobs = jobs_of(cluster, namespace, "doomed")
    flaky = jobs["flaky"]["status"]
    assert (flaky["phase"], flaky["attempt"], flaky["reason"]) == ("Failed", 2, "HandlerError")
    assert flaky["message"] == "RuntimeError: attempt 2 failed after 2 attempts"
    assert jobs["after"]["status"]["message"] == "not run because its dependency flaky is Failed"
    assert jobs["later"]["status"]["message"] == "not run because its dependency after is Aborted"
    assert body["status"]["message"] == "1 of 3 jobs failed (flaky), 2 aborted, 0 finished"
    assert runs(ledger) == {"flaky": 2}


def test_fault_hands_the_job_back_to_be_tried_again(cluster, namespace, start_runner):
    recorder = PhaseRecorder(cluster, namespace)
    start_runner(namespace, "tests.handlers.lifecycle")
    cluster.apply(graph("fault", job("f", "faulty", backoff=FAST_BACKOFF)), namespace)

    wait_graph(cluster, namespace, "fault", "Finished")
    recorder.stop()

    status = jobs_of(cluster, namespace, "fault")["f"]["status"]
    assert (status["phase"], status["attempt"], status["result"]) == ("Finished", 2, 2)
    assert ("f", "Eligible", "Faulted") in recorder.seen
    faulted = next(b for b in recorder.bodies if b["status"].get("reason") == "Faulted")
    assert faulted["status"]["message"] == "the database is not up yet; retrying in 0.5s"


def test_abort_ends_the_job_and_every_transitive_dependent(cluster, namespace, start_runner):
    start_runner(namespace, "tests.handlers.lifecycle")
    cluster.apply(graph("abort", job("root", "aborter"), job("mid", "context", "root"),
                        job("leaf", "context", "mid"), job("side", "context")), namespace)

    wait_graph(cluster, namespace, "abort", "Failed")

    jobs = {n: j["status"] for n, j in jobs_of(cluster, namespace, "abort").items()}
    assert {n: (s["phase"], s.get("reason")) for n, s in jobs.items()} == {
        "root": ("Aborted", "Aborted"), "mid": ("Aborted", "DependencyFailed"),
        "leaf": ("Aborted", "DependencyFailed"), "side": ("Finished", None)}
    assert jobs["root"]["message"] == "no input for this week"
    assert jobs["mid"]["message"] == "not run because its dependency root is Aborted"


def test_timeout_interrupts_the_handler_and_fails_the_attempt(
    cluster, namespace, start_runner
):
    runner = start_runner(namespace, "tests.handlers.lifecycle", "--concurrency", "2")
    cluster.apply(graph("slowpoke",
                        job("spin", "spin", timeoutSeconds=1),
                        job("nap", "async-sleep", timeoutSeconds=1),
                        job("next", "context", "spin")), namespace)

    wait_graph(cluster, namespace, "slowpoke", "Failed")

    jobs = {n: j["status"] for n, j in jobs_of(cluster, namespace, "slowpoke").items()}
    for name in ("spin", "nap"):
        assert (jobs[name]["phase"], jobs[name]["reason"]) == ("Failed", "Timeout")
        assert jobs[name]["message"] == (
            "Timeout: the handler ran longer than timeoutSeconds (1s)")
    assert jobs["next"]["phase"] == "Aborted"
    assert runner.popen.poll() is None

    # The interrupted handlers gave their slots back: the runner still runs jobs.
    cluster.apply(graph("after", job("a", "context"), job("b", "context")), namespace)
    wait_graph(cluster, namespace, "after", "Finished")


def test_handler_sees_its_job_and_the_results_of_its_dependencies(
    cluster, namespace, start_runner
):
    start_runner(namespace, "tests.handlers.lifecycle")
    cluster.apply(graph("ctx", job("up", "context", args={"n": 1}),
                        job("down", "context", "up", args={"k": "v"})), namespace)

    wait_graph(cluster, namespace, "ctx", "Finished")

    jobs = jobs_of(cluster, namespace, "ctx")
    up, down = jobs["up"]["status"]["result"], jobs["down"]["status"]["result"]
    assert {k: up[k] for k in ("name", "type", "graph", "namespace", "args", "attempt")} == {
        "name": "up", "type": "context", "graph": "ctx", "namespace": namespace,
        "args": {"n": 1}, "attempt": 1}
    assert down["args"] == {"k": "v"}
    assert down["results"] == {"up": up}


def test_a_result_that_cannot_be_stored_fails_the_job_with_a_message(
    cluster, namespace, start_runner
):
    start_runner(namespace, "tests.handlers.lifecycle")
    cluster.apply(graph("results", job("big", "big"), job("odd", "not-json")), namespace)

    wait_graph(cluster, namespace, "results", "Failed")

    jobs = {n: j["status"] for n, j in jobs_of(cluster, namespace, "results").items()}
    assert (jobs["big"]["phase"], jobs["big"]["reason"]) == ("Failed", "ResultTooLarge")
    assert jobs["big"]["message"] == (
        "ResultTooLarge: the handler returned 20002 bytes of JSON; a result may be at most "
        "16384 bytes (store big outputs elsewhere and return a reference)")
    assert (jobs["odd"]["phase"], jobs["odd"]["reason"]) == ("Failed", "ResultNotSerializable")
    assert jobs["odd"]["message"] == ("ResultNotSerializable: the handler's return value is "
                                      "not JSON: Object of type object is not JSON serializable")
    assert "result" not in jobs["big"]


def test_kubectl_wait_for_a_jobs_condition(cluster, namespace, start_runner):
    start_runner(namespace, "tests.handlers.lifecycle")
    cluster.apply(graph("cond", job("ok", "context"), job("no", "aborter")), namespace)
    wait_for(lambda: len(jobs_of(cluster, namespace, "cond")) == 2, what="the Jobs created")

    cluster.kubectl("wait", "-n", namespace, "--for=condition=Complete", "--timeout=30s",
                    "ojob/cond-ok")
    cluster.kubectl("wait", "-n", namespace, "--for=condition=Failed", "--timeout=30s",
                    "ojob/cond-no")
    cluster.kubectl("wait", "-n", namespace, "--for=condition=Failed", "--timeout=30s",
                    "jobgraph/cond")
    jobs = jobs_of(cluster, namespace, "cond")
    assert [(c["type"], c["status"], c["reason"]) for c in jobs["no"]["status"]["conditions"]] == [
        ("Complete", "False", "Aborted"), ("Failed", "True", "Aborted")]


def test_outcomes_the_api_server_would_refuse_fail_the_job_instead_of_leaving_it_started(
    cluster, namespace, start_runner
):
    start_runner(namespace, "tests.handlers.lifecycle")
    cluster.apply(graph("refused", job("nan", "nan"), job("loud", "huge-error")), namespace)

    wait_graph(cluster, namespace, "refused", "Failed")

    jobs = {n: j["status"] for n, j in jobs_of(cluster, namespace, "refused").items()}
    assert (jobs["nan"]["phase"], jobs["nan"]["reason"]) == ("Failed", "ResultNotSerializable")
    assert jobs["nan"]["message"] == ("ResultNotSerializable: the handler's return value is "
                                      "not JSON: Out of range float values are not JSON compliant")
    assert (jobs["loud"]["phase"], jobs["loud"]["reason"]) == ("Failed", "HandlerError")
    assert jobs["loud"]["error"]["message"] == "E" * 1024 + "... (1998976 more characters)"
