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

from . import canned, features, litellm_side, measure, procs, scaling, summary
from . import gateway as gw
from .nginx import Nginx
from .probe import Connection
from .stats import r
from .surfaces import Surface, long_streams

BENCH = Path(__file__).resolve().parent.parent


def validate(
    surface: Surface,
    direct_port: int,
    port: int,
    model: str | None = None,
    api_key: str | None = None,
) -> str | None:
    """One request each way; both must answer 200 with the canned answer's text."""
    for name, p, req, markers in (
        ("direct", direct_port, surface.direct_request(), surface.direct_markers),
        ("gateway", port, surface.gateway_request(model, api_key), surface.gateway_markers),
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
        self.sink: features.OtlpSink | None = None
        # The machine's Redis (the features' limits, LiteLLM's router) on the load core, never
        # on the gateway's: its CPU is the benchmark's, not another process's (foreign).
        self.redis = procs.Placed(procs.named("redis-server"), procs.LOAD_CORE)

    # --- processes ------------------------------------------------------------------------------

    def our_pids(self) -> list[int]:
        pids = list(self.nginx.pids) if self.nginx.proc else []
        pids += self.redis.pids
        for proc in (self.slow, self.server and self.server.proc, self.sink and self.sink.proc):
            if proc is not None and proc.poll() is None:
                pids += [proc.pid, *procs.children(proc.pid)]
        return pids

    def direct(self) -> measure.Target:
        return measure.Target("direct", self.nginx.url, self.nginx.port, lambda: self.nginx.pids)

    def target(self, name: str, api_key: str | None = None) -> measure.Target:
        server = self.server
        assert server is not None and server.proc is not None
        return measure.Target(
            name,
            server.url,
            server.port,
            lambda: [server.pid, *procs.children(server.pid)],
            api_key,
        )

    def start_upstreams(self) -> None:
        self.redis.place()
        self.results["redis"] = {
            "pids": self.redis.pids,
            "core": procs.LOAD_CORE,
            **({"problem": self.redis.problem} if self.redis.problem else {}),
        }
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
        if self.sink is not None:
            self.sink.stop()
        procs.stop(self.slow)
        self.nginx.stop()
        self.redis.restore()

    def check_alive(self) -> None:
        s = self.server
        if s is not None and s.proc is not None and s.proc.poll() is not None:
            raise RuntimeError(f"{s.argv[0]} exited ({s.proc.returncode}):\n{s.log_tail()}")

    @property
    def delayed_url(self) -> str:
        return f"http://127.0.0.1:{self.slow_port}"

    # --- shared steps ---------------------------------------------------------------------------

    def validate_all(
        self, surfaces: list[Surface], port: int, store: dict, who: str, api_key: str | None = None
    ) -> list[Surface]:
        ok = []
        for s in surfaces:
            problem = validate(s, self.nginx.port, port, api_key=api_key)
            if problem is None and s.stream:
                problem = validate(s, self.slow_port, port, s.model_name + gw.DELAYED, api_key)
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
                    self.opts,
                    s,
                    self.slow_port,
                    target,
                    s.model_name + gw.DELAYED,
                    a.delay,
                    1 if a.quick else 3,
                )
                store[s.key].setdefault("delayed", []).append(dl)
        for s in surfaces:
            if first_byte:
                store[s.key]["first_byte_summary"] = summary.stream_runs(store[s.key]["first_byte"])
            store[s.key]["delayed_summary"] = summary.stream_runs(store[s.key]["delayed"])

    def warm(self, surfaces: list[Surface], target: measure.Target, seconds: float = 2.0) -> None:
        self.say(f"warming up {target.name}")
        if self.args.quick:
            seconds = 1.0
        for s in surfaces:
            measure.warm(self.opts, target, [s.gateway_request(api_key=target.api_key)], seconds)
            if not self.args.quick:  # nginx serves static files: --quick spares it the warm-up
                measure.warm(self.opts, self.direct(), [s.direct_request()], 1.0)
        time.sleep(1 if self.args.quick else 3)

    # --- phases ---------------------------------------------------------------------------------

    def outcrop(self, measured: list[Surface]) -> list[Surface]:
        """Features off (the master key): every figure. With ``--features on`` alone it only
        checks which surfaces answer; the features-on stages then measure them."""
        a, res = self.args, self.results
        longs = long_streams(measured)
        config = gw.write_config(
            self.workdir / "outcrop.yaml", measured, self.nginx.url, self.delayed_url, longs
        )
        self.server = gw.Gateway(
            self.workdir, config, extra_args=[*gw.server_args(a.server), *a.serve_args]
        )
        self.say(f"starting the gateway ({a.server}, 1 worker, core 0)")
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
        time.sleep(1 if a.quick else 2)
        res["memory"]["rss_fresh_mb"] = r(procs.rss_mb(procs.serving_pid(self.server.pid)), 1)
        target = self.target("outcrop")
        ok = self.validate_all(measured, self.server.port, res["surfaces"], "outcrop")
        if not ok or a.features == "on":
            for s in ok:
                res["surfaces"][s.key]["status"] = (
                    "answers; features off not measured (--features on)"
                )
            self.server.stop()
            self.server = None
            return ok
        self.warm(ok, target)
        res["memory"]["rss_idle_mb"] = r(procs.rss_mb(procs.serving_pid(self.server.pid)), 1)
        self.matrix(ok, target, a.concurrency, res["surfaces"], "outcrop")
        res["memory"]["rss_under_load_peak_mb"] = max(
            x["gateway"]["rss_peak_mb"] for s in ok for x in res["surfaces"][s.key]["runs"]
        )
        self.streams([s for s in ok if s.stream], target, res["surfaces"], first_byte=True)
        self.long_streams(ok, target, res)
        if a.soak > 0 and a.features == "off":
            self.soak(ok, target, res["memory"])
        self.check_alive()
        self.server.stop()
        self.server = None
        return ok

    def soak(self, ok: list[Surface], target: measure.Target, store: dict) -> None:
        assert self.server is not None
        a = self.args
        self.say(f"soak: {a.soak:g} s, all surfaces in turn, c=32 ({target.name})")
        soak = store["soak"] = measure.soak(self.opts, ok, target, self.server.pid, a.soak)
        soak["gateway"] = target.name
        self.say(
            f"    RSS settled {soak['rss_after_settle_mb']} MB -> end {soak['rss_end_mb']} MB, "
            f"slope after settling {soak['slope_mb_per_min_after_settle']} MB/min, "
            f"{soak['rps']:.0f} req/s, errors {soak['errors']}"
        )

    def long_streams(self, ok: list[Surface], target: measure.Target, res: dict) -> None:
        """Per-event overhead: each ConverseStream surface answered with a 1,000-event stream."""
        out = res.setdefault("per_event", {})
        for short in ok:
            for long in long_streams([short]):
                problem = validate(long, self.nginx.port, target.port, api_key=target.api_key)
                if problem:
                    out[short.key] = {"title": long.title, "status": f"not measured: {problem}"}
                    self.say(f"  {long.key}: NOT measured: {problem}")
                    continue
                reps = []
                for rep in range(1, self.args.repeats + 1):
                    self.say(f"{target.name} per-event timing {rep}/{self.args.repeats} {long.key}")
                    reps.append(
                        measure.per_event(
                            self.opts,
                            long,
                            short,
                            self.nginx.port,
                            target,
                            self.args.long_samples,
                            canned.LONG_EVENTS,
                        )
                    )
                out[short.key] = {
                    "title": long.title,
                    "status": "measured",
                    "runs": reps,
                    "summary": summary.stream_runs(reps),
                }

    def features(self, ok: list[Surface]) -> None:
        """The features-on stages (harness/features.py): each feature's cost, then everything on
        under each server; the soak runs on the everything-on gateway."""
        a = self.args
        out = self.results["features"] = {
            "database": "postgresql" if a.features_database else "sqlite",
            "titles": features.TITLES,
            "stages": {},
        }
        self.sink = features.OtlpSink(self.workdir)
        self.sink.start()
        delta = [s for s in ok if s.key in a.feature_surfaces]
        edge = sorted({1, max(a.concurrency)})
        plan = [(stage, a.server, delta, edge) for stage in ("key", "limit")]
        plan.append(("all", a.server, ok, a.concurrency))
        plan += [("all", name, delta, edge) for name in a.also_server]
        for stage, server, surfaces, conc in plan:
            entry = out["stages"][f"{stage}/{server}"] = {
                "stage": stage,
                "server": server,
                "title": features.TITLES[stage],
                "surfaces": {},
            }
            self.feature_stage(entry, surfaces, conc, soak=stage == "all" and server == a.server)
        self.sink.stop()
        self.sink = None

    def feature_stage(
        self, entry: dict, surfaces: list[Surface], conc: list[int], soak: bool
    ) -> None:
        a = self.args
        stage, server = entry["stage"], entry["server"]
        who = f"features-{stage}-{server}"
        folder = self.workdir / who
        folder.mkdir(exist_ok=True)
        if a.features_database:
            features.reset_postgres(a.features_database)
        config = features.write_config(
            self.workdir / "outcrop.yaml", stage, folder, a.features_database
        )
        try:
            self.server = gw.Gateway(folder, config, extra_args=gw.server_args(server))
            if stage == "all":
                assert self.sink is not None
                self.server.env = features.otel_env(self.sink.url)
            self.say(f"starting the gateway: {features.TITLES[stage]} ({server}, core 0)")
            t0 = time.monotonic()
            self.server.start()
            entry["ready_s"] = r(time.monotonic() - t0, 2)
            key = features.generate_key(self.server.url, stage)
        except (RuntimeError, TimeoutError, OSError) as exc:
            tail = self.server.log_tail(8) if self.server else ""
            entry["status"] = f"not measured: the gateway did not start ({exc}): {tail}"
            self.say(entry["status"])
            if self.server is not None:
                self.server.stop()
            self.server = None
            return
        entry["status"] = "measured"
        entry["key_request"] = key["request"]
        target = self.target(who, key["key"])
        good = self.validate_all(surfaces, self.server.port, entry["surfaces"], who, key["key"])
        self.warm(good, target)
        entry["rss_idle_mb"] = r(procs.rss_mb(procs.serving_pid(self.server.pid)), 1)
        self.matrix(good, target, conc, entry["surfaces"], who)
        if soak and a.soak > 0:
            self.soak(good, target, entry)
        requests = sum(
            x["gateway"]["requests"] for s in good for x in entry["surfaces"][s.key]["runs"]
        )
        proof: dict = {"requests_measured": requests}
        if stage == "all":
            proof["prometheus"] = features.scrape(self.server.url)
        self.check_alive()
        self.server.stop()
        self.server = None
        if stage == "all":
            assert self.sink is not None
            time.sleep(0.5)
            proof["otlp_sink"] = self.sink.stats()  # cumulative over the run's "all" stages
        proof["spend_rows"] = features.spend_rows(config, a.features_database)
        entry["proof"] = proof
        self.say(f"    proof: {proof}")

    def startup(self) -> None:
        """Start-up to ready, import time and idle RSS, every installed plugin (keys, Prometheus,
        OpenTelemetry on) and the core alone: ``bench/startup_memory.py``'s measurement, run
        here so the figures land in the same results (its own simulator upstream, in this
        process on the load core; the gateways it starts inherit that core)."""
        import startup_memory  # bench/startup_memory.py, beside run.py

        from outcrop.testing.server import ServerThread
        from outcrop.testing.simulator import BedrockSimulator

        a = self.args
        out = self.results["startup"] = {"plugins": sorted(gw.installed_plugins())}
        setups = [("every plugin", True)] + ([] if a.quick else [("core alone", False)])
        simulator = ServerThread(BedrockSimulator())
        simulator.start()
        try:
            with startup_memory.otlp_sink() as otlp:
                opts = argparse.Namespace(
                    calls=200 if a.quick else 1000, repeat=1 if a.quick else 3, otlp=otlp
                )
                out["calls"], out["starts"] = opts.calls, opts.repeat
                for name, every in setups:
                    procs.wait_quiet(a.max_busy, a.quiet_timeout, self.say)
                    self.say(f"start-up and memory ({name}): bench/startup_memory.py")
                    try:
                        out[name] = startup_memory.measure(name, every, simulator.url, opts)
                    except (RuntimeError, TimeoutError, OSError) as exc:
                        out[name] = {"status": f"not measured: {exc}"}
                    self.say(
                        f"    ready {out[name].get('ready_s', 0):.2f} s, RSS idle "
                        f"{out[name].get('rss_idle_mb', 0):.1f} MB"
                    )
        finally:
            simulator.stop()

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
        out["rss_idle_mb"] = r(procs.rss_mb(procs.serving_pid(self.server.pid)), 1)
        self.matrix(good, target, sorted({1, max(self.args.concurrency)}), out["surfaces"], name)
        self.server.stop()
        self.server = None

    def scaling(self, ok: list[Surface]) -> None:
        """``--workers 1`` then ``--workers 2`` on each server (features off) at the top
        concurrency, and the estimate for ``--estimate-cores`` cores (``harness.scaling``)."""
        a = self.args
        out: dict = self.results.setdefault("scaling", {"servers": {}})
        out["estimate_cores"] = a.estimate_cores
        top = max(a.concurrency)
        surfaces = [s for s in ok if s.key in a.scaling_surfaces]
        config = self.workdir / "outcrop.yaml"
        for name in dict.fromkeys([a.server, *a.also_server]):
            per_server: dict = out["servers"].setdefault(name, {})
            for s in surfaces:
                entry: dict = per_server.setdefault(s.key, {"concurrency": top})
                for n in scaling.COUNTS:
                    who = f"scaling-{name}-{n}w"
                    self.say(f"starting {name} with --workers {n}")
                    try:
                        self.server = scaling.start(self.workdir, config, name, n)
                    except (RuntimeError, TimeoutError) as exc:
                        entry[str(n)] = {"status": f"not measured: {exc}"}
                        self.say(f"  {entry[str(n)]['status']}")
                        if self.server is not None:
                            self.server.stop()
                        self.server = None
                        break
                    target = self.target(who)
                    self.warm([s], target)
                    runs = []
                    for rep in range(1, a.repeats + 1):
                        run = measure.pair(
                            self.opts,
                            s,
                            top,
                            self.direct(),
                            target,
                            self.server.pid,
                            f"{who}-{s.key}-r{rep}",
                        )
                        runs.append(run)
                        self.say(
                            f"    {who} {s.key} c={top}: {run['gateway']['rps']:.0f} req/s, "
                            f"CPU {run['gateway']['cpu_ms_per_request']:.3f} ms/request, "
                            f"errors {run['gateway']['errors']}"
                        )
                    self.server.stop()
                    self.server = None
                    entry[str(n)] = {"status": "measured", "runs": runs, **scaling.summarize(runs)}
                if all(entry.get(str(n), {}).get("status") == "measured" for n in scaling.COUNTS):
                    entry["estimate"] = scaling.estimate(entry["1"], entry["2"], a.estimate_cores)

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
        out["rss_idle_mb"] = r(procs.rss_mb(procs.serving_pid(server.pid)), 1)
        target = self.target("litellm")
        good = self.validate_all(ok, server.port, out["surfaces"], "LiteLLM")
        self.warm(good, target, 3.0)
        top = max(a.concurrency)
        self.matrix(good, target, sorted({1, top}), out["surfaces"], "litellm")
        self.streams([s for s in good if s.stream], target, out["surfaces"], first_byte=False)
        for s in good:
            entry = out["surfaces"][s.key]
            mine = self.results["surfaces"][s.key].get("summary", {}).get("rps", {}).get(str(top))
            theirs = entry["summary"]["rps"][str(top)]["gateway"]
            if mine and theirs:
                entry["ratio_rps_outcrop_over_litellm"] = r(mine["gateway"] / theirs, 2)
            entry["errors"] = sum(x["gateway"]["errors"] for x in entry["runs"])
        out["rss_after_mb"] = r(procs.rss_mb(procs.serving_pid(server.pid)), 1)
        server.stop()
        self.server = None

    def litellm_features(self, ok: list[Surface]) -> None:
        """LiteLLM with its own equivalents of the features-on gateway: each one is tried alone
        first (start, one call, proof it acted); the run measures those that work, together."""
        a = self.args
        out: dict = {"features": {}, "surfaces": {}}
        self.results["litellm_features"] = out
        venv = Path(a.litellm_venv)
        out["version"] = litellm_side.version(venv)
        if self.sink is None:
            self.sink = features.OtlpSink(self.workdir)
            self.sink.start()
        surfaces = [s for s in ok if s.key in a.feature_surfaces]
        if not surfaces:
            out["status"] = "no feature surface was measured"
            return
        working = []
        for eq in litellm_side.EQUIVALENTS:
            self.say(f"LiteLLM: trying its {eq} equivalent alone")
            problem = self.litellm_try(venv, surfaces[0], (eq,))
            out["features"][eq] = "runs here" if problem is None else f"cannot run here: {problem}"
            self.say(f"    {out['features'][eq]}")
            if problem is None:
                working.append(eq)
        if not working:
            out["status"] = "none of LiteLLM's equivalents runs here"
            return
        out["configuration"] = ", ".join(litellm_side.DESCRIPTIONS[eq] for eq in working)
        server = self.litellm_start(venv, ok, tuple(working), "litellm-features")
        if isinstance(server, str):
            out["status"] = f"LiteLLM did not start with {working}: {server}"
            return
        out["status"] = "measured"
        out["rss_idle_mb"] = r(procs.rss_mb(procs.serving_pid(server.pid)), 1)
        target = self.target("litellm-features", self.litellm_key)
        good = self.validate_all(
            surfaces, server.port, out["surfaces"], "LiteLLM", self.litellm_key
        )
        self.warm(good, target, 3.0)
        self.matrix(
            good, target, sorted({1, max(a.concurrency)}), out["surfaces"], "litellm-features"
        )
        server.stop()
        self.server = None

    litellm_key: str | None = None  # a LiteLLM virtual key, when its key store runs

    def litellm_start(
        self, venv: Path, surfaces: list[Surface], equivalents: tuple[str, ...], name: str
    ) -> litellm_side.LiteLLM | str:
        """Start LiteLLM with ``equivalents``; the server, or why it did not start."""
        assert self.sink is not None
        self.litellm_key = None
        folder = self.workdir / name
        folder.mkdir(exist_ok=True)
        config = litellm_side.write_config(
            folder / "litellm.yaml",
            surfaces,
            self.nginx.url,
            self.delayed_url,
            equivalents,
            litellm_side.DATABASE_URL,
        )
        server = self.server = litellm_side.LiteLLM(folder, config, venv)
        if "otel" in equivalents:
            server.env = litellm_side.otel_env(self.sink.url)
        try:
            if "keys" in equivalents:
                features.create_database(litellm_side.DATABASE_URL)
                server.env["DATABASE_URL"] = litellm_side.DATABASE_URL
            server.start(timeout=120)
            if "keys" in equivalents:
                self.litellm_key = litellm_side.generate_key(server.url)
        except Exception as exc:  # whatever stops it (prisma, the database, a refusal) is recorded
            server.stop()
            self.server = None
            return f"{exc}; log: {litellm_side.reason(server.log)}"
        return server

    def litellm_try(self, venv: Path, surface: Surface, equivalents: tuple[str, ...]) -> str | None:
        """Start LiteLLM with one equivalent, make one call, and check it acted."""
        assert self.sink is not None
        before = self.sink.stats()["requests"]
        redis_before = litellm_side.redis_keys()
        server = self.litellm_start(
            venv, [surface], equivalents, "litellm-" + "-".join(equivalents)
        )
        if isinstance(server, str):
            return server
        try:
            problem = validate(surface, self.nginx.port, server.port, api_key=self.litellm_key)
            if problem:
                return problem
            if "prometheus" in equivalents and not litellm_side.has_metrics(server.url):
                return f"/metrics has no litellm_ metric; log: {litellm_side.reason(server.log)}"
            if "redis_limit" in equivalents and litellm_side.redis_keys() <= redis_before:
                return "the call left no counter in Redis"
            if "otel" in equivalents:
                deadline = time.monotonic() + 10
                while self.sink.stats()["requests"] <= before and time.monotonic() < deadline:
                    time.sleep(0.5)
                if self.sink.stats()["requests"] <= before:
                    return "no span reached the OTLP sink within 10 s"
            return None
        finally:
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
