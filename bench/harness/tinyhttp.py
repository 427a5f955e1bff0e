"""The HTTP/1.1 keep-alive loop the bench's small asyncio servers share (the OTLP sink, the
delayed upstream): read one request, let the server answer it, repeat until the client leaves."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import NamedTuple


class Request(NamedTuple):
    method: str
    path: str
    body: bytes


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """The next request on the connection (its body read whole), ``None`` once the client left."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path = lines[0].split()[:2]
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return Request(method, path, body)


Answer = Callable[[Request, asyncio.StreamWriter], Awaitable[None]]


async def serve_forever(port: int, answer: Answer) -> None:
    """Serve on 127.0.0.1:``port``: ``answer(request, writer)`` writes each response."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (request := await read_request(reader)) is not None:
                await answer(request, writer)
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()
