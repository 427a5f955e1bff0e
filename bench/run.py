"""Outcrop's gateway benchmark: one command, every figure of issue 6.

    python bench/run.py --soak 300 --litellm

Starts nginx (canned Bedrock answers) and a delayed upstream on core 1, one Outcrop worker on
core 0, then measures per surface: added latency (gateway minus direct, same run) at several
concurrencies, throughput and CPU per request at c=32, stream TTFB / first token and chunk
relaying, RSS idle / under load / over a soak, and optionally LiteLLM's proxy on the same
upstream. Writes bench/results/<date>-<label>.{json,md,png}. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata as md
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from harness import compare, measure, procs, report
from harness import gateway as gw
from harness.session import Session
from harness.surfaces import Surface, all_surfaces

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--label", default="local", help="results name: bench/results/<date>-<label>.*")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (default 5)")
    p.add_argument(
        "--concurrency", default="1,8,32", help="connections per wrk run (default 1,8,32)"
    )
    p.add_argument("--repeats", type=int, default=2, help="runs of every figure (default 2, min 2)")
    p.add_argument("--soak", type=float, default=300.0, help="soak seconds (default 300; 0 skips)")
    p.add_argument("--surfaces", default="", help="comma list of surface keys (default: all)")
    p.add_argument(
        "--delay", type=float, default=0.15, help="delayed upstream: seconds between parts"
    )
    p.add_argument("--ttfb-samples", type=int, default=300, help="TTFB samples per run and surface")
    p.add_argument(
        "--litellm", action="store_true", help="also measure LiteLLM's proxy (throwaway venv)"
    )
    p.add_argument(
        "--litellm-venv", default="/tmp/litellm-venv", help="where the throwaway venv lives"
    )
    procs.add_quiet_options(p, max_load=True)
    p.add_argument(
        "--also-server",
        action="append",
        default=[],
        metavar="NAME",
        help="also measure `outcrop serve --server NAME` (e.g. uvicorn) at c=1 and the top c",
    )
    p.add_argument(
        "--server",
        default="hypercorn",
        help="the ASGI server of the main gateway (`outcrop serve --server NAME`; default hypercorn)",
    )
    p.add_argument(
        "--features",
        choices=("off", "on", "both"),
        default="off",
        help="off: master key only (default); on: a virtual key, spend rows, a Redis rate limit, "
        "Prometheus and OpenTelemetry, each feature's cost measured on its own; both: the two",
    )
    p.add_argument(
        "--feature-surfaces",
        default="converse,agent,converse_chat",
        help="surfaces of the per-feature stages and of the other servers with features on",
    )
    p.add_argument(
        "--features-database",
        default="",
        metavar="URL",
        help="features on: keys and spend in this PostgreSQL database (postgresql://...; created "
        "when missing, its outcrop_* tables emptied before each stage) instead of a fresh SQLite "
        "file per stage",
    )
    scaling = p.add_mutually_exclusive_group()
    scaling.add_argument(
        "--no-scaling",
        action="store_true",
        help="skip `--workers 1` -> `--workers 2` on each server (and the many-core estimate)",
    )
    scaling.add_argument(
        "--scaling",
        action="store_true",
        help="measure `--workers 1` -> `--workers 2` even with --quick (which skips it)",
    )
    p.add_argument(
        "--scaling-surfaces",
        default="converse",
        help="surfaces of the workers scaling (default converse)",
    )
    p.add_argument(
        "--estimate-cores",
        type=int,
        default=16,
        help="the machine the scaling estimate is made for (default 16 cores)",
    )
    p.add_argument(
        "--long-samples",
        type=int,
        default=30,
        help="per-event overhead: 1,000-event streams per run and surface (default 30)",
    )
    p.add_argument(
        "--compare",
        metavar="RESULTS_JSON",
        help="an earlier run's results JSON: its figures go beside this run's (before/after)",
    )
    p.add_argument(
        "--from-json",
        metavar="RESULTS_JSON",
        help="measure nothing: rewrite the report (and with --update-docs the docs) from a results "
        "JSON (with --compare: add the before/after table)",
    )
    p.add_argument(
        "--serve-args",
        default="",
        help="extra arguments for `outcrop serve` (e.g. a server choice), recorded in the results",
    )
    p.add_argument("--out", default=str(BENCH / "results"), help="results directory")
    p.add_argument(
        "--update-docs", action="store_true", help="put the tables in docs/performance.md"
    )
    p.add_argument(
        "--keep-workdir",
        action="store_true",
        help="keep the temporary work dir (configs, server logs, wrk scripts) after a successful run",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a contributor's run in about 3 minutes: 1 s runs, c=1 and 32, 60 TTFB samples, one "
        "delayed stream and one cold start each, 10 long streams, no soak, no workers scaling",
    )
    p.add_argument(
        "--no-assert",
        action="store_true",
        help="exit 0 even when a target is missed, and measure on a busy machine without waiting "
        "(CI uses it with --quick to prove the harness works; its figures mean nothing)",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.concurrency, args.soak = 1.0, "1,32", 0.0
        procs.QUIET_SAMPLE_S = 0.5
        args.ttfb_samples = min(args.ttfb_samples, 60)
        args.long_samples = min(args.long_samples, 10)
        args.no_scaling = not args.scaling  # two more gateways' start-ups: past 3 minutes
    if args.no_assert:
        args.quiet_timeout, args.max_load, args.max_foreign, args.max_busy = 0.0, 1e9, 1.0, 1.0
    args.concurrency = sorted({int(c) for c in args.concurrency.split(",")})
    args.serve_args = shlex.split(args.serve_args)
    args.feature_surfaces = set(args.feature_surfaces.split(","))
    args.scaling_surfaces = set(args.scaling_surfaces.split(","))
    if args.features_database and not args.features_database.startswith(
        ("postgresql:", "postgres:")
    ):
        p.error("--features-database: a postgresql:// URL (SQLite is the default)")
    if args.server != gw.DEFAULT_SERVER and args.server not in gw.server_choices():
        p.error(
            f"--server: `outcrop serve --server` offers {gw.server_choices()}, not {args.server}"
        )
    if args.compare and not Path(args.compare).is_file():
        p.error(f"--compare: no such file {args.compare}")
    if args.duration != int(args.duration) or args.duration < 1:
        p.error("--duration: wrk takes whole seconds")
    if args.repeats < 2:
        p.error("--repeats: every figure is measured at least twice")
    return args


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in (
        "outcrop",
        "outcrop-bedrock-agent",
        "outcrop-bedrock-agentcore",
        "outcrop-bedrock-passthrough",
        "hypercorn",
        "uvicorn",
        "httptools",
        "uvloop",
        "starlette",
        "aiohttp",
        "msgspec",
    ):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    out["nginx"] = nginx.split("/")[-1]
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    out["wrk"] = (wrk.stdout or wrk.stderr).split()[1]
    return out


def _git() -> str:
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--", "core", "plugins"],
        capture_output=True,
        text=True,
    )
    return head.stdout.strip() + (
        " + uncommitted core/plugin changes" if dirty.stdout.strip() else ""
    )


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def run(args: argparse.Namespace) -> dict:
    procs.pin_self(procs.LOAD_CORE)
    session = Session(args, say)
    res = session.results
    say(f"work dir {session.workdir}")
    say(
        f"waiting for a quiet machine (busy <= {args.max_busy:.0%}, load average <= {args.max_load})"
    )
    start_quiet = _initial_quiet(args)
    plugins = gw.installed_plugins()
    wanted = set(args.surfaces.split(",")) if args.surfaces else None
    surfaces = [s for s in all_surfaces() if wanted is None or s.key in wanted]
    now = dt.datetime.now(dt.UTC)
    res["meta"] = {
        "date": now.strftime("%Y-%m-%d"),
        "started": now.isoformat(timespec="seconds"),
        "label": args.label,
        "cpu": _cpu(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "versions": _versions(),
        "plugins": plugins,
        "git": _git(),
        "command": "python bench/run.py " + " ".join(shlex.quote(x) for x in sys.argv[1:]),
        "duration_s": args.duration,
        "repeats": args.repeats,
        "concurrency": args.concurrency,
        "delay_s": args.delay,
        "ttfb_samples": args.ttfb_samples,
        "quiet_at_start": start_quiet,
        "max_busy": args.max_busy,
        "max_foreign": args.max_foreign,
        "attempts": measure.ATTEMPTS,
        "serve_args": " ".join(args.serve_args),
        "server": args.server,
        "features": args.features,
        "long_samples": args.long_samples,
        "scaling": not args.no_scaling,
        "load_start": procs.loadavg(),
    }
    present: list[Surface] = []
    for s in surfaces:
        entry = res["surfaces"][s.key] = {"title": s.title, "plugin": s.plugin, "stream": s.stream}
        if s.plugin in plugins:
            present.append(s)
        else:
            entry["status"] = f"not measured: plugin missing ({s.plugin})"
    try:
        session.start_upstreams()
        ok = session.outcrop(present)
        if ok:
            session.startup()
        for name in args.also_server:
            if args.features != "on":
                session.other_server(name, ok)
        if ok and args.features != "on" and not args.no_scaling:
            session.scaling(ok)
        if ok and args.features != "off":
            session.features(ok)
        if args.litellm:
            session.litellm(ok)
            if args.features != "off" and ok:
                session.litellm_features(ok)
    finally:
        session.stop_all()
    if not args.keep_workdir:  # server logs (a soak writes ~400 MB of access log); kept on failure
        shutil.rmtree(session.workdir, ignore_errors=True)
    meta = res["meta"]
    meta["load_end"] = procs.loadavg()
    meta["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if _git() != meta["git"]:  # someone committed while it ran: say which code the later phases saw
        meta["git_at_end"] = _git()
    meta["max_foreign_cpu_share"] = session.max_foreign()
    meta["noisy_runs"] = session.noisy_runs()
    if args.compare:
        res["compare"] = compare.load(Path(args.compare))
    return res


def _initial_quiet(args: argparse.Namespace) -> dict:
    deadline = time.monotonic() + args.quiet_timeout
    while True:
        q = procs.wait_quiet(args.max_busy, max(deadline - time.monotonic(), 0), say)
        if q["load1"] <= args.max_load or time.monotonic() >= deadline:
            return q
        say(f"  load average {q['load1']:.2f} > {args.max_load}: waiting")
        time.sleep(10)


def write(results: dict, out_dir: Path) -> Path:
    results["targets"] = report.targets(results)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{results['meta']['date']}-{results['meta']['label']}"
    chart = out_dir / f"{stem}.png"
    has_chart = report.chart(results, chart)
    (out_dir / f"{stem}.json").write_text(json.dumps(results, indent=1) + "\n")
    md_path = out_dir / f"{stem}.md"
    md_path.write_text(report.markdown(results, chart.name if has_chart else None))
    return md_path


def update_docs(md_path: Path) -> None:
    """Replace the generated block of docs/performance.md with this run's report."""
    docs = REPO / "docs" / "performance.md"
    text = docs.read_text()
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    if start not in text or end not in text:
        raise SystemExit(f"{docs} has no {start} ... {end} block")
    md_path = md_path.resolve()
    stem = f"../{md_path.relative_to(REPO)}" if md_path.is_relative_to(REPO) else str(md_path)
    stem = stem[: -len(".md")]
    body = md_path.read_text().split("\n", 1)[1]  # the docs page has its own title
    body = body.replace("\n## ", "\n### ").replace(f"]({md_path.stem}.png)", f"]({stem}.png)")
    block = f"{start}\nLatest run: [{md_path.name}]({stem}.md) ([JSON]({stem}.json)).\n\n{body.strip()}\n{end}"
    head, rest = text.split(start, 1)
    docs.write_text(head + block + rest.split(end, 1)[1])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
        if args.compare:
            results["compare"] = compare.load(Path(args.compare))
    else:
        t0 = time.monotonic()
        results = run(args)
        results["meta"]["wall_s"] = round(time.monotonic() - t0)
    try:
        md_path = write(results, Path(args.out))
    except Exception:  # keep the measurements when the report cannot be written
        raw = Path(args.out) / f"{results['meta']['date']}-{results['meta']['label']}-raw.json"
        raw.parent.mkdir(parents=True, exist_ok=True)
        raw.write_text(json.dumps(results, indent=1) + "\n")
        say(f"the report failed; the raw results are in {raw}")
        raise
    if args.update_docs:
        update_docs(md_path)
    say(f"results: {md_path} (+ .json, .png) in {results['meta']['wall_s']} s")
    for t in results["targets"]:
        verdict = "not measured" if t["pass"] is None else ("pass" if t["pass"] else "MISS")
        value = t.get("note") or f"{t['value']} {t['unit']}"
        print(f"  {verdict:12} {t['target']:32} {t['surface']:18} {value}")
    missed = [t for t in results["targets"] if t["pass"] is False]
    if missed and not args.no_assert:
        say(f"{len(missed)} target(s) missed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
