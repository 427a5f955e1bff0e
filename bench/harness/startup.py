"""Start-up: how long ``outcrop serve`` takes to answer ``/health/readiness``, and its RSS.

The clock starts just before the process is spawned (``taskset`` on the gateway core, as every
gateway of the run) and stops at the first 200 from the readiness probe, polled every 10 ms over
a fresh connection. Every installed plugin is imported at start-up whether or not its feature is
on, so "plain" measures the installed set with the master key only, and "all features" with the
virtual keys' store, Redis limits, Prometheus and OpenTelemetry configured.
"""

from __future__ import annotations

import http.client
import os
import time
from pathlib import Path

from . import procs
from .stats import median, r


def _ready(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/health/readiness")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def once(argv: list[str], port: int, log: Path, env: dict[str, str], timeout: float = 60.0) -> dict:
    """One cold start: seconds to ready, RSS at ready and after 2 s idle."""
    t0 = time.monotonic()
    proc = procs.launch(argv, procs.GATEWAY_CORE, log, env={**os.environ, **env})
    try:
        while not _ready(port):
            if proc.poll() is not None:
                raise RuntimeError(f"exited with {proc.returncode} before it was ready")
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"not ready within {timeout:g} s")
            time.sleep(0.01)
        ready = time.monotonic() - t0
        rss_ready = procs.rss_mb(proc.pid)
        time.sleep(2)
        return {
            "ready_s": r(ready, 3),
            "rss_ready_mb": r(rss_ready, 1),
            "rss_idle_mb": r(procs.rss_mb(proc.pid), 1),
        }
    finally:
        procs.stop(proc)


def measure(argv_for_port, log: Path, env: dict[str, str], repeats: int) -> dict:
    """``repeats`` cold starts (each on a fresh port); medians and every run."""
    runs = []
    for _ in range(repeats):
        port = procs.free_port()
        runs.append(once(argv_for_port(port), port, log, env))
    return {
        "runs": runs,
        **{
            k: r(median([x[k] for x in runs]), 3)
            for k in ("ready_s", "rss_ready_mb", "rss_idle_mb")
        },
    }
