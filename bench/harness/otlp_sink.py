"""An OTLP/HTTP collector that accepts and discards: where the features-on gateway exports spans.

It answers every ``POST`` (``/v1/traces``) with 200 and an empty ``ExportTraceServiceResponse``
(zero protobuf bytes), counting requests and body bytes so the run can prove spans were really
exported; ``GET /stats`` returns the counts as JSON. HTTP/1.1 keep-alive, pinned to the load
core like nginx. Run: ``python -m harness.otlp_sink --port P`` from ``bench/``.
"""

from __future__ import annotations

import argparse
import asyncio
import json


class Counts:
    requests = 0
    bytes = 0


async def _serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return False
    lines = head.decode("latin-1").split("\r\n")
    method = lines[0].split()[0]
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    if method == "GET":
        body = json.dumps({"requests": Counts.requests, "bytes": Counts.bytes}).encode()
        kind = "application/json"
    else:
        Counts.requests += 1
        Counts.bytes += length
        body, kind = b"", "application/x-protobuf"
    writer.write(
        f"HTTP/1.1 200 OK\r\ncontent-type: {kind}\r\ncontent-length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    return True


async def main(port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await _serve_one(reader, writer):
                pass
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(main(parser.parse_args().port))
