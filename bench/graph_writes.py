"""What one write of a JobGraph costs the API server, by graph size: ``python -m bench.graph_writes``.

Starts a control plane of its own, creates graphs of 1, 1,000 and 10,000 jobs (no operator),
and times a few requests of each kind against each, with the API server's own CPU time per
request: a status merge-patch (what the operator's status flusher sends), an annotation
merge-patch (what kopf sends to keep its progress), a GET, and a GET as a Table from the
watch cache (what the benchmark polls). ``--without-immutability-rule`` installs the
JobGraph CRD without its ``self == oldSelf`` rule on ``spec.jobs``, to show what the CEL
rule costs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

from bench import shapes
from bench.cluster import REPO, Connection, control_plane_pids
from overseer.devcluster import ControlPlane

IMMUTABLE_RULE = (
    "                x-kubernetes-validations:\n"
    "                - message: spec.jobs is immutable\n"
    "                  rule: self == oldSelf\n"
)
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.graph_writes", description=__doc__)
    parser.add_argument("--without-immutability-rule", action="store_true")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="overseer-graph-writes-"))
    crds = work / "crds"
    crds.mkdir()
    for path in (REPO / "crds").glob("*.yaml"):
        text = path.read_text()
        if args.without_immutability_rule and path.name.startswith("jobgraphs"):
            if IMMUTABLE_RULE not in text:
                raise SystemExit("the CRD's immutability rule is not where this expects it")
            text = text.replace(IMMUTABLE_RULE, "")
        (crds / path.name).write_text(text)

    with ControlPlane(work / "control-plane") as cp:
        env = cp.env()
        subprocess.run([str(cp.kubectl), "apply", "--server-side", "-f", str(crds)], env=env,
                       check=True, capture_output=True)
        subprocess.run([str(cp.kubectl), "wait", "--for=condition=Established",
                        "crd/jobgraphs.overseer.dev"], env=env, check=True, capture_output=True)
        conn = Connection.from_kubeconfig(cp.kubeconfig)
        while conn.request("GET", "/apis/overseer.dev/v1alpha1/jobgraphs?limit=1")[0] != 200:
            time.sleep(0.2)
        apiserver = psutil.Process(control_plane_pids(cp)["kube-apiserver"])

        def cpu() -> float:
            t = apiserver.cpu_times()
            return t.user + t.system

        conn.json("POST", "/api/v1/namespaces", {"metadata": {"name": "probe"}})
        base = "/apis/overseer.dev/v1alpha1/namespaces/probe/jobgraphs"
        rule = "without" if args.without_immutability_rule else "with"
        print(f"JobGraph CRD {rule} the spec.jobs immutability rule; apiserver CPU per request")
        for label, shape, repeat in (("1 job", shapes.independent(1), 10),
                                     ("1000 jobs", shapes.independent(1000), 5),
                                     ("10000 jobs", shapes.layered(100, 100), 3)):
            name = label.replace(" ", "-")
            data = shapes.manifest_bytes(shapes.manifest(shape, name))
            c0 = cpu()
            conn.json("POST", base, data, timeout=120)
            print(f"{label} ({len(data)} B): create {1000 * (cpu() - c0):.0f} ms")
            kinds = (
                ("status merge-patch", "PATCH", f"{base}/{name}/status",
                 lambda i: {"status": {"progress": f"{i}/x"}}, "application/json"),
                ("annotation merge-patch", "PATCH", f"{base}/{name}",
                 lambda i: {"metadata": {"annotations": {"overseer.dev/probe": str(i)}}},
                 "application/json"),
                ("GET", "GET", f"{base}/{name}", None, "application/json"),
                ("GET Table rv=0", "GET", f"{base}/{name}?resourceVersion=0", None, TABLE),
            )
            for what, method, path, body, accept in kinds:
                c0, t0 = cpu(), time.monotonic()
                for i in range(repeat):
                    payload = json.dumps(body(i)).encode() if body else None
                    status, out = conn.request(method, path, payload, accept=accept, timeout=120,
                                               content_type="application/merge-patch+json")
                    if status != 200:
                        raise SystemExit(f"{what}: HTTP {status}: {out[:200]!r}")
                print(f"  {what}: {1000 * (cpu() - c0) / repeat:.0f} ms CPU, "
                      f"{1000 * (time.monotonic() - t0) / repeat:.0f} ms wall")


if __name__ == "__main__":
    main()
