"""Structured JSON logs, configured once for every process.

Every line is one JSON object carrying the service, the level, a UTC timestamp, the
current trace and span ids, and whatever context was bound (event id, topic, partition,
offset). Libraries that log through the standard library come out the same way.
"""

from __future__ import annotations

import logging
import logging.config
from typing import Any

import structlog
from opentelemetry import trace

from shared.settings import PlatformSettings


def _add_trace_ids(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict["trace_id"] = format(context.trace_id, "032x")
        event_dict["span_id"] = format(context.span_id, "016x")
    return event_dict


_configured = False


_PRE_CHAIN: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    _add_trace_ids,
]


def json_formatter() -> logging.Formatter:
    """The formatter that turns any log record (structlog's or a library's) into JSON."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_PRE_CHAIN,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
    )


def logging_dict_config(settings: PlatformSettings) -> dict[str, Any]:
    """The same set-up as `configure_logging`, as a `logging.config.dictConfig` document.

    For frameworks that configure logging themselves from such a document (Faust's worker
    does), so that their processes log JSON like every other.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": json_formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": settings.log_level},
        # aiokafka says at INFO every time a connection authenticates: one line per
        # connection of every client. A refused authentication is still an error.
        "loggers": {"aiokafka.conn": {"level": "WARNING"}},
    }


def configure_logging(service: str, settings: PlatformSettings) -> None:
    """Route structlog and standard-library logging to JSON lines on stderr, once per process.

    Later calls only bind the service name: a process that hosts several components (or a
    test session) keeps the handlers it was first given.
    """
    global _configured
    structlog.contextvars.bind_contextvars(service=service)
    if _configured:
        return
    _configured = True
    structlog.configure(
        processors=[*_PRE_CHAIN, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    logging.config.dictConfig(logging_dict_config(settings))


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
