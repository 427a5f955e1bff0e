"""wrk, the native load generator: one thread on the load core, a Lua script per request shape.

The script's ``done`` callback prints exact figures as one JSON line (latency percentiles in
microseconds from wrk's histogram, request and error counts), so nothing is parsed from wrk's
rounded human output.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import procs
from .surfaces import Request

_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeouts":%d,"mean_us":%.1f,"max_us":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
"""


def _lua_str(data: bytes | str) -> str:
    text = data.decode() if isinstance(data, bytes) else data
    level = "=" * 4
    while f"]{level}]" in text:
        level += "="
    return f"[{level}[{text}]{level}]"


def script(requests: list[Request]) -> str:
    """A script cycling through ``requests`` (one request: wrk's fast static path)."""
    if len(requests) == 1:
        r = requests[0]
        lines = [
            f"wrk.method = {_lua_str(r.method)}",
            f"wrk.path = {_lua_str(r.path)}",
            f"wrk.body = {_lua_str(r.body)}",
        ]
        lines += [f"wrk.headers[ {_lua_str(k)} ] = {_lua_str(v)}" for k, v in r.headers]
        return "\n".join(lines) + "\n" + _DONE
    items = []
    for r in requests:
        headers = ", ".join(f"[ {_lua_str(k)} ] = {_lua_str(v)}" for k, v in r.headers)
        items.append(
            f"  wrk.format({_lua_str(r.method)}, {_lua_str(r.path)}, {{{headers}}}, "
            f"{_lua_str(r.body)}),"
        )
    return (
        "local reqs\nlocal i = 0\n"
        "init = function(args)\n reqs = {\n" + "\n".join(items) + "\n }\nend\n"
        "request = function()\n  i = i % #reqs + 1\n  return reqs[i]\nend\n" + _DONE
    )


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    mean_ms: float
    max_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s


def run(
    base_url: str,
    requests: list[Request],
    connections: int,
    seconds: float,
    workdir: Path,
    name: str,
    timeout_s: float = 10.0,
) -> WrkResult:
    lua = workdir / f"{name}.lua"
    lua.write_text(script(requests))
    argv = [
        "taskset",
        "-c",
        str(procs.LOAD_CORE),
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds:g}s",
        f"--timeout={timeout_s:g}s",
        "--latency",
        "-s",
        str(lua),
        base_url,
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(
            f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout[-500:]}"
        )
    d = json.loads(line[len("WRKJSON ") :])
    errors = sum(
        d[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    return WrkResult(
        requests=d["requests"],
        duration_s=d["duration_us"] / 1e6,
        errors=errors,
        p50_ms=d["p50_us"] / 1000,
        p90_ms=d["p90_us"] / 1000,
        p99_ms=d["p99_us"] / 1000,
        p999_ms=d["p999_us"] / 1000,
        mean_ms=d["mean_us"] / 1000,
        max_ms=d["max_us"] / 1000,
    )
