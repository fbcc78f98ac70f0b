"""Logging for every Overseer process: structlog events, JSON in pods, readable in a terminal.

Libraries that log through the standard library (kopf, the kubernetes client) go through
the same pipeline, so one process writes one format.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Literal

import structlog

Format = Literal["json", "console", "auto"]


def configure(*, level: str = "INFO", fmt: Format = "auto") -> None:
    """Set up structlog and the standard library's root logger to write to stderr."""
    if fmt == "auto":
        fmt = os.environ.get("OVERSEER_LOG_FORMAT", "auto")  # type: ignore[assignment]
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"

    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The client logs every request at DEBUG and kopf's watch internals are chatty at INFO.
    logging.getLogger("kubernetes").setLevel(max(root.level, logging.WARNING))
    logging.getLogger("urllib3").setLevel(max(root.level, logging.WARNING))
    logging.getLogger("aiohttp").setLevel(max(root.level, logging.WARNING))
