"""A lean SSE answer: raw ASGI, one ``send`` per frame as soon as it exists.

Starlette's ``StreamingResponse`` runs an anyio task group per response to watch for the client
leaving; on the hot stream path that costs more than the rest of the gateway's per-chunk work.
Here the call's lifecycle has the one watcher (see ``lifecycle.CallLifecycle.watch``): a client
that leaves cancels the task, which closes the frame generator and with it the upstream call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from .headers import raw_headers

_CONTENT_TYPE = (b"content-type", b"text/event-stream; charset=utf-8")


async def send_sse(
    send: Callable[[dict[str, Any]], Awaitable[None]],
    frames: AsyncIterator[bytes],
    headers: Mapping[str, str],
    status: int = 200,
) -> None:
    raw = [_CONTENT_TYPE, *raw_headers(headers)]
    try:
        await send({"type": "http.response.start", "status": status, "headers": raw})
        async for frame in frames:
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        close = getattr(frames, "aclose", None)
        if close is not None:
            await close()
