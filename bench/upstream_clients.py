"""Which async HTTP client for the upstream calls? Measures Outcrop's own client
(``outcrop.upstream.UpstreamClient``) against aiohttp and httpx on this machine, and its
response parser (pure Python) against httptools' C parser.

Run: python bench/upstream_clients.py  — a local aiohttp server (pinned to core 1) answers a
small JSON body; each client sends N POSTs at concurrency C through one pooled client, on one
event loop (core 0). The figure that matters is the client's CPU per request (the gateway's hot
path): ``time.process_time`` over the N requests, in microseconds, with req/s beside it. Each
client runs twice, in turns. Then the parsers: microseconds to frame one typical Converse answer
(head with AWS's headers and a JSON body) and one streamed answer (chunked, 8 events), the
median of 5 timeit runs. httptools is measured only when installed (``outcrop[uvicorn]``).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
from multiprocessing import Process

N = int(os.environ.get("N", "4000"))
C = int(os.environ.get("C", "32"))
BODY = json.dumps(
    {
        "output": {"message": {"role": "assistant", "content": [{"text": "hi" * 50}]}},
        "usage": {"inputTokens": 5, "outputTokens": 50},
    }
).encode()


def serve(port: int) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {1})
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=BODY, content_type="application/json")

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def run_outcrop(url: str) -> tuple[float, float]:
    from outcrop.upstream import UpstreamClient, UpstreamRequest

    client = UpstreamClient()

    async def one() -> None:
        r = await client.send(
            UpstreamRequest("POST", url, {"Content-Type": "application/json"}, b'{"messages":[]}')
        )
        await r.read()
        r.close()

    try:
        return await _drive(one)
    finally:
        await client.close()


async def run_aiohttp(url: str) -> tuple[float, float]:
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000)) as s:

        async def one() -> None:
            async with s.post(
                url, data=b'{"messages":[]}', headers={"Content-Type": "application/json"}
            ) as r:
                await r.read()

        return await _drive(one)


async def run_httpx(url: str) -> tuple[float, float]:
    import httpx

    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=1000)) as c:

        async def one() -> None:
            r = await c.post(
                url, content=b'{"messages":[]}', headers={"Content-Type": "application/json"}
            )
            await r.aread()

        return await _drive(one)


async def _drive(one) -> tuple[float, float]:
    """(req/s, client CPU microseconds per request) over N requests at concurrency C."""
    for _ in range(200):
        await one()
    sem = asyncio.Semaphore(C)

    async def guarded() -> None:
        async with sem:
            await one()

    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(guarded() for _ in range(N)))
    return N / (time.perf_counter() - t0), (time.process_time() - c0) / N * 1e6


#: A Converse answer as AWS sends it (head and JSON body), and a streamed one (chunked).
CONVERSE_ANSWER = (
    b"HTTP/1.1 200 OK\r\nDate: Tue, 01 Dec 2026 03:00:00 GMT\r\n"
    b"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: keep-alive\r\n"
    b"x-amzn-RequestId: 6f1c1a52-3d4e-4f7a-9b1c-2d3e4f5a6b7c\r\n\r\n" % len(BODY)
) + BODY
STREAM_ANSWER = (
    b"HTTP/1.1 200 OK\r\nDate: Tue, 01 Dec 2026 03:00:00 GMT\r\n"
    b"Content-Type: application/vnd.amazon.eventstream\r\nTransfer-Encoding: chunked\r\n"
    b"Connection: keep-alive\r\nx-amzn-RequestId: 6f1c1a52-3d4e-4f7a-9b1c-2d3e4f5a6b7c\r\n\r\n"
    + b"".join(b"%x\r\n" % 120 + b"e" * 120 + b"\r\n" for _ in range(8))
    + b"0\r\n\r\n"
)


def parse_outcrop(answer: bytes) -> None:
    from outcrop.upstream_http1 import Connection

    conn = Connection(("http", "h", 80), None, print)  # type: ignore[arg-type]  # no loop needed
    conn._feed(answer)
    assert conn.done


def parse_httptools(answer: bytes) -> None:
    import httptools

    class Collect:
        __slots__ = ("body", "done", "headers")

        def __init__(self) -> None:
            self.headers: list[tuple[bytes, bytes]] = []
            self.body: list[bytes] = []
            self.done = False

        def on_header(self, name: bytes, value: bytes) -> None:
            self.headers.append((name, value))

        def on_body(self, body: bytes) -> None:
            self.body.append(body)

        def on_message_complete(self) -> None:
            self.done = True

    sink = Collect()
    parser = httptools.HttpResponseParser(sink)
    parser.feed_data(answer)
    parser.get_status_code()
    assert sink.done


def parsers() -> dict[str, dict[str, float]]:
    import statistics
    import timeit

    out: dict[str, dict[str, float]] = {}
    candidates = [("outcrop", parse_outcrop)]
    try:
        import httptools  # noqa: F401

        candidates.append(("httptools", parse_httptools))
    except ImportError:
        print("httptools not installed: its parser is not measured", file=sys.stderr)
    for name, parse in candidates:
        for shape, answer in (("converse", CONVERSE_ANSWER), ("stream", STREAM_ANSWER)):
            runs = timeit.repeat(  # CPU time: wall time moves with the machine's load
                lambda: parse(answer),  # noqa: B023
                number=20000,
                repeat=5,
                timer=time.process_time,
            )
            us = statistics.median(runs) / 20000 * 1e6
            out.setdefault(name, {})[shape] = round(us, 2)
            print(f"parse {name:10} {shape:9} {us:6.2f} us", file=sys.stderr)
    return out


def main() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = Process(target=serve, args=(port,), daemon=True)
    server.start()
    deadline = time.time() + 30
    while time.time() < deadline:  # until the server accepts
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    url = f"http://127.0.0.1:{port}/model/x/converse"
    results: dict[str, dict] = {}
    clients = (("outcrop", run_outcrop), ("aiohttp", run_aiohttp), ("httpx", run_httpx))
    for name, fn in clients * 2:
        try:
            rps, cpu_us = asyncio.run(fn(url))
        except ImportError as exc:
            print(f"{name:8} not installed ({exc})", file=sys.stderr)
            continue
        entry = results.setdefault(name, {"req_s": [], "cpu_us": []})
        entry["req_s"].append(round(rps))
        entry["cpu_us"].append(round(cpu_us, 1))
        print(
            f"{name:8} {rps:8.0f} req/s {cpu_us:7.1f} us CPU/request (N={N}, C={C})",
            file=sys.stderr,
        )
    server.terminate()
    results["parse_us"] = parsers()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
