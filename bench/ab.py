"""The same benchmark scenarios against two gateways in one run: a baseline and this checkout.

    python bench/ab.py --baseline-venv /work/wt/old/.venv           # the full comparison
    python bench/ab.py --baseline-venv /work/wt/old/.venv --quick   # proves it works (~2 min)

*A* is ``PATH/bin/outcrop serve`` from the baseline's virtualenv (e.g. an older commit checked
out with ``git worktree add`` and installed there, see bench/README.md); *B* is the ``outcrop``
beside the Python running this script (this checkout's virtualenv). Both get the config that
``bench/run.py`` writes for features off (master key only, the same deployments on the same
nginx) and run side by side, each pinned to core 0 and idle while the other is measured; nginx
and wrk are on core 1, as in ``bench/run.py``.

For every round, surface and concurrency it measures A then B, or B then A on even rounds (so
neither side always goes first while the machine drifts), each as ``bench/run.py`` does: the
direct nginx call, then the gateway, retried when other processes used the CPU meanwhile
(``harness/measure.pair``). The report gives each figure's median over the rounds for A and B
and the ratio B / A: throughput (req/s at the top concurrency), the gateway's CPU per request
(``/proc`` utime + stime over the run, the least noisy figure on a shared machine), and the
added latency p50 / p99 (gateway minus direct). "Within 5 %" means req/s ratio ≥ 0.95 and the
CPU and latency ratios ≤ 1.05.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import gateway as gw
from harness import measure, procs
from harness.nginx import Nginx
from harness.session import validate
from harness.stats import median, r
from harness.surfaces import Surface, all_surfaces

#: The scenarios issues 9 and 10 hold to "within 5 % of before" (features off).
DEFAULT_SURFACES = "converse,agent,converse_stream"
#: Figure -> (how it is read from one measure.pair run, True when higher is better).
FIGURES = {
    "rps": (lambda run: run["gateway"]["rps"], True),
    "cpu_ms_per_request": (lambda run: run["gateway"]["cpu_ms_per_request"], False),
    "added_p50_ms": (lambda run: run["added_ms"]["p50"], False),
    "added_p99_ms": (lambda run: run["added_ms"]["p99"], False),
}


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--baseline-venv",
        required=True,
        type=Path,
        help="virtualenv of the baseline gateway (its bin/outcrop is side A)",
    )
    p.add_argument(
        "--surfaces", default=DEFAULT_SURFACES, help=f"comma list (default {DEFAULT_SURFACES})"
    )
    p.add_argument("--concurrency", default="1,32", help="connections per wrk run (default 1,32)")
    p.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    p.add_argument("--rounds", type=int, default=4, help="A/B rounds (default 4, minimum 2)")
    procs.add_quiet_options(p)
    p.add_argument(
        "--quick",
        action="store_true",
        help="prove the set-up works: 1 s runs, 2 rounds, no waiting for a quiet machine "
        "(its figures mean nothing)",
    )
    p.add_argument(
        "--same-plugins",
        action="store_true",
        help="load in B only the plugins installed in A (OUTCROP_PLUGINS): the core and those "
        "plugins compared, without what later plugins (keys, ...) add",
    )
    p.add_argument("--json", type=Path, help="also write every run's figures here")
    args = p.parse_args(argv)
    args.baseline = args.baseline_venv / "bin" / "outcrop"
    if not args.baseline.is_file():
        p.error(f"--baseline-venv: no {args.baseline}")
    if args.quick:
        args.duration, args.rounds = 1, 2
        args.quiet_timeout, args.max_foreign, args.max_busy = 0.0, 1.0, 1.0
        procs.QUIET_SAMPLE_S = 0.5
    if args.rounds < 2:
        p.error("--rounds: at least 2 (each side goes first once)")
    args.concurrency = sorted({int(c) for c in args.concurrency.split(",")})
    keys = args.surfaces.split(",")
    known = {s.key: s for s in all_surfaces()}
    unknown = [k for k in keys if k not in known]
    if unknown:
        p.error(f"--surfaces: unknown {unknown}; known: {sorted(known)}")
    args.surface_list = [known[k] for k in keys]
    return args


def version_of(outcrop: Path) -> str:
    out = subprocess.run([str(outcrop), "--version"], capture_output=True, text=True)
    return (out.stdout or out.stderr).strip()


def plugins_of(outcrop: Path) -> list[str]:
    """The entry-point names ``outcrop plugins --json`` lists."""
    out = subprocess.run([str(outcrop), "plugins", "--json"], capture_output=True, text=True)
    return [p["name"] for p in json.loads(out.stdout)]


def git_of(outcrop: Path) -> str:
    """The commit of the checkout the ``outcrop`` package of that virtualenv was installed from
    (editable installs), else ''."""
    code = "import outcrop, pathlib; print(pathlib.Path(outcrop.__file__).resolve().parent)"
    python = outcrop.with_name("python")
    where = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    folder = where.stdout.strip()
    if not folder:
        return ""
    head = subprocess.run(
        ["git", "-C", folder, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return head.stdout.strip()


class Side:
    """One gateway of the comparison."""

    def __init__(self, name: str, outcrop: Path, workdir: Path, config: Path) -> None:
        self.name, self.outcrop = name, outcrop
        self.gateway = gw.Gateway(workdir, config)
        port = str(self.gateway.port)
        self.gateway.argv = [str(outcrop), "serve", "--config", str(config), "--host", "127.0.0.1"]
        self.gateway.argv += ["--port", port]
        self.gateway.log = workdir / f"gateway-{name}.log"

    def target(self) -> measure.Target:
        g = self.gateway
        return measure.Target(
            self.name, g.url, g.port, lambda: [g.pid, *procs.children(g.pid)], None
        )


def compare(args: argparse.Namespace) -> dict:
    procs.pin_self(procs.LOAD_CORE)
    workdir = Path(tempfile.mkdtemp(prefix="outcrop-ab-"))
    workdir.chmod(0o755)  # nginx's worker runs as an unprivileged user when we are root
    nginx = Nginx(workdir)
    sides: list[Side] = []
    results: dict = {
        "meta": {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "command": "python bench/ab.py " + " ".join(sys.argv[1:]),
            "A": {"outcrop": str(args.baseline), "version": version_of(args.baseline)},
            "B": {"outcrop": gw.OUTCROP, "version": version_of(Path(gw.OUTCROP))},
            "duration_s": args.duration,
            "rounds": args.rounds,
            "concurrency": args.concurrency,
            "load_start": procs.loadavg(),
        },
        "surfaces": {},
    }
    for name, outcrop in (("A", args.baseline), ("B", Path(gw.OUTCROP))):
        results["meta"][name]["git"] = git_of(outcrop)
        results["meta"][name]["plugins"] = plugins_of(outcrop)
    b_env = {}
    if args.same_plugins:
        b_env["OUTCROP_PLUGINS"] = ",".join(results["meta"]["A"]["plugins"])
        results["meta"]["B"]["plugins"] = results["meta"]["A"]["plugins"]
    results["meta"]["B"]["env"] = b_env

    def ours() -> list[int]:
        pids = list(nginx.pids) if nginx.proc else []
        for g in (side.gateway for side in sides):
            if g.proc is not None and g.proc.poll() is None:
                pids += [g.proc.pid, *procs.children(g.proc.pid)]
        return pids

    opts = measure.Options(
        args.duration,
        args.rounds,
        args.max_busy,
        args.max_foreign,
        args.quiet_timeout,
        workdir,
        say,
        ours,
    )
    try:
        nginx.start()
        # Each side has its own copy of the config: a master key turns outcrop-keys on where
        # it is installed, and its SQLite database goes beside the config.
        for name, outcrop in (("A", args.baseline), ("B", Path(gw.OUTCROP))):
            folder = workdir / name
            folder.mkdir()
            config = gw.write_config(folder / "outcrop.yaml", args.surface_list, nginx.url, None)
            side = Side(name, outcrop, folder, config)
            side.gateway.env = b_env if name == "B" else {}
            sides.append(side)
            say(f"starting {side.name}: {' '.join(side.gateway.argv[:2])}")
            side.gateway.start()
        surfaces = _validated(args.surface_list, nginx, sides, results)
        direct = measure.Target("direct", nginx.url, nginx.port, lambda: nginx.pids)
        for side in sides:
            for s in surfaces:
                measure.warm(opts, side.target(), [s.gateway_request()], 1 if args.quick else 3)
        _rounds(args, opts, surfaces, direct, sides, results)
    except Exception:
        say(f"failed; logs kept in {workdir}")
        for side in sides:
            say(f"{side.name} log tail:\n{side.gateway.log_tail()}")
        raise
    finally:
        for side in sides:
            side.gateway.stop()
        nginx.stop()
    shutil.rmtree(workdir, ignore_errors=True)
    results["meta"]["load_end"] = procs.loadavg()
    return results


def _validated(
    surfaces: list[Surface], nginx: Nginx, sides: list[Side], results: dict
) -> list[Surface]:
    ok = []
    for s in surfaces:
        problems = {side.name: validate(s, nginx.port, side.gateway.port) for side in sides}
        entry = results["surfaces"][s.key] = {"title": s.title}
        bad = {k: v for k, v in problems.items() if v}
        if bad:
            entry["status"] = f"not measured: {bad}"
            say(f"  {s.key}: NOT measured: {bad}")
        else:
            entry["status"] = "measured"
            ok.append(s)
    return ok


def _rounds(
    args: argparse.Namespace,
    opts: measure.Options,
    surfaces: list[Surface],
    direct: measure.Target,
    sides: list[Side],
    results: dict,
) -> None:
    for rnd in range(1, args.rounds + 1):
        order = sides if rnd % 2 else sides[::-1]
        for s in surfaces:
            for c in args.concurrency:
                for side in order:
                    say(f"round {rnd}/{args.rounds} {s.key} c={c} {side.name}")
                    run = measure.pair(
                        opts,
                        s,
                        c,
                        direct,
                        side.target(),
                        side.gateway.pid,
                        f"{side.name}-{s.key}-c{c}-r{rnd}",
                    )
                    run["round"] = rnd
                    say(
                        f"    {run['gateway']['rps']:.0f} req/s, "
                        f"{run['gateway']['cpu_ms_per_request']:.4f} ms CPU/request, added p50 "
                        f"{run['added_ms']['p50']:.3f} ms, errors {run['gateway']['errors']}"
                    )
                    entry = results["surfaces"][s.key].setdefault("runs", {})
                    entry.setdefault(f"{side.name} c={c}", []).append(run)
                    for g in sides:
                        if g.gateway.proc is not None and g.gateway.proc.poll() is not None:
                            raise RuntimeError(f"{g.name} exited ({g.gateway.proc.returncode})")
    for s in surfaces:
        results["surfaces"][s.key]["summary"] = summarize(
            results["surfaces"][s.key]["runs"], args.concurrency
        )


def summarize(runs: dict[str, list[dict]], concurrency: list[int]) -> dict:
    """Per concurrency and figure: A's and B's medians over the rounds and B / A."""
    out: dict = {}
    for c in concurrency:
        figures = {}
        for name, (pick, higher_better) in FIGURES.items():
            a = median([pick(x) for x in runs[f"A c={c}"]])
            b = median([pick(x) for x in runs[f"B c={c}"]])
            ratio = b / a if a else float("nan")
            within = ratio >= 0.95 if higher_better else ratio <= 1.05
            figures[name] = {"A": r(a, 4), "B": r(b, 4), "ratio": r(ratio), "within_5pct": within}
        noisy = sum(x["noisy"] for side in ("A", "B") for x in runs[f"{side} c={c}"])
        out[str(c)] = {"figures": figures, "noisy_runs": noisy}
    return out


def report(results: dict) -> str:
    meta = results["meta"]
    lines = [
        f"A (baseline): {meta['A']['version']} at {meta['A'].get('git') or '?'} "
        f"({meta['A']['outcrop']})",
        f"B (this checkout): {meta['B']['version']} at {meta['B'].get('git') or '?'} "
        f"({meta['B']['outcrop']}{', ' + str(meta['B']['env']) if meta['B']['env'] else ''})",
        f"plugins: A {', '.join(meta['A']['plugins'])}; B {', '.join(meta['B']['plugins'])}",
        f"{meta['rounds']} rounds of {meta['duration_s']} s runs, A/B order alternating; "
        f"load average {meta['load_start'][0]:.2f} at start, {meta['load_end'][0]:.2f} at end",
        "",
        "| surface | c | figure | A | B | B / A | within 5 % |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, entry in results["surfaces"].items():
        if "summary" not in entry:
            lines.append(f"| {key} | | {entry['status']} | | | | |")
            continue
        for c, row in entry["summary"].items():
            for name, f in row["figures"].items():
                lines.append(
                    f"| {key} | {c} | {name} | {f['A']} | {f['B']} | {f['ratio']:.3f} | "
                    f"{'yes' if f['within_5pct'] else '**no**'} |"
                )
            if row["noisy_runs"]:
                lines.append(f"| {key} | {c} | noisy runs kept | {row['noisy_runs']} | | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = compare(args)
    text = report(results)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
