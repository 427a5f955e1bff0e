"""``30s``, ``15m``, ``1h``, ``1d``, ``30d`` (LiteLLM's forms) and the budget reset time."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "mo": 30 * 86400}
_FORM = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w|mo)\s*$")


def parse_duration(text: str, field: str) -> timedelta:
    """Raise ``ValueError`` naming ``field`` for anything but ``<n>s|m|h|d|w|mo``."""
    found = _FORM.match(str(text))
    if not found or int(found.group(1)) <= 0:
        raise ValueError(f"{field}: expected a duration such as 30s, 1h, 1d or 30d, got {text!r}")
    return timedelta(seconds=int(found.group(1)) * _UNITS[found.group(2)])


def now() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes: every stored time is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def next_reset(duration: str | None, after: datetime | None = None) -> datetime | None:
    if not duration:
        return None
    return (after or now()) + parse_duration(duration, "budget_duration")
