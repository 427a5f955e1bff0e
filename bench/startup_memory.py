"""Start-up time and memory of one ``outcrop serve`` worker, every plugin vs the core alone.

    python bench/startup_memory.py                 # both setups, 3 start-ups each
    python bench/startup_memory.py --calls 2000 --repeat 5 --json out.json

For each setup it reports:

- **import time**: the sum of the top-level cumulative times ``python -X importtime`` prints for
  one ``outcrop serve`` start-up (a separate start-up: the flag slows imports down), and the
  packages that cost the most;
- **time to ready**: from spawning ``outcrop serve`` to the first 200 on ``/health/readiness``;
- **idle RSS** (``VmRSS`` of the worker, ``/proc/PID/status``) once ready, and after ``--calls``
  calls (chat on each provider's demo deployment and ``/v1/models``, half with a virtual key when
  keys are on), then idle again after a short pause.

"Every plugin" is what is installed, with keys on (a master key, a SQLite database in a temporary
folder, migrated by the first start-up), Prometheus and OpenTelemetry on (spans go to a loopback
sink). "Core alone" is ``OUTCROP_PLUGINS=`` (no entry point is loaded) with the same master key.
Upstream calls go to the built-in Bedrock simulator (``outcrop.testing``) in this process.

Times are wall-clock: on a loaded machine take the minimum of several start-ups (``--repeat``);
the RSS figures do not depend on load.

``--baseline-src DIR`` measures a change before/after in one run: DIR is another checkout of this
repository (e.g. ``git worktree add --detach DIR main``); its ``core/src`` and ``plugins/*/src``
go first on ``PYTHONPATH``, so the same virtualenv starts the older code. "Every plugin" starts
alternate between the baseline and this checkout (``--repeat`` each, then one ``-X importtime``
start-up each, alternating too), and the report gives both sides' medians and minimums.
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from outcrop.config import parse_config
from outcrop.demo import demo_config
from outcrop.gateway import Gateway
from outcrop.testing.server import ServerThread
from outcrop.testing.simulator import BedrockSimulator

OUTCROP = str(Path(sys.executable).with_name("outcrop"))
MASTER_KEY = "sk-bench-startup-0000000000"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_s(pid: int) -> float:
    """utime + stime of ``pid`` (``/proc/PID/stat``), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Sink(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP collector that accepts and drops every export."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def otlp_sink() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def write_config(folder: Path, simulator_url: str, every_plugin: bool) -> Path:
    probe = Gateway(parse_config({}))  # the model prefixes of the installed plugins
    config = demo_config(simulator_url, MASTER_KEY, probe)
    if every_plugin:
        config["general_settings"]["database_url"] = f"sqlite:///{folder / 'keys.db'}"
        config["litellm_settings"] = {"callbacks": ["prometheus", "otel"]}
    else:
        config["model_list"] = []
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class Client:
    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method: str, path: str, key: str, body: Any = None) -> tuple[int, bytes]:
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
        self.conn.request(method, path, body=payload, headers=headers)
        r = self.conn.getresponse()
        return r.status, r.read()

    def close(self) -> None:
        self.conn.close()


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> float:
    """Seconds until the first 200 on /health/readiness (polled every 5 ms)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"outcrop serve exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health/readiness")
            if conn.getresponse().status == 200:
                conn.close()
                return time.monotonic() - start
            conn.close()
        except OSError:
            pass
        time.sleep(0.005)
    raise TimeoutError("outcrop serve did not get ready")


def serve(config: Path, env: dict[str, str], log: Path, importtime: bool = False) -> tuple:
    port = free_port()
    argv = [OUTCROP, "serve", "--config", str(config), "--port", str(port)]
    if importtime:
        argv = [sys.executable, "-X", "importtime", "-m", "outcrop", *argv[1:]]
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    return proc, port


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)")


def parse_importtime(text: str) -> tuple[float, list[tuple[str, float]]]:
    """Total import seconds (top-level cumulative times) and the costliest top-level packages."""
    per_package: dict[str, float] = {}
    total = 0
    for line in text.splitlines():
        m = _IMPORT_LINE.match(line)
        if not m or m.group(3):  # nested imports are inside their parent's cumulative time
            continue
        cumulative = int(m.group(2))
        total += cumulative
        package = m.group(4).split(".")[0]
        per_package[package] = per_package.get(package, 0) + cumulative / 1e6
    top = sorted(per_package.items(), key=lambda kv: -kv[1])[:12]
    return total / 1e6, top


def virtual_key(client: Client) -> str | None:
    status, body = client.call("POST", "/key/generate", MASTER_KEY, {"key_alias": None})
    if status == 404:
        return None
    if status != 200:
        raise RuntimeError(f"/key/generate answered {status}: {body[:200]!r}")
    return str(json.loads(body)["key"])


def call_kinds(client: Client, config: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(method, path, body) of the calls to repeat: chat on each chat deployment, the native
    pass-through (Converse) and Anthropic's Messages API where their plugins are installed, and
    ``/v1/models``."""
    models = [m["model_name"] for m in config["model_list"]]
    _, body = client.call("GET", "/v1/models", MASTER_KEY)
    chat = [m["id"] for m in json.loads(body)["data"] if m["id"] in models]
    kinds: list[tuple[str, str, Any]] = [("GET", "/v1/models", None)]
    for i, model in enumerate(dict.fromkeys(chat)):
        message = {"role": "user", "content": f"call {i}"}
        kinds.append(("POST", "/v1/chat/completions", {"model": model, "messages": [message]}))
    claude = next(
        (
            m["model_name"]
            for m in config["model_list"]
            if m["litellm_params"]["model"].startswith("bedrock/anthropic.claude")
        ),
        None,
    )
    if claude:
        converse = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
        kinds.append(("POST", f"/bedrock/model/{claude}/converse", converse))
        messages = {
            "model": claude,
            "max_tokens": 8,
            "messages": [{"role": "user", "content": "hi"}],
        }
        kinds.append(("POST", "/v1/messages", messages))
    return kinds


