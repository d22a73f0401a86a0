"""Logging for every iotmon process: stdlib loggers rendered by structlog, console or JSON.

Code logs through ``logging.getLogger(__name__)`` with lazy ``%s`` arguments (or
structlog's key-values); one handler renders every record the same way, with
the time (UTC), level, logger, the service and any fixed context (a worker's
index), as text for people or one JSON object per line for containers.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from iotmon_runtime.settings import LogFormat

_NOISY = ("httpx", "httpcore")
"""Libraries that log every request at INFO: a line per batch is noise, not news."""


def _static(context: Mapping[str, str]) -> Processor:
    def add(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
        for key, value in context.items():
            event.setdefault(key, value)
        return event

    return add


def configure_logging(
    level: str,
    log_format: LogFormat | str = LogFormat.CONSOLE,
    *,
    service: str,
    context: Mapping[str, str] | None = None,
    stream: TextIO | None = None,
) -> None:
    """Route every log record through structlog to ``stream`` (stderr by default).

    Called once in ``main()`` (and in each worker process); replaces the root handlers.
    """
    output = stream if stream is not None else sys.stderr
    fixed = {"service": service, **(context or {})}
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _static(fixed),
    ]
    renderer: Processor
    if LogFormat(log_format) is LogFormat.JSON:
        renderer = structlog.processors.JSONRenderer()
        # Tracebacks as data, without the frames' local variables (structlog's
        # dict_tracebacks shows them): they hold secrets and payloads.
        shared.append(
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            )
        )
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=output.isatty(),
            exception_formatter=structlog.dev.plain_traceback,
            sort_keys=False,
        )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(output)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    numeric = logging.getLevelNamesMapping()[level.upper()]
    root.setLevel(numeric)
    for name in _NOISY:
        logging.getLogger(name).setLevel(max(logging.WARNING, numeric))
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    """A structlog logger for key-value events (``log.info("stored", readings=n)``)."""
    return structlog.stdlib.get_logger(name)
