"""Where a served gateway's CPU goes: py-spy on one ``outcrop serve`` worker under wrk load.

    python bench/profile.py [--surfaces converse,agent,converse_chat] [--seconds 10]
                            [--svg docs/images/profile.svg] [--raw /tmp/profile.txt]

The same set-up as ``bench/run.py`` (nginx with the canned Bedrock answers and wrk on core 1,
one gateway worker pinned to core 0, INFO access log to a file), without the measuring: each
surface is driven at ``--connections`` for ``--seconds`` while ``py-spy record`` samples the
worker. It prints the top functions (self and inclusive share of the samples on the event
loop's thread, idle waits left out) and writes py-spy's collapsed stacks (``--raw``) and/or a
flame graph (``--svg``; a second recording, since py-spy writes one format per run). Sampling
is statistical and the machine may be busy: compare shares, not wall-clock figures.
Needs ``pip install py-spy`` and permission to ptrace the worker (the gateway is our child).
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import gateway as gw_mod
from harness import procs, wrk
from harness.nginx import Nginx
from harness.surfaces import Request, all_surfaces

#: Frames that mean the loop was waiting, not working.
_IDLE = ("select (selectors.py)", "_worker (concurrent/futures/thread.py)", "run_forever (uvloop")


def _record(pid: int, seconds: float, out: Path, fmt: str, rate: int) -> subprocess.Popen[bytes]:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    argv = [py_spy, "record", "--pid", str(pid), "--rate", str(rate), "--nonblocking"]
    argv += ["--duration", str(int(seconds)), "--format", fmt, "--output", str(out)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _call(base: str, req: Request) -> tuple[int, bytes]:
    r = urllib.request.Request(base + req.path, req.body, dict(req.headers), method=req.method)
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def top(raw: Path, n: int = 30) -> str:
    """Self and inclusive shares of the busy samples in py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [re.sub(r":\d+\)", ")", f) for f in stack.split(";")]
        if not frames or any(i in frames[-1] for i in _IDLE):
            continue
        total += int(count)
        own[frames[-1]] += int(count)
        for f in set(frames):
            incl[f] += int(count)
    lines = [f"{total} busy samples", "self:"]
    lines += [f"  {100 * v / total:5.1f}%  {k}" for k, v in own.most_common(n)]
    lines += ["inclusive:"]
    lines += [f"  {100 * v / total:5.1f}%  {k}" for k, v in incl.most_common(2 * n)]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--surfaces", default="converse,agent,converse_chat")
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--rate", type=int, default=500, help="py-spy samples per second")
    p.add_argument("--raw", type=Path, help="write py-spy's collapsed stacks here")
    p.add_argument("--svg", type=Path, help="also record a flame graph (SVG) here")
    p.add_argument("--serve-args", default="", help="extra `outcrop serve` arguments")
    args = p.parse_args()
    procs.pin_self()
    wanted = args.surfaces.split(",")
    surfaces = [s for s in all_surfaces() if s.key in wanted]
    if missing := set(wanted) - {s.key for s in surfaces}:
        sys.exit(f"unknown surfaces: {sorted(missing)}")
    work = Path(tempfile.mkdtemp(prefix="outcrop-profile-"))
    work.chmod(0o755)  # nginx's worker runs as an unprivileged user when we are root
    nginx = Nginx(work)
    nginx.start()
    config = gw_mod.write_config(work / "config.yaml", surfaces, nginx.url, None)
    gateway = gw_mod.Gateway(work, config, extra_args=args.serve_args.split())
    try:
        gateway.start()
        requests = {s.key: [s.gateway_request()] for s in surfaces}
        for key, (req,) in requests.items():  # a profile of error answers would be worthless
            status, body = _call(gateway.url, req)
            if status != 200:
                sys.exit(f"{key}: first request answered {status}: {body[:300]!r}")
        for s in surfaces:  # warm-up: pools, caches, first-call imports
            wrk.run(gateway.url, requests[s.key], args.connections, 2, work, f"warm-{s.key}")
        total = args.seconds * len(surfaces)
        formats = [("raw", args.raw or work / "profile.txt")]
        if args.svg:
            formats.append(("flamegraph", args.svg))
        for fmt, out in formats:
            spy = _record(gateway.pid, total, out, fmt, args.rate)
            time.sleep(0.5)
            for s in surfaces:
                r = wrk.run(
                    gateway.url, requests[s.key], args.connections, args.seconds, work, s.key
                )
                print(f"{fmt}: {s.key}: {r.rps:.0f} req/s, {r.errors} errors", flush=True)
            _, err = spy.communicate(timeout=total + 60)
            if spy.returncode != 0:
                sys.exit(f"py-spy failed: {err.decode(errors='replace')[-500:]}")
            print(f"wrote {out}")
        print(top(formats[0][1]))
    finally:
        gateway.stop()
        nginx.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
