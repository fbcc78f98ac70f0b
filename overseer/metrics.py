"""Serving Prometheus metrics from an Overseer process."""

from __future__ import annotations

import prometheus_client


def serve(port: int, *, address: str = "0.0.0.0") -> None:
    """Serve ``/metrics`` on ``port`` in a background thread; 0 serves nothing."""
    if port:
        prometheus_client.start_http_server(port, addr=address)
