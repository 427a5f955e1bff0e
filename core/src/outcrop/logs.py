"""Logging with structlog: JSON lines when stderr is not a terminal, readable console otherwise.

A processor removes secrets (AWS keys, master key, Authorization values) from every event, so a
careless ``log.info(..., headers=...)`` cannot leak them.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from functools import lru_cache
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


#: Values that cannot hold a secret: returned as they are without further checks.
_PLAIN = frozenset({int, float, bool, type(None)})


def _mask(match: re.Match[str]) -> str:
    return (match.group(1) or match.group(2) or "") + "***"


@lru_cache(maxsize=1024)
def _secret_key(key: str) -> bool:
    """Whether a field name marks its value as a secret (names come from code: few, cached)."""
    return _SECRET_KEYS.search(key) is not None


def _scrub_text(text: str) -> str:
    # Every text ``_SECRET_VALUES`` matches holds one of these words: a text without them
    # (nearly every one) skips the regex.
    if (
        "Bearer" in text
        or "AWS4-HMAC-SHA256" in text
        or "AKIA" in text
        or "ASIA" in text
        or "AKID" in text
    ):
        return _SECRET_VALUES.sub(_mask, text)
    return text


def _scrub_value(value: Any) -> Any:
    if type(value) in _PLAIN:
        return value
    if isinstance(value, str):
        return _scrub_text(value)
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
    for key, value in event.items():
        if type(value) in _PLAIN:
            continue
        if isinstance(value, str):
            event[key] = "***" if key != "event" and _secret_key(key) else _scrub_text(value)
        else:
            event[key] = _scrub_value(value)
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
