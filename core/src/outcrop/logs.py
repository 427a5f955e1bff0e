"""Logging with structlog: JSON lines when stderr is not a terminal, readable console otherwise.

A processor removes secrets (AWS keys, master key, Authorization values) from every event, so a
careless ``log.info(..., headers=...)`` cannot leak them.
"""

from __future__ import annotations

import json as _json
import logging
import re
import sys
import time
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
    # (Four of them hold an "A": one test rules them out for most texts.)
    if "Bearer" in text or (
        "A" in text
        and ("AWS4-HMAC-SHA256" in text or "AKIA" in text or "ASIA" in text or "AKID" in text)
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
        kind = type(value)
        if kind is str or (kind not in _PLAIN and isinstance(value, str)):
            # most fields: written back only when something was masked
            if key != "event" and _secret_key(key):
                event[key] = "***"
            else:
                scrubbed = _scrub_text(value)
                if scrubbed is not value:
                    event[key] = scrubbed
        elif kind not in _PLAIN:
            event[key] = _scrub_value(value)
    return event


#: The last second ``add_timestamp`` formatted, and its text.
_second: tuple[int, str] = (-1, "")


def iso_utc(ns: int) -> str:
    """``ns`` (nanoseconds since the epoch) as structlog's ``TimeStamper(fmt="iso", utc=True)``
    writes it: ``datetime.now(timezone.utc).isoformat()`` with ``Z`` (microseconds rounded
    down, as ``datetime.now`` does, and left out when zero). The date and time of day are
    formatted once per second."""
    global _second
    second, micros = divmod(ns // 1000, 1_000_000)
    if _second[0] != second:
        _second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{_second[1]}.{micros:06d}Z" if micros else _second[1] + "Z"


def add_timestamp(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: the ``timestamp`` field (see ``iso_utc``)."""
    event["timestamp"] = iso_utc(time.time_ns())
    return event


class _Dumps:
    """``json.dumps(obj, default=default)`` with one encoder kept (``json.dumps`` builds one per
    call when given ``default``, as structlog's ``JSONRenderer`` always does): the same text."""

    __slots__ = ("_default", "_encode")

    def __init__(self) -> None:
        self._default: Any = None
        self._encode: Any = None

    def __call__(self, obj: Any, *, default: Any) -> str:
        if default is not self._default:
            self._encode = _json.JSONEncoder(default=default).encode
            self._default = default
        return self._encode(obj)  # type: ignore[no-any-return]


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
        structlog.processors.JSONRenderer(serializer=_Dumps())
        if json
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            add_timestamp,  # structlog's TimeStamper(fmt="iso", utc=True), cheaper
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


class _Logger:
    """``get_logger``'s answer: structlog's logger for ``name``, assembled once per structlog
    configuration. structlog's own lazy proxy (``cache_logger_on_first_use=False``, so that a
    later ``configure`` still applies) assembles a new bound logger and a new output logger on
    every call: a sixth of an access log line. This one assembles again only when
    ``structlog.configure`` changed the processors, wrapper, context class or logger factory."""

    __slots__ = ("_bound", "_config", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._config: tuple[Any, ...] = ()
        self._bound: Any = None

    def _logger(self) -> Any:
        config = structlog.get_config()
        now = (
            config["processors"],
            config["wrapper_class"],
            config["logger_factory"],
            config["context_class"],
        )
        if len(now) != len(self._config) or any(
            a is not b for a, b in zip(now, self._config, strict=True)
        ):
            self._bound = structlog.get_logger(self._name).bind()
            self._config = now
        return self._bound

    def __getattr__(self, name: str) -> Any:
        return getattr(self._logger(), name)


def get_logger(name: str) -> Any:
    return _Logger(name)
