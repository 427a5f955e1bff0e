"""The measurements: each returns plain dicts that go straight into the results JSON.

Every gateway figure is taken next to its direct twin (same path on the same upstream, right
before it), and each pair is retried when someone else's processes used the CPU meanwhile.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import procs, wrk
from .probe import Connection, Timing
from .stats import median, percentile, r, slope_per_minute
from .surfaces import Request, Surface


@dataclass
class Target:
    """Something to send load to: the upstream direct, Outcrop, or LiteLLM."""

    name: str
    url: str
    port: int
    pids: Callable[[], list[int]]
    api_key: str | None = None  # the credential clients send (None: the master key)


@dataclass
class Options:
    duration: float
    repeats: int
    max_busy: float
    max_foreign: float
    quiet_timeout: float
    workdir: Path
    say: Callable[[str], None]
    ours: Callable[[], list[int]]  # every process the benchmark started (for foreign CPU)


def _wrk_figures(res: wrk.WrkResult) -> dict:
    return {
        "p50_ms": r(res.p50_ms),
        "p90_ms": r(res.p90_ms),
        "p99_ms": r(res.p99_ms),
        "p999_ms": r(res.p999_ms),
        "mean_ms": r(res.mean_ms),
        "rps": r(res.rps, 1),
        "requests": res.requests,
        "errors": res.errors,
    }


def _window(opts: Options, target: Target) -> procs.Window:
    mine = set(target.pids())
    return procs.Window({"target": sorted(mine), "ours": [p for p in opts.ours() if p not in mine]})


def _one(
    opts: Options,
    target: Target,
    reqs: list[Request],
    conns: int,
    seconds: float,
    tag: str,
    rss_pid: int | None,
) -> tuple[dict, float]:
    sampler = procs.RssSampler(rss_pid) if rss_pid else None
    with _window(opts, target) as win, sampler or contextlib.nullcontext():
        res = wrk.run(target.url, reqs, conns, seconds, opts.workdir, tag)
    out = _wrk_figures(res)
    if rss_pid:
        cpu = win.seconds("target")
        out["cpu_s"] = r(cpu, 2)
        out["cpu_ms_per_request"] = r(1000 * cpu / max(res.requests, 1), 4)
        out["cpu_share_of_core"] = r(cpu / res.duration_s, 3)
        out["rss_peak_mb"] = r(sampler.peak, 1) if sampler else None
    out["foreign_cpu_share"] = r(win.foreign_share, 3)
    return out, win.foreign_share


def warm(opts: Options, target: Target, reqs: list[Request], seconds: float = 2.0) -> None:
    wrk.run(target.url, reqs, 32, seconds, opts.workdir, "warm")


#: Tries per figure before a noisy one is kept (and flagged) rather than retried again.
ATTEMPTS = 4
#: nginx's latency is tight and ~40k req/s: a few seconds of it are plenty for the baseline.
DIRECT_SECONDS = 3.0


def pair(
    opts: Options,
    surface: Surface,
    conns: int,
    direct: Target,
    target: Target,
    gateway_pid: int,
    tag: str,
) -> dict:
    """Direct then gateway at ``conns`` connections; retried while the machine was not ours."""
    for attempt in range(1, ATTEMPTS + 1):
        quiet = procs.wait_quiet(opts.max_busy, opts.quiet_timeout, opts.say)
        d, fd = _one(
            opts,
            direct,
            [surface.direct_request()],
            conns,
            min(opts.duration, DIRECT_SECONDS),
            tag + "-direct",
            None,
        )
        g, fg = _one(
            opts,
            target,
            [surface.gateway_request(api_key=target.api_key)],
            conns,
            opts.duration,
            tag,
            gateway_pid,
        )
        if max(fd, fg) <= opts.max_foreign and g["requests"]:
            break
        why = (
            f"other processes used {max(fd, fg):.0%} of the CPU"
            if g["requests"]
            else "no request completed through the server"
        )
        opts.say(
            f"    {why}: " + ("measuring again" if attempt < ATTEMPTS else "kept, flagged noisy")
        )
    added = {k: r(g[f"{k}_ms"] - d[f"{k}_ms"]) for k in ("p50", "p90", "p99")}
    return {
        "concurrency": conns,
        "direct": d,
        "gateway": g,
        "added_ms": added,
        "ratio_rps_gateway_over_direct": r(g["rps"] / d["rps"], 4) if d["rps"] else None,
        "quiet_before": quiet,
        "attempts": attempt,
        "noisy": max(fd, fg) > opts.max_foreign or not g["requests"],
    }


# --- streams ------------------------------------------------------------------------------------


def _ms(v: float) -> float:
    return r(v * 1000)


def first_byte(
    opts: Options, surface: Surface, direct_port: int, target: Target, samples: int
) -> dict:
    """TTFB and time to first token, c=1, alternating direct and gateway requests."""
    procs.wait_quiet(opts.max_busy, opts.quiet_timeout, opts.say)
    dc, gc = Connection("127.0.0.1", direct_port), Connection("127.0.0.1", target.port)
    dreq, greq = surface.direct_request(), surface.gateway_request(api_key=target.api_key)
    for _ in range(20):  # warm both connections
        dc.request(dreq)
        gc.request(greq)
    d: list[Timing] = []
    g: list[Timing] = []
    for _ in range(samples):
        d.append(dc.request(dreq, surface.direct_markers[:1]))
        g.append(gc.request(greq, surface.gateway_markers[:1]))
    dc.close()
    gc.close()
    bad = sum(1 for t in d + g if t.status != 200 or not t.complete)
    out: dict = {"samples": samples, "failed": bad}
    for name, pick in (("ttfb", lambda t: t.ttfb), ("ttft", lambda t: t.marks[0])):
        dv, gv = [pick(t) for t in d], [pick(t) for t in g]
        for q in (50, 90, 99):
            out[f"{name}_direct_p{q}_ms"] = _ms(percentile(dv, q))
            out[f"{name}_gateway_p{q}_ms"] = _ms(percentile(gv, q))
            out[f"{name}_added_p{q}_ms"] = _ms(percentile(gv, q) - percentile(dv, q))
    return out


def delayed(
    opts: Options,
    surface: Surface,
    slow_port: int,
    target: Target,
    model_name: str,
    delay: float,
    samples: int,
) -> dict:
    """Chunk arrival times from an upstream that sends each part ``delay`` s apart."""
    dc, gc = Connection("127.0.0.1", slow_port), Connection("127.0.0.1", target.port)
    dreq, greq = surface.direct_request(), surface.gateway_request(model_name, target.api_key)
    d: list[Timing] = []
    g: list[Timing] = []
    for _ in range(samples):
        d.append(dc.request(dreq, surface.direct_markers))
        g.append(gc.request(greq, surface.gateway_markers))
    dc.close()
    gc.close()
    bad = sum(1 for t in d + g if t.status != 200 or not t.complete)
    n = len(surface.gateway_markers)
    direct_marks = [median([t.marks[i] for t in d]) for i in range(n)]
    gw_marks = [median([t.marks[i] for t in g]) for i in range(n)]
    lags = [gm - dm for gm, dm in zip(gw_marks, direct_marks, strict=True)]
    first, last = gw_marks[0], gw_marks[-1]
    # Relayed, not buffered: the first token is out before the upstream even sent the second
    # part, and no chunk waits for a later one (each lags its direct twin by < delay / 2).
    streaming = bad == 0 and first < delay / 2 and max(lags) < delay / 2
    return {
        "delay_s": delay,
        "parts": len(surface.canned.parts),
        "samples": samples,
        "failed": bad,
        "direct_chunk_ms": [_ms(v) for v in direct_marks],
        "gateway_chunk_ms": [_ms(v) for v in gw_marks],
        "lag_ms": [_ms(v) for v in lags],
        "max_lag_ms": _ms(max(lags)),
        "first_token_ms": _ms(first),
        "last_token_ms": _ms(last),
        "first_to_last_ms": _ms(last - first),
        "end_ms": _ms(median([t.end for t in g])),
        "streams_without_buffering": streaming,
    }


# --- memory -------------------------------------------------------------------------------------


def soak(
    opts: Options,
    surfaces: list[Surface],
    target: Target,
    gateway_pid: int,
    seconds: float,
    conns: int = 32,
) -> dict:
    """All measured surfaces in turn at ``conns`` connections for ``seconds``; RSS every second."""
    procs.wait_quiet(opts.max_busy, opts.quiet_timeout, opts.say)
    gateway_pid = procs.serving_pid(gateway_pid)
    before = procs.rss_mb(gateway_pid)
    reqs = [s.gateway_request(api_key=target.api_key) for s in surfaces]
    with procs.RssSampler(gateway_pid, 1.0) as sampler, _window(opts, target) as win:
        res = wrk.run(target.url, reqs, conns, seconds, opts.workdir, "soak")
    time.sleep(5)
    after_idle = procs.rss_mb(gateway_pid)
    samples = sampler.samples
    settle = min(60.0, seconds * 0.2)
    warm = next((v for t, v in samples if t >= settle), samples[0][1])
    end = samples[-1][1]
    second_half = [(t, v) for t, v in samples if t >= seconds / 2]
    settled = [(t, v) for t, v in samples if t >= settle]
    cpu = win.seconds("target")
    return {
        "seconds": seconds,
        "connections": conns,
        "surfaces": [s.key for s in surfaces],
        "requests": res.requests,
        "errors": res.errors,
        "rps": r(res.rps, 1),
        "cpu_ms_per_request": r(1000 * cpu / max(res.requests, 1), 4),
        "foreign_cpu_share": r(win.foreign_share, 3),
        "rss_before_mb": r(before, 1),
        "rss_after_settle_mb": r(warm, 1),
        "settle_s": settle,
        "rss_end_mb": r(end, 1),
        "rss_max_mb": r(max(v for _, v in samples), 1),
        "rss_idle_after_mb": r(after_idle, 1),
        "growth_mb": r(end - warm, 1),
        "slope_mb_per_min_second_half": r(slope_per_minute(second_half), 3),
        "slope_mb_per_min_after_settle": r(slope_per_minute(settled), 3),
        "rss_samples": [[r(t, 1), r(v, 1)] for t, v in samples[:: max(1, len(samples) // 120)]],
    }


def per_event(
    opts: Options,
    long: Surface,
    short: Surface,
    direct_port: int,
    target: Target,
    samples: int,
    events: int,
) -> dict:
    """Per-event cost of a stream: a ``events``-event answer and the 8-event one, c=1,
    direct and gateway alternating on keep-alive connections; whole-stream times compared.

    ``per_event_us`` is the issue's measure (gateway minus direct over the whole long stream,
    divided by the events); ``marginal_per_event_us`` takes the short stream's added time out
    first (what each extra event costs, without the per-request overhead)."""
    procs.wait_quiet(opts.max_busy, opts.quiet_timeout, opts.say)
    dc, gc = Connection("127.0.0.1", direct_port), Connection("127.0.0.1", target.port)
    shapes = {
        "long": (long, long.direct_request(), long.gateway_request(api_key=target.api_key)),
        "short": (short, short.direct_request(), short.gateway_request(api_key=target.api_key)),
    }
    for _, dreq, greq in shapes.values():
        for _ in range(10):  # warm both connections and both paths
            dc.request(dreq)
            gc.request(greq)
    times: dict[str, dict[str, list[Timing]]] = {k: {"d": [], "g": []} for k in shapes}
    for _ in range(samples):
        for name, (s, dreq, greq) in shapes.items():
            times[name]["d"].append(dc.request(dreq, s.direct_markers))
            times[name]["g"].append(gc.request(greq, s.gateway_markers))
    dc.close()
    gc.close()
    bad = sum(
        1
        for side in times.values()
        for ts in side.values()
        for t in ts
        if t.status != 200 or not t.complete
    )

    def added(name: str, pick: Callable[[Timing], float]) -> float:
        d, g = times[name]["d"], times[name]["g"]
        return median([pick(t) for t in g]) - median([pick(t) for t in d])

    long_end = added("long", lambda t: t.end)
    short_end = added("short", lambda t: t.end)
    short_events = len(short.chunk_texts)
    return {
        "events": events,
        "samples": samples,
        "failed": bad,
        "direct_end_ms": _ms(median([t.end for t in times["long"]["d"]])),
        "gateway_end_ms": _ms(median([t.end for t in times["long"]["g"]])),
        "added_end_ms": _ms(long_end),
        "short_added_end_ms": _ms(short_end),
        "per_event_us": r(1e6 * long_end / events, 2),
        "marginal_per_event_us": r(1e6 * (long_end - short_end) / (events - short_events), 2),
        "ttfb_added_ms": _ms(added("long", lambda t: t.ttfb)),
        "ttft_added_ms": _ms(added("long", lambda t: t.marks[0])),
    }
