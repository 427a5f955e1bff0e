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

from .tinyhttp import Request, serve_forever


class Counts:
    requests = 0
    bytes = 0


async def _answer(request: Request, writer: asyncio.StreamWriter) -> None:
    if request.method == "GET":
        body = json.dumps({"requests": Counts.requests, "bytes": Counts.bytes}).encode()
        kind = "application/json"
    else:
        Counts.requests += 1
        Counts.bytes += len(request.body)
        body, kind = b"", "application/x-protobuf"
    writer.write(
        f"HTTP/1.1 200 OK\r\ncontent-type: {kind}\r\ncontent-length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(serve_forever(parser.parse_args().port, _answer))
