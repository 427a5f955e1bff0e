"""A lean streaming response for SSE: raw ASGI, one ``send`` per frame as soon as it exists.

Starlette's ``StreamingResponse`` runs an anyio task group per response to watch for the client
leaving; on the hot stream path that costs more than the rest of the gateway's per-chunk work.
Here one plain asyncio task watches ``receive`` and cancels the streaming task when the client
disconnects, which closes the frame generator (and with it the upstream call).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

from starlette.types import Receive, Scope, Send


class SSEResponse:
    def __init__(self, frames: AsyncIterator[bytes], headers: Mapping[str, str], status: int = 200) -> None:
        self.frames = frames
        self.status = status
        self.raw_headers = [(b"content-type", b"text/event-stream; charset=utf-8")] + [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
        ]
        self.disconnected = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        assert task is not None
        watcher = asyncio.get_running_loop().create_task(self._watch(receive, task))
        try:
            await send({"type": "http.response.start", "status": self.status, "headers": self.raw_headers})
            async for frame in self.frames:
                await send({"type": "http.response.body", "body": frame, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not self.disconnected:
                raise  # a real cancellation (shutdown): let it through
            task.uncancel()  # the client left: nothing more to send, not an error
        finally:
            watcher.cancel()
            close = getattr(self.frames, "aclose", None)
            if close is not None:
                await close()

    async def _watch(self, receive: Receive, task: asyncio.Task[object]) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                task.cancel()
                return
