"""Run the operator: ``overseer-operator`` or ``python -m controller``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

import kopf

from overseer import logs, metrics


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="overseer-operator", description=__doc__)
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n", "--namespace", action="append", default=[],
        help="namespace to serve; repeat it, or use globs like 'team-*' and '!kube-*'",
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="serve every namespace")
    parser.add_argument("--metrics-port", type=int, default=0,
                        help="serve Prometheus metrics on this port (0: off)")
    parser.add_argument("--log-level", default=os.environ.get("OVERSEER_LOG_LEVEL", "INFO"))
    parser.add_argument("--log-format", choices=["auto", "json", "console"], default="auto")
    parser.add_argument(
        "--liveness", default=None, metavar="URL",
        help="serve kopf's liveness probe, e.g. http://0.0.0.0:8080/healthz",
    )
    parser.add_argument(
        "--status-interval", type=float, default=1.0,
        help="seconds between two status writes of one graph while it runs",
    )
    parser.add_argument(
        "--orphan-grace", type=float, default=15.0,
        help="seconds a Started job's runner may have no Lease before its job is handed back",
    )
    parser.add_argument(
        "--unserved-after", type=float, default=30.0,
        help="seconds a job may wait Eligible for a type no live runner serves before an Event",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    logs.configure(level=args.log_level, fmt=args.log_format)
    # kopf logs every handler call at INFO ("Handler 'job_event' succeeded"): a line per
    # watch event. The operator's own events say what happened; keep kopf's warnings.
    logging.getLogger("kopf.objects").setLevel(max(logging.WARNING, logging.getLogger().level))
    import controller.handlers  # noqa: F401  (registers the handlers with kopf)

    if not args.namespace and not args.all_namespaces:
        args.namespace = [os.environ.get("OVERSEER_NAMESPACE", "default")]
    metrics.serve(args.metrics_port)
    # kopf lists namespaces to match globs, and CRDs to notice new ones. With exact names
    # (or every namespace) there is nothing to match, and skipping the scan spares the
    # operator cluster-wide read access it would otherwise need.
    exact = args.all_namespaces or not any(c in ns for ns in args.namespace for c in "*?[!")
    # Jobs are followed outside kopf (controller.jobwatch): one watch across all namespaces,
    # one per exact namespace, or, with patterns, one per namespace as its graphs turn up.
    job_namespaces = [None] if args.all_namespaces else args.namespace if exact else []
    memo = kopf.Memo(scanning_disabled=exact, status_interval=args.status_interval,
                     job_namespaces=job_namespaces,
                     orphan_grace=args.orphan_grace,
                     unserved_after=args.unserved_after)
    asyncio.run(kopf.operator(
        standalone=True,
        clusterwide=args.all_namespaces,
        namespaces=args.namespace,  # empty with --all-namespaces; kopf wants a list
        liveness_endpoint=args.liveness,
        memo=memo,
    ))


if __name__ == "__main__":
    main()
