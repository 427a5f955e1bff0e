"""In-process micro-benchmark of the gateway's own work per call: CPU seconds per request.

    python bench/inprocess.py [--requests 3000] [--repeats 5] [--callbacks prometheus,otel]
                              [--key master|virtual|limited|limited-redis] [--no-plugins]

The app is driven directly through ASGI (no HTTP server, no client) on one event loop; the
upstream is a canned aiohttp server in a child process, so its CPU is not counted. The figure is
this process's CPU time (``time.process_time``) per request, the median of ``--repeats`` runs:
it moves far less with other load on the machine than wall-clock latency does, which makes it
the number to compare before and after a change of the core's call path when the machine is not
quiet enough for ``bench/run.py``. ``--callbacks`` turns on LiteLLM-style callbacks (the
observability plugins: ``prometheus``, ``otel``; the canned upstream also takes the OTLP export,
whose batch thread's CPU counts too). ``--key`` picks the caller: the master key (default), a
virtual key without limits (``virtual``: a SQLite key store in a temporary directory, spend rows
written in batches), a virtual key with ``rpm_limit`` and ``tpm_limit`` on in-process counters
(``limited``) or on Redis (``limited-redis``, ``REDIS_URL`` or 127.0.0.1:6379/15); the limits
are high enough never to refuse. ``--no-plugins`` blocks every plugin that is not needed to serve
the surfaces (keys, admin, anthropic_messages, prometheus, otel), so the cost of the installed
but unused ones is the difference with the default. Not a test: pytest never collects it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import resource
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import canned

PROMPT = "Summarise the quarter in two sentences."
KEY_ID, SECRET = "AKIDEXAMPLEBENCH0001", "bench-secret-key-0001"


def _serve_upstream(port: int) -> None:
    import re

    from aiohttp import web

    routes = [(re.compile(r.pattern), r.canned) for r in canned.upstream_routes()]

    async def handle(request: web.Request) -> web.StreamResponse:
        await request.read()
        if request.path == "/v1/traces":  # OTLP/HTTP export of --callbacks otel
            return web.Response(content_type="application/x-protobuf")
        for pattern, answer in routes:
            if pattern.match(request.raw_path.split("?", 1)[0]):
                return web.Response(
                    body=answer.body,
                    headers={**dict(answer.headers), "content-type": answer.content_type},
                )
        return web.Response(status=404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def canned_upstream() -> Iterator[str]:
    """The canned upstream in a process of its own, once it accepts: its base URL (the machine's
    load average at start is printed, for reading the figures)."""
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
        yield f"http://127.0.0.1:{port}"
    finally:
        upstream.terminate()


def _config(upstream: str, callbacks: list[str], general: dict) -> dict:
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
            {
                "model_name": "bench-converse-long",
                "litellm_params": {"model": f"bedrock/{canned.LONG_MODEL_ID}", **creds},
            },
        ],
        "general_settings": {"master_key": "sk-bench", **general},
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
    "converse_stream": (
        "/bedrock/model/bench-converse/converse-stream",
        json.dumps({"messages": [{"role": "user", "content": [{"text": PROMPT}]}]}).encode(),
    ),
    "converse_chat": (
        "/v1/chat/completions",
        json.dumps(
            {"model": "bench-converse", "messages": [{"role": "user", "content": PROMPT}]}
        ).encode(),
    ),
    "converse_chat_stream": (
        "/v1/chat/completions",
        json.dumps(
            {
                "model": "bench-converse",
                "stream": True,
                "messages": [{"role": "user", "content": PROMPT}],
            }
        ).encode(),
    ),
    #: 1,000 content events (per-event cost: compare with converse_chat_stream's 8)
    "converse_chat_long": (
        "/v1/chat/completions",
        json.dumps(
            {
                "model": "bench-converse-long",
                "stream": True,
                "messages": [{"role": "user", "content": PROMPT}],
            }
        ).encode(),
    ),
    "converse_stream_long": (
        "/bedrock/model/bench-converse-long/converse-stream",
        json.dumps({"messages": [{"role": "user", "content": [{"text": PROMPT}]}]}).encode(),
    ),
}


async def _one(app, path: str, body: bytes, key: str = "sk-bench", out: list | None = None) -> int:
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
        elif out is not None and message["type"] == "http.response.body":
            out.append(message.get("body", b""))

    headers = [
        (b"host", b"bench"),
        (b"content-type", b"application/json"),
        (b"authorization", b"Bearer " + key.encode()),
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


#: Plugins a gateway serving the bench's surfaces does not need (``--no-plugins`` blocks them).
OPTIONAL_PLUGINS = ("keys", "admin", "anthropic_messages", "prometheus", "otel")


def _general(args: argparse.Namespace, workdir: str) -> dict:
    general: dict = {}
    if args.key != "master":
        general["database_url"] = f"sqlite:///{workdir}/bench-keys.db"
    if args.key == "limited-redis":
        general["redis_url"] = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
        general["redis_key_prefix"] = f"outcrop-bench-{os.getpid()}:"
    return general


async def _caller_key(app, args: argparse.Namespace) -> str:
    """The key the measured calls carry: the master key, or one generated for them."""
    if args.key == "master":
        return "sk-bench"
    fields = {"key_alias": "bench"}
    if args.key.startswith("limited"):
        fields |= {"rpm_limit": 1_000_000_000, "tpm_limit": 1_000_000_000_000}
    out: list[bytes] = []
    status = await _one(app, "/key/generate", json.dumps(fields).encode(), out=out)
    assert status == 200, b"".join(out)
    return json.loads(b"".join(out))["key"]


async def _run(args: argparse.Namespace, upstream: str, workdir: str) -> dict:
    from outcrop.app import create_app
    from outcrop.logs import configure_logging

    configure_logging("WARNING")
    callbacks = [c for c in args.callbacks.split(",") if c]
    if "otel" in callbacks:
        os.environ.setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", upstream)
    if args.no_plugins:
        os.environ["OUTCROP_DISABLE_PLUGINS"] = ",".join(OPTIONAL_PLUGINS)
    app = create_app(_config(upstream, callbacks, _general(args, workdir)))
    await app.state.gateway.start()
    key = await _caller_key(app, args)
    results = {}
    for name in args.surfaces.split(","):
        path, body = SURFACES[name]
        for _ in range(args.warmup):  # warm-up: pools, caches
            assert await _one(app, path, body, key) == 200
        cpu, wall = [], []
        for _ in range(args.repeats):
            c0, w0 = time.process_time(), time.perf_counter()
            for _ in range(args.requests):
                await _one(app, path, body, key)
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


#: ``--compare`` variants: (key, callbacks, optional plugins blocked).
VARIANTS = {
    "core": ("master", "", True),
    "master": ("master", "", False),
    "virtual": ("virtual", "", False),
    "limited": ("limited", "", False),
    "limited-redis": ("limited-redis", "", False),
    "prometheus": ("master", "prometheus", False),
    "otel": ("master", "otel", False),
    "callbacks": ("master", "prometheus,otel", False),
    "virtual-callbacks": ("virtual", "prometheus,otel", False),
}


def _callgrind_toggle(workdir: str) -> Any:
    """Callgrind's start/stop client requests, compiled for ``ctypes`` (needs a C compiler and
    valgrind's headers)."""
    import ctypes
    import subprocess

    source, lib = os.path.join(workdir, "cg.c"), os.path.join(workdir, "libcg.so")
    with open(source, "w") as f:
        f.write(
            "#include <valgrind/callgrind.h>\n"
            "void cg_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }\n"
            "void cg_stop(void) { CALLGRIND_DUMP_STATS; CALLGRIND_STOP_INSTRUMENTATION; }\n"
        )
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", lib, source], check=True)
    return ctypes.CDLL(lib)