def warm_calls(port: int, config: dict[str, Any], calls: int) -> dict[str, int]:
    """``calls`` calls, each kind of ``call_kinds`` in turn; every other one with a virtual key
    when keys are on. Returns the count per (path, status)."""
    client = Client(port)
    statuses: dict[str, int] = {}
    try:
        vkey = virtual_key(client)
        keys = [MASTER_KEY, vkey] if vkey else [MASTER_KEY]
        kinds = call_kinds(client, config)
        for i in range(calls):
            method, path, body = kinds[i % len(kinds)]
            status, _ = client.call(method, path, keys[i // len(kinds) % len(keys)], body)
            label = f"{path.rsplit('/', 1)[-1]} {status}"
            statuses[label] = statuses.get(label, 0) + 1
    finally:
        client.close()
    return statuses


def one_startup(config: Path, env: dict[str, str], folder: Path, calls: int) -> dict[str, Any]:
    proc, port = serve(config, env, folder / "serve.log")
    try:
        ready = wait_ready(port, proc)
        ready_cpu = cpu_s(proc.pid)
        time.sleep(1.0)  # let start-up work that follows readiness (pollers, flushers) settle
        idle = rss_mb(proc.pid)
        statuses = warm_calls(port, yaml.safe_load(config.read_text()), calls)
        after = rss_mb(proc.pid)
        time.sleep(2.0)
        idle_after = rss_mb(proc.pid)
    finally:
        stop(proc)
    return {
        "ready_s": ready,
        "ready_cpu_s": ready_cpu,
        "rss_idle_mb": idle,
        "rss_after_calls_mb": after,
        "rss_idle_after_calls_mb": idle_after,
        "statuses": statuses,
    }


def import_cost(config: Path, env: dict[str, str], folder: Path) -> dict[str, Any]:
    log = folder / "importtime.log"
    proc, port = serve(config, env, log, importtime=True)
    try:
        wait_ready(port, proc)
    finally:
        stop(proc)
    total, top = parse_importtime(log.read_text(errors="replace"))
    return {"import_s": total, "top": top}


def measure(name: str, every_plugin: bool, sim_url: str, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="outcrop-startup-") as tmp:
        folder = Path(tmp)
        config = write_config(folder, sim_url, every_plugin)
        env = {**os.environ, "OUTCROP_LOG_LEVEL": "WARNING"}
        # as deployed: pip writes bytecode at install; the unmeasured first start-up writes it
        # for editable installs (with the variable set every start-up compiles ~120 modules)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        if every_plugin:
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = args.otlp
        else:
            env["OUTCROP_PLUGINS"] = ""
        # the first start-up migrates the new database; it is not one of the measured ones
        one_startup(config, env, folder, 1)
        runs = [one_startup(config, env, folder, args.calls) for _ in range(args.repeat)]
        imports = import_cost(config, env, folder)
    result: dict[str, Any] = {"setup": name, "runs": runs, **imports}
    for field in (
        "ready_s",
        "ready_cpu_s",
        "rss_idle_mb",
        "rss_after_calls_mb",
        "rss_idle_after_calls_mb",
    ):
        values = [r[field] for r in runs]
        result[field] = min(values) if field.startswith("ready") else statistics.median(values)
    return result


def baseline_env(env: dict[str, str], src: Path) -> dict[str, str]:
    """``env`` with ``src``'s packages first on ``PYTHONPATH`` (ahead of the editable installs)."""
    paths = [src / "core" / "src", *sorted(src.glob("plugins/*/src"))]
    paths += sorted(src.glob("docs/examples/*/src"))
    return {**env, "PYTHONPATH": os.pathsep.join(str(p) for p in paths)}


def compare_baseline(sim_url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Every plugin, baseline (``--baseline-src``) and this checkout alternating."""
    with tempfile.TemporaryDirectory(prefix="outcrop-startup-ab-") as tmp:
        folder = Path(tmp)
        config = write_config(folder, sim_url, True)
        env = {
            **os.environ,
            "OUTCROP_LOG_LEVEL": "WARNING",
            "OTEL_EXPORTER_OTLP_ENDPOINT": args.otlp,
        }
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        envs = {"baseline": baseline_env(env, args.baseline_src), "this checkout": env}
        for side_env in envs.values():  # bytecode, and the migration of the new database
            one_startup(config, side_env, folder, 1)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in envs}
        imports: dict[str, list[float]] = {name: [] for name in envs}
        for i in range(args.repeat):
            order = list(envs) if i % 2 == 0 else list(envs)[::-1]
            for name in order:
                runs[name].append(one_startup(config, envs[name], folder, args.calls))
            for name in order:
                imports[name].append(import_cost(config, envs[name], folder)["import_s"])
    out: dict[str, Any] = {}
    for name in envs:
        side: dict[str, Any] = {"runs": runs[name], "import_s_runs": imports[name]}
        for field in ("ready_s", "ready_cpu_s", "rss_idle_mb", "rss_after_calls_mb"):
            values = [r[field] for r in runs[name]]
            side[field] = {"median": statistics.median(values), "min": min(values)}
        side["import_s"] = {"median": statistics.median(imports[name]), "min": min(imports[name])}
        out[name] = side
    return out


def report_baseline(result: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        f"every plugin, {args.repeat} start-ups per side alternating; baseline {args.baseline_src}",
        "",
        "| | ready | CPU to ready | import time (-X importtime) | RSS idle | RSS after "
        f"{args.calls:,} calls |",
        "|---|---|---|---|---|---|",
    ]
    for name, side in result.items():
        cells = [
            f"{side[f]['median']:.3f} s (min {side[f]['min']:.3f})"
            for f in ("ready_s", "ready_cpu_s", "import_s")
        ]
        cells += [f"{side[f]['median']:.1f} MB" for f in ("rss_idle_mb", "rss_after_calls_mb")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    base, this = result["baseline"], result["this checkout"]
    ratios = ", ".join(
        f"{f} {this[f]['median'] / base[f]['median']:.3f}"
        for f in ("ready_s", "ready_cpu_s", "import_s", "rss_idle_mb")
    )
    lines.append(f"\nthis checkout / baseline (medians): {ratios}")
    return "\n".join(lines)


def report(results: list[dict], calls: int) -> str:
    lines = [
        "| setup | import time | ready (min) | CPU to ready (min) | RSS idle | RSS after "
        f"{calls:,} calls | RSS idle after calls |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['setup']} | {r['import_s']:.2f} s | {r['ready_s']:.2f} s | {r['ready_cpu_s']:.2f} s | "
            f"{r['rss_idle_mb']:.1f} MB | {r['rss_after_calls_mb']:.1f} MB | "
            f"{r['rss_idle_after_calls_mb']:.1f} MB |"
        )
    for r in results:
        top = ", ".join(f"{p} {s * 1000:.0f} ms" for p, s in r["top"])
        lines.append(f"\n{r['setup']}: costliest imports (-X importtime, cumulative): {top}")
        lines.append(f"{r['setup']}: statuses of the calls: {r['runs'][-1]['statuses']}")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=1000, help="calls before the second RSS reading")
    p.add_argument("--repeat", type=int, default=3, help="start-ups per setup")
    p.add_argument("--only", choices=["all", "core"], help="measure one setup")
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument(
        "--baseline-src",
        type=Path,
        metavar="DIR",
        help="another checkout: every plugin, its code and this checkout's alternating",
    )
    args = p.parse_args()
    if args.baseline_src and not (args.baseline_src / "core" / "src" / "outcrop").is_dir():
        p.error(f"--baseline-src: no core/src/outcrop in {args.baseline_src}")
    setups = [("every plugin", True), ("core alone", False)]
    if args.only:
        setups = [s for s in setups if s[1] == (args.only == "all")]
    simulator = ServerThread(BedrockSimulator())
    simulator.start()
    try:
        with otlp_sink() as args.otlp:
            if args.baseline_src:
                compared = compare_baseline(simulator.url, args)
            else:
                results = [measure(name, every, simulator.url, args) for name, every in setups]
    finally:
        simulator.stop()
    if args.baseline_src:
        print(report_baseline(compared, args))
        if args.json:
            args.json.write_text(json.dumps(compared, indent=2))
        return 0
    print(report(results, args.calls))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
