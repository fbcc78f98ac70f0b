"""A runner's Lease where the API server cannot produce the fault on demand."""

from __future__ import annotations

import urllib3

from runner.lease import RunnerLease


class Unreachable:
    """The typed Lease API of a client whose API server has gone away."""

    def __init__(self) -> None:
        self.deletes = 0

    def delete_namespaced_lease(self, name, namespace, **_):
        self.deletes += 1
        raise urllib3.exceptions.MaxRetryError(None, f"/leases/{name}", "Connection refused")


def test_releasing_the_lease_of_a_runner_whose_api_server_is_gone_ends_quietly():
    lease = RunnerLease(None, namespace="ns", identity="r1", types=["noop"], duration=15,
                        renew_every=5)
    lease._api = Unreachable()

    lease.release()  # a runner stopped after its control plane: logged, not raised

    assert lease._api.deletes == 1
    assert lease._stop.is_set()
