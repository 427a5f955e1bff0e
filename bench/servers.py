"""CPU per request of each ASGI server Outcrop can serve on: hypercorn (default), uvicorn, granian.

Two workloads, each server pinned to core 0 with wrk on core 1:

* ``raw``: a hello-world ASGI app answering a small POST, served by each server's own command
  (what the server itself costs); ``outcrop`` (raw only) serves it through Outcrop's own
  serving stack (``outcrop.serving.worker``: the default server's connection and HTTP/1.1
  protocol), which is what ``outcrop serve`` runs;
* ``gateway``: ``outcrop serve --server NAME`` on pass-through converse (or the ``--surfaces``
  named) against nginx's canned answer (bench/harness), one worker.

The figure is the server's CPU time (utime + stime of the process and its children, from
/proc/PID/stat) divided by the requests wrk completed: load from other processes slows a run but
hardly changes the CPU each request takes, so the figures compare on a shared machine where
req/s would not. Each figure is the minimum of ``--repeat`` runs.

    python bench/servers.py [--seconds 5] [--repeat 3] [--connections 8]
                            [--servers hypercorn] [--workloads gateway]
                            [--surfaces converse,converse_chat,agent] [--callgrind]
"""

from __future__ import annotations

import argparse
import http.client
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from harness import gateway, procs, wrk
from harness.nginx import Nginx
from harness.surfaces import Request, all_surfaces, long_streams

SERVERS = ("hypercorn", "uvicorn", "granian")
#: The hello app under ``outcrop.serving.worker.serve`` (the default server as Outcrop runs it).
OUTCROP_RAW = """
import sys
import uvloop
from hello import app
from outcrop.serving.options import ServerOptions, hypercorn_config
from outcrop.serving.worker import serve
options = ServerOptions()
uvloop.run(serve(app, hypercorn_config(options, sys.argv[1]), options))
"""
HELLO = """
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"ok": true}'})
"""


def _raw_argv(server: str, port: int) -> list[str]:
    bin_ = Path(sys.executable).parent
    if server == "outcrop":
        return [sys.executable, "-c", OUTCROP_RAW, f"127.0.0.1:{port}"]
    bind = ["--host", "127.0.0.1", "--port", str(port)]
    return {
        "hypercorn": [str(bin_ / "hypercorn"), "-k", "uvloop", "-b", f"127.0.0.1:{port}"],
        "uvicorn": [str(bin_ / "uvicorn"), "--loop", "uvloop", "--http", "httptools", *bind],
        "granian": [str(bin_ / "granian"), "--interface", "asgi", *bind],
    }[server] + ["--log-level", "warning", "hello:app"]


def _measure(url: str, pid: int, request: Request, args: argparse.Namespace, tag: str) -> dict:
    wrk.run(url, [request], args.connections, 2, args.workdir, tag + "-warm")
    runs = []
    for i in range(args.repeat):
        pids = [pid, *procs.children(pid)]
        with procs.Window({"target": pids, "ours": []}) as window:
            res = wrk.run(url, [request], args.connections, args.seconds, args.workdir, f"{tag}{i}")
        if res.errors:
            raise RuntimeError(f"{tag}: {res.errors} wrk errors (logs in {args.workdir})")
        runs.append((1e6 * window.seconds("target") / res.requests, res.requests))
    best = min(runs)
    return {"us_per_request": round(best[0], 1), "requests": best[1], "runs": len(runs)}


