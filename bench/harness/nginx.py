"""The fixed-response upstream: nginx serving the canned bodies as static files.

nginx answers a POST to a static file with 405, so each route rewrites to an internal location
whose ``error_page 405 =200 $uri`` serves the file as a GET (the request body is discarded).
One worker, pinned to the load generator's core, no access log: it must never be the limit,
and the run measures it direct to prove that.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from . import procs
from .canned import UpstreamRoute, upstream_routes


def write_config(workdir: Path, port: int, routes: list[UpstreamRoute]) -> Path:
    files = workdir / "files"
    files.mkdir(parents=True, exist_ok=True)
    (workdir / "tmp").mkdir(exist_ok=True)
    blocks = []
    for route in routes:
        name = route.canned.name
        (files / f"{name}.bin").write_bytes(route.canned.body)
        extra = "".join(f"      add_header {k} {v} always;\n" for k, v in route.canned.headers)
        blocks.append(
            f"    location ~ {route.pattern} {{ rewrite ^ /{name}.bin last; }}\n"
            f"    location = /{name}.bin {{\n"
            f"      internal;\n"
            f"      default_type {route.canned.content_type};\n"
            f"{extra}"
            f"      add_header x-amzn-requestid bench-request always;\n"
            f"      error_page 405 =200 $uri;\n"
            f"    }}\n"
        )
    conf = workdir / "nginx.conf"
    conf.write_text(
        "worker_processes 1;\n"
        "daemon off;\n"
        f"pid {workdir}/nginx.pid;\n"
        f"error_log {workdir}/nginx-error.log warn;\n"
        "events { worker_connections 8192; multi_accept on; }\n"
        "http {\n"
        "  access_log off;\n"
        "  etag off;\n"
        "  server_tokens off;\n"
        "  tcp_nodelay on;\n"
        "  keepalive_requests 10000000;\n"
        "  keepalive_timeout 300s;\n"
        f"  client_body_temp_path {workdir}/tmp;\n"
        "  client_body_buffer_size 64k;\n"
        "  server {\n"
        f"    listen 127.0.0.1:{port} backlog=4096;\n"
        f"    root {files};\n" + "".join(blocks) + "    location / { return 404; }\n"
        "  }\n"
        "}\n"
    )
    return conf


class Nginx:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir / "nginx"
        self.port = procs.free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        conf = write_config(self.workdir, self.port, upstream_routes())
        self.proc = procs.launch(
            [binary, "-c", str(conf), "-p", str(self.workdir)],
            procs.LOAD_CORE,
            self.workdir / "nginx.out",
        )
        procs.wait_http(self.url + "/", timeout=10, proc=self.proc)

    @property
    def pids(self) -> list[int]:
        assert self.proc is not None
        # taskset exec()s nginx, so the Popen pid is the master; the worker is its child
        return [self.proc.pid, *procs.children(self.proc.pid)]

    def stop(self) -> None:
        procs.stop(self.proc)
