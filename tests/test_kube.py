"""The API layer every Overseer process talks through (``overseer.kube.Resource``).

Against the real API server: what each request returns, how its failures map to the few
errors Overseer decides on, and what a watch yields. The one case the server will not
produce on demand, a failure other than 410 in the middle of a watch, is a unit test.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from overseer import kube
from overseer.api import GRAPH_LABEL, TYPE_LABEL


def job_body(namespace: str, name: str, type_: str = "noop") -> dict[str, Any]:
    return {
        "apiVersion": "overseer.dev/v1alpha1", "kind": "Job",
        "metadata": {"name": f"g-{name}", "namespace": namespace,
                     "labels": {GRAPH_LABEL: "g", TYPE_LABEL: type_}},
        "spec": {"graph": "g", "name": name, "type": type_},
    }


@pytest.fixture
def jobs(cluster) -> kube.Resource:
    return kube.jobs(cluster.api_client)


@pytest.fixture
def namespace(own_namespace: str) -> str:
    # No operator: these Jobs have no graph, and nothing but the test may write them.
    return own_namespace


@pytest.mark.e2e
def test_create_get_and_list_return_the_objects_as_plain_dicts(jobs, namespace):
    created = jobs.create(namespace, job_body(namespace, "a"))
    jobs.create(namespace, job_body(namespace, "b", "other"))

    assert created["metadata"]["name"] == "g-a"
    assert jobs.get(namespace, "g-a")["metadata"]["uid"] == created["metadata"]["uid"]
    listed = jobs.list(namespace, label_selector=f"{TYPE_LABEL}=other")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["g-b"]
    assert listed["metadata"]["resourceVersion"]
    # Every Overseer process writes as one field manager.
    assert [m["manager"] for m in created["metadata"]["managedFields"]] == ["overseer"]


@pytest.mark.e2e
def test_a_preconditioned_status_patch_on_a_stale_version_is_a_conflict(jobs, namespace):
    created = jobs.create(namespace, job_body(namespace, "a"))
    stale = created["metadata"]["resourceVersion"]
    patched = jobs.patch_status(namespace, "g-a", {"phase": "Eligible"}, resource_version=stale)
    assert patched["status"]["phase"] == "Eligible"

    with pytest.raises(kube.Conflict) as raised:
        jobs.patch_status(namespace, "g-a", {"phase": "Started"}, resource_version=stale)
    assert raised.value.status == 409
    assert "the object has been modified" in raised.value.message
    assert jobs.get(namespace, "g-a")["status"]["phase"] == "Eligible"


@pytest.mark.e2e
def test_a_missing_object_is_not_found_with_the_servers_message(jobs, namespace):
    with pytest.raises(kube.NotFound) as raised:
        jobs.get(namespace, "g-missing")
    assert raised.value.status == 404
    assert raised.value.message == 'jobs.overseer.dev "g-missing" not found'


@pytest.mark.e2e
def test_a_refused_write_is_an_error_with_the_servers_reason(jobs, namespace):
    bad = job_body(namespace, "a")
    bad["spec"]["retries"] = -1
    with pytest.raises(kube.KubeError) as raised:
        jobs.create(namespace, bad)
    assert raised.value.status == 422
    assert "spec.retries" in raised.value.message


@pytest.mark.e2e
def test_a_watch_yields_each_change_once_in_order_as_plain_dicts(jobs, namespace):
    version = jobs.list(namespace)["metadata"]["resourceVersion"]
    jobs.create(namespace, job_body(namespace, "a"))
    jobs.patch_status(namespace, "g-a", {"phase": "Eligible"})
    jobs.delete(namespace, "g-a")

    seen = []
    for event in jobs.watch(namespace, resource_version=version, timeout_seconds=5):
        if event["type"] != "BOOKMARK":
            body = event["object"]
            seen.append((event["type"], body["metadata"]["name"],
                         (body.get("status") or {}).get("phase")))
        if event["type"] == "DELETED":
            break
    assert seen == [("ADDED", "g-a", "Waiting"), ("MODIFIED", "g-a", "Eligible"),
                    ("DELETED", "g-a", "Eligible")]


@pytest.mark.e2e
def test_a_watch_filtered_on_phase_sees_a_job_enter_and_leave_it(jobs, namespace):
    version = jobs.list(namespace)["metadata"]["resourceVersion"]
    jobs.create(namespace, job_body(namespace, "a"))
    jobs.patch_status(namespace, "g-a", {"phase": "Eligible"})
    jobs.patch_status(namespace, "g-a", {"phase": "Started"})

    seen = []
    for event in jobs.watch(namespace, resource_version=version, timeout_seconds=5,
                            field_selector="status.phase=Eligible"):
        if event["type"] != "BOOKMARK":
            seen.append((event["type"], event["object"]["status"]["phase"]))
        if len(seen) == 2:
            break
    # Leaving the filter is a DELETED event carrying the object as it last matched.
    assert seen == [("ADDED", "Eligible"), ("DELETED", "Eligible")]


@pytest.mark.e2e
def test_a_watch_from_a_version_the_server_no_longer_has_raises_gone(jobs, namespace):
    with pytest.raises(kube.Gone) as raised:
        for _ in jobs.watch(namespace, resource_version="1", timeout_seconds=5):
            pass
    assert raised.value.status == 410
    assert "too old resource version" in raised.value.message


@pytest.mark.e2e
def test_a_watch_ends_by_itself_after_its_timeout(jobs, namespace):
    version = jobs.list(namespace)["metadata"]["resourceVersion"]
    ended = threading.Event()

    def follow() -> None:
        for _ in jobs.watch(namespace, resource_version=version, timeout_seconds=1):
            pass
        ended.set()

    threading.Thread(target=follow, daemon=True).start()
    assert ended.wait(15)


@pytest.mark.parametrize(("code", "error"), [(410, kube.Gone), (500, kube.Unavailable),
                                             (403, kube.KubeError)])
def test_an_error_in_the_middle_of_a_watch_ends_it_with_the_matching_error(code, error):
    # A watch response as the API server streams it: one JSON document a line.
    response = [
        b'{"type":"ADDED","object":{"metadata":{"name":"a","resourceVersion":"7"}}}\n',
        b"\n",
        b'{"type":"ERROR","object":{"kind":"Status","code":%d,"reason":"Why",'
        b'"message":"what went wrong"}}\n' % code,
        b'{"type":"ADDED","object":{"metadata":{"name":"b","resourceVersion":"8"}}}\n',
    ]
    seen = []
    with pytest.raises(error) as raised:
        for event in kube._events(response):
            seen.append(event["object"]["metadata"]["name"])
    assert seen == ["a"]
    assert (raised.value.status, raised.value.reason, raised.value.message) == (
        code, "Why", "what went wrong")
    assert type(raised.value) is error


@pytest.mark.parametrize(("python", "api"), [
    ({"label_selector": "a=b"}, {"labelSelector": "a=b"}),
    ({"field_selector": "x", "resource_version": "0"},
     {"fieldSelector": "x", "resourceVersion": "0"}),
    ({"allow_watch_bookmarks": True, "timeout_seconds": 5},
     {"allowWatchBookmarks": True, "timeoutSeconds": 5}),
])
def test_list_parameters_are_sent_in_the_apis_spelling(python, api):
    assert kube._query(python) == api


@pytest.mark.e2e
def test_a_core_kind_is_served_under_api(cluster, namespace):
    events = kube.events(cluster.api_client)
    created = events.create(namespace, {
        "metadata": {"generateName": "probe.", "namespace": namespace},
        "involvedObject": {"kind": "ConfigMap", "name": "x", "namespace": namespace},
        "reason": "Probe", "message": "hello", "type": "Normal"})
    listed = events.list(namespace, field_selector="reason=Probe")["items"]
    assert [(e["metadata"]["name"], e["message"]) for e in listed] == [
        (created["metadata"]["name"], "hello")]


def test_a_watch_line_that_is_not_json_ends_it_as_unavailable():
    # A watch response as the API server streams it: one JSON document a line.
    response = [
        b'{"type":"ADDED","object":{"metadata":{"name":"a","resourceVersion":"7"}}}\n',
        b"<html>captive portal</html>\n",
    ]
    seen = []
    with pytest.raises(kube.Unavailable) as raised:
        for event in kube._events(response):
            seen.append(event["object"]["metadata"]["name"])
    assert seen == ["a"]
    assert raised.value.message == (
        "the watch answered with something that is not JSON: '<html>captive portal</html>'")
