"""A minimal server-sent-events reader over upstream lines: one event per blank line."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from outcrop import OutcropError


@dataclass(slots=True)
class SseEvent:
    """``name`` is the ``event:`` field (empty for the default ``message``); ``data`` the joined
    ``data:`` lines, still bytes so JSON is decoded straight from them."""

    name: str
    data: bytes


async def iter_sse(lines: AsyncIterator[bytes]) -> AsyncIterator[SseEvent]:
    """Yield each event the moment its terminating blank line arrives.

    A body that ends with an event still open (``data:`` without its blank line) was cut short:
    that is a 502, never a last event taken as complete.
    """
    data: list[bytes] = []
    name = b""
    async for line in lines:
        if not line:
            if data:
                yield SseEvent(name.decode("utf-8", "replace"), b"\n".join(data))
            data, name = [], b""
            continue
        if line[:1] == b":":  # comment / keep-alive
            continue
        field, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if field == b"data":
            data.append(value)
        elif field == b"event":
            name = value
        # ``id`` and ``retry`` mean nothing for a one-shot invocation
    if data:
        raise OutcropError(
            "the agent runtime's event stream ended in the middle of an event "
            "(no blank line after its data): the answer was cut short",
            502,
            code="truncated_upstream_stream",
            aws_type="RuntimeClientError",
        )
