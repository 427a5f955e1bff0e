"""Reading a request body from ASGI ``receive``: counted as it arrives, bounded in size and time.

Every route that reads a body uses ``read_body`` (plugins too), so the size limit holds whatever
the framing (``Content-Length`` or chunked, HTTP/1.1 or HTTP/2) and a client that trickles its
body cannot hold a worker's memory or a socket past ``timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Iterable
from typing import Any

from starlette.types import Receive

from .errors import OutcropError


class ClientDisconnected(Exception):
    """The client went away before its request body was complete."""


def body_too_large(limit: int) -> OutcropError:
    """413 in either dialect (OpenAI ``request_too_large``, AWS ``ValidationException``)."""
    return OutcropError(
        f"request body larger than {limit} bytes (general_settings.max_request_bytes)",
        413,
        code="request_too_large",
        aws_type="ValidationException",
    )


def body_timed_out(timeout: float) -> OutcropError:
    """408 in either dialect (OpenAI ``request_timeout``, AWS ``RequestTimeoutException``)."""
    return OutcropError(
        f"request body not received within {timeout:g} seconds (general_settings.body_timeout)",
        408,
        code="request_timeout",
        aws_type="RequestTimeoutException",
        headers={"connection": "close"},
    )


def declared_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """The ``Content-Length`` a client declared, or ``None`` (absent, chunked or not a number)."""
    for name, value in headers:
        if name.lower() == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class _Expiry:
    """Coarse deadlines for body reads on one event loop: at most one timer per second, however
    many bodies are being read (a timer per request costs more than the rest of reading a body).
    A read whose second has passed is cancelled with ``_EXPIRED`` as the message."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.buckets: dict[int, set[asyncio.Task[Any]]] = {}

    def add(self, task: asyncio.Task[Any], timeout: float) -> int:
        second = math.ceil(self.loop.time() + timeout)
        bucket = self.buckets.get(second)
        if bucket is None:
            bucket = self.buckets[second] = set()
            self.loop.call_at(second, self._fire, second)
        bucket.add(task)
        return second

    def discard(self, task: asyncio.Task[Any], second: int) -> None:
        bucket = self.buckets.get(second)
        if bucket is not None:
            bucket.discard(task)

    def _fire(self, second: int) -> None:
        for task in self.buckets.pop(second, ()):
            task.cancel(_EXPIRED)


_EXPIRED = "outcrop: request body timeout"
_expiries: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Expiry] = (
    weakref.WeakKeyDictionary()
)


def _expiry() -> _Expiry:
    loop = asyncio.get_running_loop()
    found = _expiries.get(loop)
    if found is None:
        found = _expiries[loop] = _Expiry(loop)
    return found


async def read_body(
    receive: Receive,
    *,
    limit: int,
    timeout: float,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> bytes:
    """The whole request body, or an ``OutcropError``: 413 once more than ``limit`` bytes were
    declared or received, 408 when it is not complete ``timeout`` seconds after the call (to
    within a second). Raises ``ClientDisconnected`` if the client leaves first.

    ``headers`` (the ASGI scope's) lets a declared oversized ``Content-Length`` fail before a
    byte is read; without them the count alone decides.
    """
    declared = declared_length(headers)
    if declared is not None and declared > limit:
        raise body_too_large(limit)
    task = asyncio.current_task()
    assert task is not None
    expiry = _expiry()
    second = expiry.add(task, timeout)
    parts: list[bytes] = []
    size = 0
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise body_too_large(limit)
                parts.append(chunk)
            if not message.get("more_body", False):
                return parts[0] if len(parts) == 1 else b"".join(parts)
    except asyncio.CancelledError as exc:
        if exc.args == (_EXPIRED,) and task.uncancel() == 0:
            raise body_timed_out(timeout) from None
        raise
    finally:
        expiry.discard(task, second)