async def _compare(args: argparse.Namespace, upstream: str, workdir: str) -> None:
    """Several gateways in this process, measured in turns (a batch of each per round), so a
    change of the machine's load hits every variant alike; the minimum per variant is printed
    with its ratio to the first."""
    from outcrop.app import create_app
    from outcrop.logs import configure_logging

    configure_logging("WARNING")
    os.environ.setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", upstream)
    (surface,) = args.surfaces.split(",")
    path, body = SURFACES[surface]
    runs = []
    for i, name in enumerate(args.compare.split(",")):
        key, callbacks, blocked = VARIANTS[name]
        variant = argparse.Namespace(key=key)
        os.environ["OUTCROP_DISABLE_PLUGINS"] = ",".join(OPTIONAL_PLUGINS) if blocked else ""
        own = os.path.join(workdir, str(i))
        os.mkdir(own)
        config = _config(upstream, [c for c in callbacks.split(",") if c], _general(variant, own))
        app = create_app(config)
        await app.state.gateway.start()
        caller = await _caller_key(app, variant)
        for _ in range(args.warmup):
            assert await _one(app, path, body, caller) == 200
        runs.append((name, app, caller, []))
    if args.callgrind:  # instrumented batches: instructions, not seconds (min of --repeats)
        toggle = _callgrind_toggle(workdir)
        dumps = 0
        for _ in range(args.repeats):
            for _name, app, caller, counts in runs:
                toggle.cg_start()
                for _ in range(args.requests):
                    await _one(app, path, body, caller)
                toggle.cg_stop()
                dumps += 1
                name = f"callgrind.out.{os.getpid()}.{dumps}"
                if not os.path.exists(name):  # --separate-threads=yes: the event loop's thread
                    name += "-01"
                with open(name) as dump:
                    total = next(int(x.split()[1]) for x in dump if x.startswith("summary:"))
                counts.append(total / args.requests)
        for name, _app, _caller, counts in runs:
            print(f"{surface} {name:18s} instructions/request min {min(counts):,.0f}", flush=True)
        for _name, app, _caller, _cpu in runs:
            await app.state.gateway.stop()
        return
    for _ in range(args.repeats):
        for _name, app, caller, cpu in runs:
            c0 = time.process_time()
            for _ in range(args.requests):
                await _one(app, path, body, caller)
            cpu.append((time.process_time() - c0) / args.requests * 1e6)
    base = min(runs[0][3])
    for name, _app, _caller, cpu in runs:
        print(
            f"{surface} {name:18s} cpu/request min {min(cpu):7.1f} us "
            f"(median {statistics.median(cpu):7.1f}) x{min(cpu) / base:.3f}",
            flush=True,
        )
    for _name, app, _caller, _cpu in runs:
        await app.state.gateway.stop()


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=200, help="calls before measuring, per surface")
    p.add_argument("--surfaces", default="agent,agent_stream,converse")
    p.add_argument("--callbacks", default="", help="e.g. prometheus,otel")
    p.add_argument(
        "--key", default="master", choices=("master", "virtual", "limited", "limited-redis")
    )
    p.add_argument("--no-plugins", action="store_true", help="block the optional plugins")
    p.add_argument(
        "--callgrind",
        action="store_true",
        help="with --compare, under `valgrind --tool=callgrind --instr-atstart=no` (run from a "
        "scratch directory): instructions per request (min over --repeats batches per variant; "
        "other gateways' background work in the batch's wall time counts too; add "
        "--separate-threads=yes to count the event loop's thread only, and compare one variant "
        "per process: valgrind runs ~50x slower, so timed background work (the keys' poll and "
        "flush, the OTLP thread) weighs ~50x more than in a real run)",
    )
    p.add_argument(
        "--compare",
        default="",
        help=f"measure these gateways in turns on one surface: {', '.join(VARIANTS)}",
    )
    args = p.parse_args()
    with canned_upstream() as upstream, tempfile.TemporaryDirectory() as workdir:
        run = _compare if args.compare else _run
        asyncio.run(run(args, upstream, workdir))


if __name__ == "__main__":
    main()
