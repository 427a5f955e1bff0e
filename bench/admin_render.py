"""How long the admin page takes to answer, server-side, over 10,000 spend rows.

    python bench/admin_render.py [--rows 10000] [--repeat 30] [--database-url URL]

Builds a gateway in-process (master key, keys in a throw-away SQLite file unless
``--database-url``), writes ``--rows`` spend rows over the last 30 days, signs in, then times
each page through the ASGI app (no network, no browser): the calls list (a page of 50, of 1000,
and the last page), one call's details, spend (charts and tables over the 30 days), the spend
CSV and the keys list. Prints the median and the 95th percentile in milliseconds.

A benchmark, not a test: pytest never collects it. The goal: a page of the calls list over
10,000 rows in under 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from outcrop.app import create_app
from outcrop_keys import store
from outcrop_keys.plugin import service_for

MASTER = "sk-bench-master-key-0123456789"


def spend_rows(n: int, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        key = keys[i % len(keys)]
        start = now - timedelta(seconds=30 * 86400 * i / n)
        failed = i % 23 == 0
        out.append(
            {
                "request_id": f"bench-{i:06d}",
                "start_time": start,
                "end_time": start + timedelta(milliseconds=350),
                "api_key": key["token"],
                "key_alias": key["key_alias"],
                "auth": "virtual_key",
                "team_id": None,
                "model": ("nova", "claude", "llama")[i % 3],
                "deployment": ("nova#0", "claude#1", "llama#2")[i % 3],
                "provider_model": "amazon.nova-lite-v1:0",
                "surface": "chat",
                "path": "/v1/chat/completions",
                "status": 502 if failed else 200,
                "stream": bool(i % 2),
                "prompt_tokens": 120,
                "completion_tokens": 80,
                "total_tokens": 200,
                "cache_read_tokens": None,
                "cache_write_tokens": None,
                "spend": 0.0 if failed else 0.00042,
                "latency_ms": 350.0,
                "client_ip": "127.0.0.1",
                "user_agent": "bench",
                "error": "InternalServerException: upstream broke" if failed else None,
                "messages": None,
                "response": None,
            }
        )
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='outcrop-bench-')}/bench.db"
    app = create_app({"general_settings": {"master_key": MASTER, "database_url": url}})
    gateway = app.state.gateway
    await gateway.start()
    try:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")
        keys = []
        for n in range(5):
            r = await client.post(
                "/key/generate",
                json={"key_alias": f"bench-{n}"},
                headers={"authorization": f"Bearer {MASTER}"},
            )
            keys.append(r.json())
        service = service_for(gateway)
        assert service is not None and service.engine is not None
        rows = spend_rows(args.rows, keys)
        for at in range(0, len(rows), 1000):
            store.write_spend(service.engine, rows[at : at + 1000])
        form = await client.get("/ui/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        signed = await client.post("/ui/login", data={"key": MASTER, "csrf": csrf})
        assert signed.status_code == 303, signed.text
        last = (args.rows + 49) // 50
        pages = {
            "calls, page 1 of 50 rows": "/ui/calls",
            f"calls, page {last} (the last) of 50 rows": f"/ui/calls?page={last}",
            "calls, page 1 of 1000 rows": "/ui/calls?size=1000",
            "calls filtered (key, status=error)": "/ui/calls?key=bench-3&status=error",
            "one call's details": "/ui/calls/5000",
            "spend, 30 days (4 charts, tables)": "/ui/spend",
            "spend CSV by day": "/ui/spend.csv?by=day",
            "keys list": "/ui/keys",
        }
        print(f"{args.rows} spend rows, {args.repeat} runs each, in-process (ASGI, no network)")
        print(f"{'page':42} {'median ms':>10} {'p95 ms':>8} {'bytes':>9}")
        for name, path in pages.items():
            times = []
            size = 0
            await client.get(path)  # warm-up: templates compile on first use
            for _ in range(args.repeat):
                started = time.perf_counter()
                r = await client.get(path)
                times.append((time.perf_counter() - started) * 1000)
                assert r.status_code == 200, (path, r.status_code, r.text[:500])
                size = len(r.content)
            times.sort()
            p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
            print(f"{name:42} {statistics.median(times):10.1f} {p95:8.1f} {size:9}")
        await client.aclose()
    finally:
        await gateway.stop()


if __name__ == "__main__":
    asyncio.run(main())