def _send(url: str, request: Request, count: int) -> None:
    """``count`` requests one after another on one keep-alive connection."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    try:
        for _ in range(count):
            conn.request(request.method, request.path, request.body, dict(request.headers))
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{url}{request.path}: {response.status}")
    finally:
        conn.close()


def _measure_callgrind(
    url: str, pid: int, request: Request, args: argparse.Namespace, tag: str
) -> dict:
    """Instructions per request (callgrind, every process of the server): counters zeroed
    after a warm-up, dumped after ``--requests`` sequential requests."""
    _send(url, request, args.warmup)
    pids = [pid, *procs.children(pid)]
    for p in pids:
        subprocess.run(["callgrind_control", "-z", str(p)], check=True, capture_output=True)
    _send(url, request, args.requests)
    for p in pids:
        subprocess.run(["callgrind_control", "-d", str(p)], check=True, capture_output=True)
    total = 0
    for p in pids:
        dumps = sorted(args.workdir.glob(f"cg-*.{p}.*"), key=lambda f: f.stat().st_mtime)
        text = dumps[-1].read_text()
        total += int(next(ln for ln in text.splitlines() if ln.startswith("summary:")).split()[1])
    return {"instructions_per_request": round(total / args.requests), "requests": args.requests}


def _serve(argv: list[str], url: str, ready: str, log: Path, cwd: str | None = None) -> object:
    proc = procs.launch(argv, procs.GATEWAY_CORE, log, cwd=cwd)
    procs.wait_http(url + ready, timeout=900, proc=proc)
    return proc


def _valgrind(args: argparse.Namespace, tag: str) -> list[str]:
    if not args.callgrind:
        return []
    out = args.workdir / f"cg-{tag}.%p"
    return ["valgrind", "--tool=callgrind", "--trace-children=yes", f"--callgrind-out-file={out}"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=int, default=5)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--connections", type=int, default=8)
    p.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help="comma-separated; also `outcrop`: the raw app under Outcrop's serving stack (raw only)",
    )
    p.add_argument("--workloads", default="raw,gateway")
    p.add_argument(
        "--surfaces",
        default="converse",
        help="gateway workload: these surfaces (bench/harness/surfaces.py keys, and the 1,000-event "
        "streams converse_stream_long, converse_chat_stream_long), one after another",
    )
    p.add_argument(
        "--callgrind",
        action="store_true",
        help="count instructions per request under callgrind instead of CPU time under wrk",
    )
    p.add_argument("--requests", type=int, default=500, help="requests counted (--callgrind)")
    p.add_argument("--warmup", type=int, default=200, help="requests before counting (--callgrind)")
    p.add_argument("--keep", action="store_true", help="keep the work dir (logs, configs)")
    args = p.parse_args(argv)
    servers = args.servers.split(",")
    measure = _measure_callgrind if args.callgrind else _measure
    figure = "instructions_per_request" if args.callgrind else "us_per_request"
    tmp = tempfile.mkdtemp(prefix="outcrop-servers-")
    args.workdir = Path(tmp)
    args.workdir.chmod(0o755)  # nginx's worker runs as an unprivileged user when we are root
    try:
        (args.workdir / "hello.py").write_text(HELLO)
        results: dict[str, dict[str, dict]] = {"raw": {}}
        hello = Request("POST", "/", (("Content-Type", "application/json"),), b'{"hi": 1}')
        for server in servers if "raw" in args.workloads else ():
            port = procs.free_port()
            url = f"http://127.0.0.1:{port}"
            proc = _serve(
                [*_valgrind(args, f"raw-{server}"), *_raw_argv(server, port)],
                url,
                "/",
                args.workdir / f"raw-{server}.log",
                cwd=tmp,
            )
            try:
                results["raw"][server] = measure(url, proc.pid, hello, args, f"raw-{server}")
            finally:
                procs.stop(proc)
            print(f"raw {server}: {results['raw'][server]}", flush=True)

        wanted = args.surfaces.split(",")
        known = all_surfaces()
        surfaces = [s for s in [*known, *long_streams(known)] if s.key in wanted]
        if missing := set(wanted) - {s.key for s in surfaces}:
            raise SystemExit(f"unknown surfaces: {sorted(missing)}")
        nginx = Nginx(args.workdir)
        nginx.start()
        try:
            config = gateway.write_config(args.workdir / "gw.yaml", surfaces, nginx.url, None)
            for server in servers if "gateway" in args.workloads else ():
                if server not in SERVERS:
                    continue  # raw only
                gw = gateway.Gateway(args.workdir, config, extra_args=["--server", server])
                outcrop = [sys.executable, "-m", "outcrop"]  # valgrind runs python, not a script
                gw.argv = [*_valgrind(args, f"gw-{server}"), *outcrop, *gw.argv[1:]]
                gw.log = args.workdir / f"gw-{server}.log"
                gw.start(timeout=900)
                try:
                    time.sleep(1)
                    for surface in surfaces:
                        tag = f"gw-{server}-{surface.key}"
                        row = f"gateway {surface.key}" if len(surfaces) > 1 else "gateway"
                        results.setdefault(row, {})[server] = measure(
                            gw.url, gw.pid, surface.gateway_request(), args, tag
                        )
                        print(f"{row} {server}: {results[row][server]}", flush=True)
                finally:
                    gw.stop()
        finally:
            nginx.stop()
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print()
    print("| workload | " + " | ".join(f"{s} {figure}" for s in servers) + " |")
    print("|---|" + "---|" * len(servers))
    for workload, by_server in results.items():
        if not by_server:
            continue
        cells = " | ".join(str(by_server.get(s, {}).get(figure, "-")) for s in servers)
        print(f"| {workload} | {cells} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
