"""Logging with structlog: JSON lines when stderr is not a terminal, readable console otherwise.

A processor removes secrets (AWS keys, master key, Authorization values) from every event, so a
careless ``log.info(..., headers=...)`` cannot leak them.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_KEYS = re.compile(
    r"(authorization|secret|password|token|api[_-]?key|master[_-]?key|x-amz-security-token|"
    r"aws_access_key_id|credential)",
    re.I,
)
_SECRET_VALUES = re.compile(
    r"(Bearer\s+)[^\s\"',]+|(AWS4-HMAC-SHA256\s+Credential=)[^\s\"',]+|((?:AKIA|ASIA|AKID)[A-Z0-9]{8,})"
)


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return _SECRET_VALUES.sub(lambda m: (m.group(1) or m.group(2) or "") + "***", value)
    if isinstance(value, dict):
        return {
            k: "***" if isinstance(v, str) and _SECRET_KEYS.search(str(k)) else _scrub_value(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return type(value)(_scrub_value(v) for v in value)
    return value


def redact_secrets(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask secret-looking keys and values anywhere in the event."""
    for key in list(event):
        if key == "event":
            event[key] = _scrub_value(event[key])
        elif isinstance(event[key], str) and _SECRET_KEYS.search(key):
            event[key] = "***"
        else:
            event[key] = _scrub_value(event[key])
    return event


class _Stderr:
    """Whatever ``sys.stderr`` is when a line is written, not when logging was configured (a
    host program or test runner may swap it; a stale one may be closed by then)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "INFO", *, json: bool | None = None, stream: Any = None) -> None:
    """Configure structlog once per process (idempotent unless called with new arguments)."""
    if json is None:
        probe = stream or sys.stderr
        json = not (hasattr(probe, "isatty") and probe.isatty())
    stream = stream or _Stderr()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            # ``log.exception`` -> an ``exception`` field with the traceback text, rendered
            # before the redaction so secrets in exception messages are masked too.
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
