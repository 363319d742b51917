"""structlog set-up: readable console lines for people, JSON lines for machines.

``MARKETLAKE_LOG_JSON=1`` switches to JSON; logs go to stderr so command
output on stdout stays clean for pipes.
"""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(json: bool = False, level: str = "INFO") -> None:
    lvl = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        # the stream is looked up at each use, not bound once: a caller that swaps
        # sys.stderr for a while (a test runner capturing a command) never leaves
        # the loggers writing to a stream it has closed since
        logger_factory=lambda *_: structlog.PrintLogger(sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)  # type: ignore[no-any-return]  # structlog returns Any
