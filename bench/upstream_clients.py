"""Which async HTTP client for the upstream calls? Measures aiohttp vs httpx on this machine.

Run: python bench/upstream_clients.py  — a local aiohttp server answers a small JSON body;
each client sends N POSTs at concurrency C through one pooled client, on one event loop. The
figure that matters is client CPU per request (the gateway's hot path), reported as req/s.
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


async def run_aiohttp(url: str) -> float:
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000)) as s:

        async def one() -> None:
            async with s.post(
                url, data=b'{"messages":[]}', headers={"Content-Type": "application/json"}
            ) as r:
                await r.read()

        return await _drive(one)


async def run_httpx(url: str) -> float:
    import httpx

    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=1000)) as c:

        async def one() -> None:
            r = await c.post(
                url, content=b'{"messages":[]}', headers={"Content-Type": "application/json"}
            )
            await r.aread()

        return await _drive(one)


async def _drive(one) -> float:
    for _ in range(200):
        await one()
    sem = asyncio.Semaphore(C)

    async def guarded() -> None:
        async with sem:
            await one()

    t0 = time.perf_counter()
    await asyncio.gather(*(guarded() for _ in range(N)))
    return N / (time.perf_counter() - t0)


def main() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = Process(target=serve, args=(port,), daemon=True)
    server.start()
    time.sleep(1.0)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    url = f"http://127.0.0.1:{port}/model/x/converse"
    results = {}
    for name, fn in (("aiohttp", run_aiohttp), ("httpx", run_httpx)) * 2:
        rps = asyncio.run(fn(url))
        results.setdefault(name, []).append(round(rps))
        print(f"{name:8} {rps:8.0f} req/s (N={N}, C={C})", file=sys.stderr)
    server.terminate()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
