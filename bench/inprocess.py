"""In-process micro-benchmark of the gateway's own work per call: CPU seconds per request.

    python bench/inprocess.py [--requests 3000] [--repeats 5] [--callbacks prometheus,otel]

The app is driven directly through ASGI (no HTTP server, no client) on one event loop; the
upstream is a canned aiohttp server in a child process, so its CPU is not counted. The figure is
this process's CPU time (``time.process_time``) per request, the median of ``--repeats`` runs:
it moves far less with other load on the machine than wall-clock latency does, which makes it
the number to compare before and after a change of the core's call path when the machine is not
quiet enough for ``bench/run.py``. ``--callbacks`` turns on LiteLLM-style callbacks (the
observability plugins: ``prometheus``, ``otel``; the canned upstream also takes the OTLP export,
whose batch thread's CPU counts too). Not a test: pytest never collects it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import canned

PROMPT = "Summarise the quarter in two sentences."
KEY_ID, SECRET = "AKIDEXAMPLEBENCH0001", "bench-secret-key-0001"


def _serve_upstream(port: int) -> None:
    from aiohttp import web

    answers = {
        f"/agents/{canned.AGENT_ID}/agentAliases/{canned.ALIAS_ID}": canned.invoke_agent(),
        "/model/": canned.converse(),
    }

    async def handle(request: web.Request) -> web.StreamResponse:
        await request.read()
        if request.path == "/v1/traces":  # OTLP/HTTP export of --callbacks otel
            return web.Response(content_type="application/x-protobuf")
        for prefix, answer in answers.items():
            if request.path.startswith(prefix):
                return web.Response(body=b"".join(answer.parts), headers=dict(answer.headers))
        return web.Response(status=404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(upstream: str, callbacks: list[str]) -> dict:
    creds = {
        "aws_region_name": "us-west-2",
        "aws_access_key_id": KEY_ID,
        "aws_secret_access_key": SECRET,
        "api_base": upstream,
    }
    return {
        "model_list": [
            {
                "model_name": "bench-agent",
                "litellm_params": {
                    "model": f"bedrock/agent/{canned.AGENT_ID}/{canned.ALIAS_ID}",
                    **creds,
                },
            },
            {
                "model_name": "bench-converse",
                "litellm_params": {"model": f"bedrock/{canned.MODEL_ID}", **creds},
            },
        ],
        "general_settings": {"master_key": "sk-bench"},
        "bedrock_passthrough": {**creds},
        **({"litellm_settings": {"callbacks": callbacks}} if callbacks else {}),
    }


SURFACES = {
    "agent": (
        "/v1/chat/completions",
        json.dumps(
            {"model": "bench-agent", "messages": [{"role": "user", "content": PROMPT}]}
        ).encode(),
    ),
    "agent_stream": (
        "/v1/chat/completions",
        json.dumps(
            {
                "model": "bench-agent",
                "stream": True,
                "messages": [{"role": "user", "content": PROMPT}],
            }
        ).encode(),
    ),
    "converse": (
        "/bedrock/model/bench-converse/converse",
        json.dumps({"messages": [{"role": "user", "content": [{"text": PROMPT}]}]}).encode(),
    ),
}


async def _one(app, path: str, body: bytes) -> int:
    sent = False
    status = 0

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never leaves
        return {"type": "http.disconnect"}

    async def send(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    headers = [
        (b"host", b"bench"),
        (b"content-type", b"application/json"),
        (b"authorization", b"Bearer sk-bench"),
        (b"content-length", str(len(body)).encode()),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 4000),
        "state": {},
    }
    await app(scope, receive, send)
    return status


async def _run(args: argparse.Namespace, upstream: str) -> dict:
    from outcrop.app import create_app
    from outcrop.logs import configure_logging

    configure_logging("WARNING")
    callbacks = [c for c in args.callbacks.split(",") if c]
    if "otel" in callbacks:
        os.environ.setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", upstream)
    app = create_app(_config(upstream, callbacks))
    await app.state.gateway.start()
    results = {}
    for name in args.surfaces.split(","):
        path, body = SURFACES[name]
        for _ in range(200):  # warm-up: pools, caches
            assert await _one(app, path, body) == 200
        cpu, wall = [], []
        for _ in range(args.repeats):
            c0, w0 = time.process_time(), time.perf_counter()
            for _ in range(args.requests):
                await _one(app, path, body)
            cpu.append((time.process_time() - c0) / args.requests * 1e6)
            wall.append((time.perf_counter() - w0) / args.requests * 1e6)
        results[name] = {
            "cpu_us": round(statistics.median(cpu), 1),
            "cpu_us_min": round(min(cpu), 1),
            "wall_us": round(statistics.median(wall), 1),
        }
        print(
            f"{name:14s} cpu/request median {results[name]['cpu_us']:7.1f} us "
            f"(min {results[name]['cpu_us_min']:.1f}), wall {results[name]['wall_us']:.1f} us",
            flush=True,
        )
    await app.state.gateway.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {rss:.1f} MiB", flush=True)
    return results


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--surfaces", default="agent,agent_stream,converse")
    p.add_argument("--callbacks", default="", help="e.g. prometheus,otel")
    args = p.parse_args()
    port = _free_port()
    upstream = multiprocessing.Process(target=_serve_upstream, args=(port,), daemon=True)
    upstream.start()
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        with open("/proc/loadavg") as f:
            print("load average at start:", f.read().split()[:3])
        asyncio.run(_run(args, f"http://127.0.0.1:{port}"))
    finally:
        upstream.terminate()


if __name__ == "__main__":
    main()
