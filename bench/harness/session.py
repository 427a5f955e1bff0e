"""One benchmark session: the servers it starts and the phases it runs, in order.

upstreams (nginx + delayed) -> Outcrop: validate, warm, latency/throughput matrix, streams, soak
-> optional other ASGI servers (same app) -> optional LiteLLM. Every server it starts is
stopped (by pid) whatever happens.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from . import gateway as gw
from . import litellm_side, measure, procs, summary
from .nginx import Nginx
from .probe import Connection
from .stats import r
from .surfaces import Surface

BENCH = Path(__file__).resolve().parent.parent


def validate(surface: Surface, direct_port: int, port: int, model: str | None = None) -> str | None:
    """One request each way; both must answer 200 with the canned answer's text."""
    for name, p, req, markers in (
        ("direct", direct_port, surface.direct_request(), surface.direct_markers),
        ("gateway", port, surface.gateway_request(model), surface.gateway_markers),
    ):
        try:
            conn = Connection("127.0.0.1", p)
            t = conn.request(req, markers)
            conn.close()
        except OSError as exc:
            return f"{name} request failed: {exc}"
        if t.status != 200 or not t.complete:
            return f"{name} request answered {t.status} without the expected text: {t.body[:300]!r}"
    return None


class Session:
    def __init__(self, args: argparse.Namespace, say: Callable[[str], None]) -> None:
        self.args, self.say = args, say
        self.workdir = Path(tempfile.mkdtemp(prefix="outcrop-bench-"))
        self.workdir.chmod(0o755)  # nginx's worker runs as an unprivileged user when we are root
        self.nginx = Nginx(self.workdir)
        self.slow: subprocess.Popen[bytes] | None = None
        self.slow_port = procs.free_port()
        self.server: gw.Gateway | None = None  # the gateway (or LiteLLM) being measured
        self.opts = measure.Options(
            args.duration,
            args.repeats,
            args.max_busy,
            args.max_foreign,
            args.quiet_timeout,
            self.workdir,
            say,
            self.our_pids,
        )
        self.results: dict = {"surfaces": {}, "memory": {}}

    # --- processes ------------------------------------------------------------------------------

    def our_pids(self) -> list[int]:
        pids = list(self.nginx.pids) if self.nginx.proc else []
        for proc in (self.slow, self.server and self.server.proc):
            if proc is not None and proc.poll() is None:
                pids += [proc.pid, *procs.children(proc.pid)]
        return pids

    def direct(self) -> measure.Target:
        return measure.Target("direct", self.nginx.url, self.nginx.port, lambda: self.nginx.pids)

    def target(self, name: str) -> measure.Target:
        server = self.server
        assert server is not None and server.proc is not None
        return measure.Target(
            name, server.url, server.port, lambda: [server.pid, *procs.children(server.pid)]
        )

    def start_upstreams(self) -> None:
        self.nginx.start()
        self.slow = procs.launch(
            [
                sys.executable,
                "-m",
                "harness.slowup",
                "--port",
                str(self.slow_port),
                "--delay",
                str(self.args.delay),
            ],
            procs.LOAD_CORE,
            self.workdir / "slowup.log",
            cwd=str(BENCH),
        )
        procs.wait_http(f"http://127.0.0.1:{self.slow_port}/", timeout=20, proc=self.slow)

    def stop_all(self) -> None:
        if self.server is not None:
            self.server.stop()
        procs.stop(self.slow)
        self.nginx.stop()

    def check_alive(self) -> None:
        s = self.server
        if s is not None and s.proc is not None and s.proc.poll() is not None:
            raise RuntimeError(f"{s.argv[0]} exited ({s.proc.returncode}):\n{s.log_tail()}")

    @property
    def delayed_url(self) -> str:
        return f"http://127.0.0.1:{self.slow_port}"

    # --- shared steps ---------------------------------------------------------------------------

    def validate_all(
        self, surfaces: list[Surface], port: int, store: dict, who: str
    ) -> list[Surface]:
        ok = []
        for s in surfaces:
            problem = validate(s, self.nginx.port, port)
            if problem is None and s.stream:
                problem = validate(s, self.slow_port, port, s.model_name + gw.DELAYED)
            entry = store.setdefault(s.key, {})
            if problem:
                entry["status"] = f"not measured: {who} {problem}"
                self.say(f"  {who} {s.key}: NOT measured: {problem}")
            else:
                entry["status"] = "measured"
                ok.append(s)
        return ok

    def matrix(
        self,
        surfaces: list[Surface],
        target: measure.Target,
        concurrency: list[int],
        store: dict,
        who: str,
    ) -> None:
        """Direct/gateway pairs for every surface and concurrency, ``repeats`` times over."""
        assert self.server is not None
        for rep in range(1, self.args.repeats + 1):
            for s in surfaces:
                for c in concurrency:
                    self.say(f"{who} run {rep}/{self.args.repeats} {s.key} c={c}")
                    run = measure.pair(
                        self.opts,
                        s,
                        c,
                        self.direct(),
                        target,
                        self.server.pid,
                        f"{who}-{s.key}-c{c}-r{rep}",
                    )
                    run["rep"] = rep
                    store[s.key].setdefault("runs", []).append(run)
                    self.say(
                        f"    added p50 {run['added_ms']['p50']:.3f} ms p99 {run['added_ms']['p99']:.3f} ms, "
                        f"{run['gateway']['rps']:.0f} req/s (direct {run['direct']['rps']:.0f}), "
                        f"errors {run['gateway']['errors']}"
                    )
                    self.check_alive()
        for s in surfaces:
            store[s.key]["summary"] = summary.latency_runs(store[s.key]["runs"])

    def streams(
        self, surfaces: list[Surface], target: measure.Target, store: dict, first_byte: bool
    ) -> None:
        a = self.args
        for rep in range(1, a.repeats + 1):
            for s in surfaces:
                self.say(f"{target.name} stream timing {rep}/{a.repeats} {s.key}")
                if first_byte:
                    fb = measure.first_byte(self.opts, s, self.nginx.port, target, a.ttfb_samples)
                    store[s.key].setdefault("first_byte", []).append(fb)
                dl = measure.delayed(
                    self.opts, s, self.slow_port, target, s.model_name + gw.DELAYED, a.delay, 3
                )
                store[s.key].setdefault("delayed", []).append(dl)
        for s in surfaces:
            if first_byte:
                store[s.key]["first_byte_summary"] = summary.stream_runs(store[s.key]["first_byte"])
            store[s.key]["delayed_summary"] = summary.stream_runs(store[s.key]["delayed"])

    def warm(self, surfaces: list[Surface], target: measure.Target, seconds: float = 2.0) -> None:
        self.say(f"warming up {target.name}")
        for s in surfaces:
            measure.warm(self.opts, target, [s.gateway_request()], seconds)
            measure.warm(self.opts, self.direct(), [s.direct_request()], 1.0)
        time.sleep(3)

    # --- phases ---------------------------------------------------------------------------------

    def outcrop(self, measured: list[Surface]) -> list[Surface]:
        a, res = self.args, self.results
        config = gw.write_config(
            self.workdir / "outcrop.yaml", measured, self.nginx.url, self.delayed_url
        )
        self.server = gw.Gateway(self.workdir, config, extra_args=a.serve_args)
        self.say("starting the gateway (1 worker, core 0)")
        try:
            self.server.start()
        except (RuntimeError, TimeoutError) as exc:
            why = f"not measured: the gateway did not start ({exc}): {self.server.log_tail(8)}"
            for s in measured:
                res["surfaces"][s.key]["status"] = why
            self.say(why)
            self.server.stop()
            self.server = None
            return []
        time.sleep(2)
        res["memory"]["rss_fresh_mb"] = r(procs.rss_mb(self.server.pid), 1)
        target = self.target("outcrop")
        ok = self.validate_all(measured, self.server.port, res["surfaces"], "outcrop")
        if not ok:
            return ok
        self.warm(ok, target)
        res["memory"]["rss_idle_mb"] = r(procs.rss_mb(self.server.pid), 1)
        self.matrix(ok, target, a.concurrency, res["surfaces"], "outcrop")
        res["memory"]["rss_under_load_peak_mb"] = max(
            x["gateway"]["rss_peak_mb"] for s in ok for x in res["surfaces"][s.key]["runs"]
        )
        self.streams([s for s in ok if s.stream], target, res["surfaces"], first_byte=True)
        if a.soak > 0:
            self.say(f"soak: {a.soak:g} s, all surfaces in turn, c=32")
            soak = res["memory"]["soak"] = measure.soak(
                self.opts, ok, target, self.server.pid, a.soak
            )
            self.say(
                f"    RSS settled {soak['rss_after_settle_mb']} MB -> end {soak['rss_end_mb']} MB, "
                f"{soak['rps']:.0f} req/s, errors {soak['errors']}"
            )
        self.check_alive()
        self.server.stop()
        self.server = None
        return ok

    def other_server(self, name: str, ok: list[Surface]) -> None:
        """The same app, config and surfaces under another ASGI server (c=1 and the top c)."""
        out: dict = {"surfaces": {}}
        self.results.setdefault("servers", {})[name] = out
        config = self.workdir / "outcrop.yaml"
        try:
            self.server, out["launch"] = gw.alternative_server(name, config, self.workdir)
            self.say(f"starting the gateway under {name} (1 worker, core 0)")
            self.server.start()
        except (RuntimeError, TimeoutError) as exc:
            out["status"] = f"not measured: {exc}"
            self.say(f"  {name}: {out['status']}")
            if self.server is not None:
                self.server.stop()
            self.server = None
            return
        out["status"] = "measured"
        target = self.target(name)
        good = self.validate_all(ok, self.server.port, out["surfaces"], name)
        self.warm(good, target)
        out["rss_idle_mb"] = r(procs.rss_mb(self.server.pid), 1)
        self.matrix(good, target, sorted({1, max(self.args.concurrency)}), out["surfaces"], name)
        self.server.stop()
        self.server = None

    def litellm(self, ok: list[Surface]) -> None:
        a = self.args
        out: dict = {"surfaces": {}}
        self.results["litellm"] = out
        venv = Path(a.litellm_venv)
        try:
            litellm_side.ensure_venv(venv, self.say)
        except (subprocess.CalledProcessError, OSError) as exc:
            out["status"] = f"could not install litellm[proxy]: {exc}"
            return
        out["version"] = litellm_side.version(venv)
        config = litellm_side.write_config(
            self.workdir / "litellm.yaml", ok, self.nginx.url, self.delayed_url
        )
        server = self.server = litellm_side.LiteLLM(self.workdir, config, venv)
        self.say(f"starting LiteLLM {out['version']} (1 worker, core 0)")
        try:
            server.start()
        except (RuntimeError, TimeoutError) as exc:
            out["status"] = f"LiteLLM did not start: {exc}; log: {server.log_tail(5)}"
            server.stop()
            self.server = None
            return
        out["status"] = "measured"
        out["rss_idle_mb"] = r(procs.rss_mb(server.pid), 1)
        target = self.target("litellm")
        good = self.validate_all(ok, server.port, out["surfaces"], "LiteLLM")
        self.warm(good, target, 3.0)
        top = max(a.concurrency)
        self.matrix(good, target, sorted({1, top}), out["surfaces"], "litellm")
        self.streams([s for s in good if s.stream], target, out["surfaces"], first_byte=False)
        for s in good:
            entry = out["surfaces"][s.key]
            mine = self.results["surfaces"][s.key]["summary"]["rps"].get(str(top))
            theirs = entry["summary"]["rps"][str(top)]["gateway"]
            if mine and theirs:
                entry["ratio_rps_outcrop_over_litellm"] = r(mine["gateway"] / theirs, 2)
            entry["errors"] = sum(x["gateway"]["errors"] for x in entry["runs"])
        out["rss_after_mb"] = r(procs.rss_mb(server.pid), 1)
        server.stop()
        self.server = None

    def all_runs(self) -> list[dict]:
        groups = [*self.results["surfaces"].values()]
        for extra in (self.results.get("litellm", {}), *self.results.get("servers", {}).values()):
            groups += extra.get("surfaces", {}).values()
        return [run for s in groups for run in s.get("runs", [])]

    def max_foreign(self) -> float:
        return max(
            (
                max(x["direct"]["foreign_cpu_share"], x["gateway"]["foreign_cpu_share"])
                for x in self.all_runs()
            ),
            default=0.0,
        )

    def noisy_runs(self) -> int:
        return sum(1 for x in self.all_runs() if x.get("noisy"))
