"""The delayed upstream: the same canned answers, each part sent ``--delay`` seconds apart.

nginx sends a body in one go, so it cannot show whether a gateway relays chunks as they come.
This asyncio server (HTTP/1.1 keep-alive, chunked transfer encoding, no signature checks, as
nginx) flushes part 0 at once and every later part after the delay. Run:
``python -m harness.slowup --port P --delay 0.2`` from ``bench/``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
from urllib.parse import unquote

from .canned import Canned, upstream_routes
from .tinyhttp import Request, serve_forever


def _match(path: str, table: list[tuple[re.Pattern[str], Canned]]) -> Canned | None:
    decoded = unquote(path.split("?", 1)[0])
    return next((c for pattern, c in table if pattern.search(decoded)), None)


async def _answer(
    request: Request,
    writer: asyncio.StreamWriter,
    table: list[tuple[re.Pattern[str], Canned]],
    delay: float,
) -> None:
    canned = _match(request.path, table)
    if canned is None:
        writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        return
    extra = "".join(f"{k}: {v}\r\n" for k, v in canned.headers)
    writer.write(
        f"HTTP/1.1 200 OK\r\ncontent-type: {canned.content_type}\r\n{extra}"
        "transfer-encoding: chunked\r\n\r\n".encode()
    )
    for index, part in enumerate(canned.parts):
        if index:
            await asyncio.sleep(delay)
        writer.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        await writer.drain()
    writer.write(b"0\r\n\r\n")
    await writer.drain()


async def main(port: int, delay: float) -> None:
    table = [(re.compile(r.pattern), r.canned) for r in upstream_routes()]
    await serve_forever(port, lambda request, writer: _answer(request, writer, table, delay))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.2)
    args = parser.parse_args()
    asyncio.run(main(args.port, args.delay))
