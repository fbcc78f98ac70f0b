"""Run a runner: ``overseer-runner --handlers MODULE[:ATTR]`` or ``python -m runner``."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from types import FrameType

import structlog

from overseer import kube, logs, metrics
from runner.registry import load
from runner.worker import Runner


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="overseer-runner", description=__doc__)
    parser.add_argument(
        "--handlers", required=True, metavar="MODULE[:ATTR]",
        help="import path of the module that defines the handlers (a runner.Registry named "
        "'registry', or a dict 'HANDLERS'), e.g. myjobs.handlers",
    )
    parser.add_argument(
        "-n", "--namespace",
        default=os.environ.get("OVERSEER_NAMESPACE") or os.environ.get("POD_NAMESPACE", "default"),
        help="namespace whose Jobs to run",
    )
    parser.add_argument("--types", default="", help="comma-separated subset of types to run")
    parser.add_argument("--concurrency", type=int, default=1, help="handlers run at once")
    parser.add_argument("--identity", default=None, help="runner name (default: host-random)")
    parser.add_argument(
        "--grace-period", type=float, default=float(os.environ.get("OVERSEER_GRACE_PERIOD", 25)),
        help="seconds running handlers get to finish after SIGTERM before they are handed back",
    )
    parser.add_argument(
        "--lease-duration", type=int, default=15,
        help="seconds without a renewal after which the operator judges this runner dead",
    )
    parser.add_argument("--lease-renew-every", type=float, default=5.0,
                        help="seconds between two renewals of the runner's Lease")
    parser.add_argument("--metrics-port", type=int, default=0,
                        help="serve Prometheus metrics on this port (0: off)")
    parser.add_argument("--log-level", default=os.environ.get("OVERSEER_LOG_LEVEL", "INFO"))
    parser.add_argument("--log-format", choices=["auto", "json", "console"], default="auto")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    logs.configure(level=args.log_level, fmt=args.log_format)
    log = structlog.get_logger("overseer.runner")
    # The handler module is the user's; let it be found beside where the runner starts.
    sys.path.insert(0, os.getcwd())
    try:
        registry = load(args.handlers)
    except LookupError as exc:
        log.error("runner.handlers_not_found", error=str(exc))
        sys.exit(2)
    if args.types:
        wanted = [t.strip() for t in args.types.split(",") if t.strip()]
        unknown = sorted(set(wanted) - set(registry))
        if unknown:
            log.error("runner.unknown_types", types=unknown, known=sorted(registry))
            sys.exit(2)
        registry = type(registry)({t: registry[t] for t in wanted})

    metrics.serve(args.metrics_port)
    try:
        api_client = kube.load_config(pool_size=args.concurrency + 4)
    except kube.ConfigError as exc:
        log.error("runner.no_cluster", error=str(exc))
        sys.exit(2)
    runner = Runner(
        api_client=api_client,
        namespace=args.namespace,
        registry=registry,
        identity=args.identity,
        concurrency=args.concurrency,
        grace_period=args.grace_period,
        lease_duration=args.lease_duration,
        lease_renew_every=args.lease_renew_every,
    )

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("runner.stopping", signal=signal.Signals(signum).name)
        runner.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    runner.run()


if __name__ == "__main__":
    main()
