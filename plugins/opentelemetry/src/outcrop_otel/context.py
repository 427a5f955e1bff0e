"""W3C trace context: reading the client's ``traceparent`` and writing the upstream one."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


@dataclass(frozen=True, slots=True)
class Parent:
    """The client's span: the call's span becomes its child."""

    trace_id: int
    span_id: int
    flags: int
    tracestate: str | None = None
    baggage: str | None = None


def parent_of(headers: Sequence[tuple[bytes, bytes]]) -> Parent | None:
    """The client's trace context from its request headers, or ``None`` (absent, malformed, or
    the all-zero ids the spec says to ignore)."""
    traceparent = tracestate = baggage = None
    for name, value in headers:
        if name == b"traceparent":
            traceparent = value.decode("latin-1").strip().lower()
        elif name == b"tracestate":
            tracestate = value.decode("latin-1")
        elif name == b"baggage":
            baggage = value.decode("latin-1")
    if traceparent is None:
        return None
    m = _TRACEPARENT.match(traceparent)
    if m is None or m.group(1) == "ff":
        return None
    trace_id, span_id = int(m.group(2), 16), int(m.group(3), 16)
    if not trace_id or not span_id:
        return None
    return Parent(trace_id, span_id, int(m.group(4), 16), tracestate, baggage)


def traceparent(trace_id: int, span_id: int, flags: int) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-{flags & 0xFF:02x}"
