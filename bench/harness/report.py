"""Turn a results dict into the target verdicts, the markdown report and the PNG chart."""

from __future__ import annotations

from pathlib import Path

#: Issue 6's targets for this machine (2 cores; 1 worker on 1 core).
ADDED_P50_C1_MS = 1.0
ADDED_P99_C1_MS = 3.0
MIN_RPS = {"converse": 1000.0, "agent": 700.0, "agent_stream": 700.0}
STREAM_TTFB_MS = 2.0
RSS_IDLE_MB = 80.0
SOAK_GROWTH_MB = 2.0  # "no growth": RSS at the end of the soak within this of RSS once settled
#: "Flat": also the least-squares slope of RSS after settling, at most this (2 MB per 10 minutes).
SOAK_SLOPE_MB_PER_MIN = 0.2

#: Issue 17 (round two), and the benchmark clauses of issues 11, 12 and 15.
HEADLINE = ("converse", "agent", "converse_chat")
OFF_VS_LITELLM = {"default": 30.0, "fastest": 50.0}
ON_VS_LITELLM = {"default": 25.0, "fastest": 40.0}
ON_ADDED_P50_C1_MS, ON_ADDED_P99_C1_MS, ON_TOP_P99_OVER_P50 = 0.4, 1.2, 2.0
STREAM_TTFB_R2_MS, PER_EVENT_US = 0.5, 20.0
STARTUP_S = 1.5
KEY_RPS_DROP, KEY_P50_GROWTH_MS = 0.10, 0.1  # issue 11, on converse and agent chat
REDIS_RPS_DROP = 0.15  # issue 12, on converse
OBS_RPS_DROP, OBS_RSS_MB = 0.10, 15.0  # issue 15, on converse and agent chat


def _fmt(v: float | None, digits: int = 2) -> str:
    if v is None or v != v:
        return "-"
    return f"{v:,.{digits}f}"


def _measured(results: dict) -> dict[str, dict]:
    return {
        k: s
        for k, s in results["surfaces"].items()
        if s.get("status") == "measured" and "summary" in s
    }


def targets(results: dict) -> list[dict]:
    out: list[dict] = []

    def add(
        name: str, surface: str, value: float | None, limit: float, ok: bool | None, unit: str
    ) -> None:
        out.append(
            {
                "target": name,
                "surface": surface,
                "value": value,
                "limit": limit,
                "unit": unit,
                "pass": ok,
            }
        )

    for key, s in results["surfaces"].items():
        if s.get("status") != "measured":
            out.append(
                {
                    "target": "all",
                    "surface": key,
                    "value": None,
                    "limit": None,
                    "unit": "",
                    "pass": None,
                    "note": s.get("status"),
                }
            )
            continue
        c1 = s["summary"]["added_ms"].get("1")
        if c1:
            add(
                "added latency c=1 p50",
                key,
                c1["p50"],
                ADDED_P50_C1_MS,
                c1["p50"] <= ADDED_P50_C1_MS,
                "ms",
            )
            add(
                "added latency c=1 p99",
                key,
                c1["p99"],
                ADDED_P99_C1_MS,
                c1["p99"] <= ADDED_P99_C1_MS,
                "ms",
            )
        rps = s["summary"]["rps"].get("32")
        if key in MIN_RPS and rps:
            add(
                "throughput c=32",
                key,
                rps["gateway"],
                MIN_RPS[key],
                rps["gateway"] >= MIN_RPS[key],
                "req/s",
            )
        fb = s.get("first_byte_summary")
        if fb:
            v = fb["ttfb_added_p50_ms"]
            add("stream added TTFB (p50)", key, v, STREAM_TTFB_MS, v <= STREAM_TTFB_MS, "ms")
        dl = s.get("delayed_summary")
        if dl:
            add(
                "stream zero buffering",
                key,
                dl["max_lag_ms"],
                None,
                dl["streams_without_buffering"],
                "ms max lag",
            )
    mem = results.get("memory", {})
    if "rss_idle_mb" in mem:
        v = mem["rss_idle_mb"]
        add("RSS idle (warm)", "gateway", v, RSS_IDLE_MB, v <= RSS_IDLE_MB, "MB")
    soak = mem.get("soak")
    if soak:
        v = soak["growth_mb"]
        add(
            f"RSS growth over {soak['seconds']:g} s soak",
            "gateway",
            v,
            SOAK_GROWTH_MB,
            v <= SOAK_GROWTH_MB and soak["errors"] == 0,
            "MB",
        )
    out += round_two_targets(results)
    return out


def _rps(summary: dict | None) -> float | None:
    if not summary:
        return None
    top = str(summary["top_concurrency"])
    return summary["rps"][top]["gateway"]


def _summary(group: dict, key: str) -> dict | None:
    s = group.get(key, {})
    return s.get("summary") if s.get("status") == "measured" else None


def _stage(results: dict, stage: str, server: str | None = None) -> dict | None:
    server = server or results["meta"].get("server", "hypercorn")
    entry = results.get("features", {}).get("stages", {}).get(f"{stage}/{server}")
    return entry if entry and entry.get("status") == "measured" else None


def litellm_reference(results: dict, features_on: bool) -> tuple[dict | None, str]:
    """The LiteLLM run a ratio is taken against, and what it was: with features on, LiteLLM
    with its own equivalents when that run was measured, else plain LiteLLM (said so)."""
    if features_on:
        eq = results.get("litellm_features")
        if eq and eq.get("status") == "measured":
            return eq, "LiteLLM with " + eq.get("configuration", "its equivalents")
    plain = results.get("litellm")
    if plain and plain.get("status") == "measured":
        return plain, "plain LiteLLM" + (" (its equivalents could not run)" if features_on else "")
    return None, ""


def round_two_targets(results: dict) -> list[dict]:
    out: list[dict] = []
    server = results["meta"].get("server", "hypercorn")

    def add(
        name: str,
        surface: str,
        value: float | None,
        limit: float,
        ok: bool,
        unit: str,
        note: str = "",
        at_least: bool = False,
    ) -> None:
        row = {
            "target": name,
            "surface": surface,
            "value": value,
            "limit": limit,
            "unit": unit,
            "pass": ok,
            "at_least": at_least,
        }
        if note:
            row["detail"] = note
        out.append(row)

    def below(
        name: str, surface: str, value: float | None, limit: float, unit: str, note: str = ""
    ) -> None:
        if value is not None:
            add(name, surface, value, limit, value <= limit, unit, note)

    def above(
        name: str, surface: str, value: float | None, limit: float, unit: str, note: str = ""
    ) -> None:
        if value is not None:
            add(name, surface, value, limit, value >= limit, unit, note, at_least=True)

    every = results.get("startup", {}).get("every plugin", {})
    if "ready_s" in every:
        below(
            "#17 start-up to ready, every plugin",
            "gateway",
            round(every["ready_s"], 2),
            STARTUP_S,
            "s",
        )
        below(
            "#17 RSS idle, every plugin",
            "gateway",
            round(every["rss_idle_mb"], 1),
            RSS_IDLE_MB,
            "MB",
        )
    for key, s in _measured(results).items():
        fb = s.get("first_byte_summary")
        if fb:
            below(
                "#17 stream added TTFB p50", key, fb["ttfb_added_p50_ms"], STREAM_TTFB_R2_MS, "ms"
            )
    for key, s in results.get("per_event", {}).items():
        if s.get("status") == "measured":
            below("#17 per-event overhead", key, s["summary"]["per_event_us"], PER_EVENT_US, "µs")

    # Outcrop / LiteLLM, features off: the main server and the fastest of all measured
    ref, what = litellm_reference(results, False)
    for key in HEADLINE:
        theirs = _rps(_summary(ref["surfaces"], key)) if ref else None
        if not theirs:
            continue
        mine = {server: _rps(_summary(results["surfaces"], key))}
        for name, srv in results.get("servers", {}).items():
            mine[name] = _rps(_summary(srv.get("surfaces", {}), key))
        mine = {k: v for k, v in mine.items() if v}
        if server in mine:
            above(
                f"#17 features off: {server} / LiteLLM",
                key,
                round(mine[server] / theirs, 1),
                OFF_VS_LITELLM["default"],
                "x",
                what,
            )
        if mine:
            best = max(mine, key=lambda k: mine[k])
            above(
                f"#17 features off: fastest ({best}) / LiteLLM",
                key,
                round(mine[best] / theirs, 1),
                OFF_VS_LITELLM["fastest"],
                "x",
                what,
            )

    on = _stage(results, "all")
    if on:
        ref, what = litellm_reference(results, True)
        for key in HEADLINE:
            theirs = _rps(_summary(ref["surfaces"], key)) if ref else None
            own = _rps(_summary(on["surfaces"], key))
            if theirs and own:
                above(
                    f"#17 features on: {server} / LiteLLM",
                    key,
                    round(own / theirs, 1),
                    ON_VS_LITELLM["default"],
                    "x",
                    what,
                )
            best, best_rps = _fastest_on(results, key)
            if theirs and best_rps:
                above(
                    f"#17 features on: fastest ({best}) / LiteLLM",
                    key,
                    round(best_rps / theirs, 1),
                    ON_VS_LITELLM["fastest"],
                    "x",
                    what,
                )
            s = _summary(on["surfaces"], key)
            if not s:
                continue
            c1 = s["added_ms"].get("1")
            if c1:
                below("#17 features on: added p50 c=1", key, c1["p50"], ON_ADDED_P50_C1_MS, "ms")
                below("#17 features on: added p99 c=1", key, c1["p99"], ON_ADDED_P99_C1_MS, "ms")
            top = str(s["top_concurrency"])
            g = s["gateway_ms"][top]
            if g["p50"]:
                below(
                    f"#17 features on: c={top} p99 / p50",
                    key,
                    round(g["p99"] / g["p50"], 2),
                    ON_TOP_P99_OVER_P50,
                    "x",
                )
        soak = on.get("soak")
        if soak:
            flat = (
                soak["growth_mb"] <= SOAK_GROWTH_MB
                and soak["slope_mb_per_min_after_settle"] <= SOAK_SLOPE_MB_PER_MIN
                and soak["errors"] == 0
            )
            add(
                f"#17 RSS flat over {soak['seconds']:g} s soak, features on",
                "gateway",
                soak["slope_mb_per_min_after_settle"],
                SOAK_SLOPE_MB_PER_MIN,
                flat,
                "MB/min",
                f"growth {soak['growth_mb']} MB, errors {soak['errors']}",
            )

    # each feature's own cost, same run: issues 11, 12, 15
    off = {k: s.get("summary") for k, s in _measured(results).items()}
    key_st, limit_st = _stage(results, "key"), _stage(results, "limit")
    steps = (
        (
            "#11 virtual key + spend rows: req/s drop",
            off,
            key_st and key_st["surfaces"],
            ("converse", "agent"),
            KEY_RPS_DROP,
        ),
        (
            "#12 Redis key limit: req/s drop",
            key_st and {k: _summary(key_st["surfaces"], k) for k in key_st["surfaces"]},
            limit_st and limit_st["surfaces"],
            ("converse",),
            REDIS_RPS_DROP,
        ),
        (
            "#15 Prometheus + OpenTelemetry: req/s drop",
            limit_st and {k: _summary(limit_st["surfaces"], k) for k in limit_st["surfaces"]},
            on and on["surfaces"],
            ("converse", "agent"),
            OBS_RPS_DROP,
        ),
    )
    for name, before, after, keys, limit in steps:
        if not before or not after:
            continue
        for key in keys:
            b, a = _rps(before.get(key)), _rps(_summary(after, key))
            if b and a:
                below(name, key, round(100 * (1 - a / b), 1), 100 * limit, "%")
            if name.startswith("#11"):
                bs, as_ = before.get(key), _summary(after, key)
                if bs and as_ and "1" in bs["added_ms"] and "1" in as_["added_ms"]:
                    grow = round(as_["added_ms"]["1"]["p50"] - bs["added_ms"]["1"]["p50"], 3)
                    below(
                        "#11 virtual key + spend rows: added p50 growth c=1",
                        key,
                        grow,
                        KEY_P50_GROWTH_MS,
                        "ms",
                    )
    if on and limit_st and "rss_idle_mb" in on and "rss_idle_mb" in limit_st:
        below(
            "#15 Prometheus + OpenTelemetry: RSS growth",
            "gateway",
            round(on["rss_idle_mb"] - limit_st["rss_idle_mb"], 1),
            OBS_RSS_MB,
            "MB",
        )
    return out


def markdown(results: dict, chart_name: str | None) -> str:
    m = results["meta"]
    lines = [f"# Outcrop gateway benchmark: {m['date']} ({m['label']})", ""]
    lines += [
        f"- Machine: {m['cpu']} ({m['cores']} cores), {m['kernel']}; gateway worker on core 0, "
        f"nginx + wrk + probes{_redis_placement(results)} on core 1.",
        f"- Software: {', '.join(f'{k} {v}' for k, v in m['versions'].items())}.",
        f"- Repo: `{m['git']}`"
        + (f" (at the end: `{m['git_at_end']}`)" if m.get("git_at_end") else "")
        + f". Command: `{m['command']}`.",
        f"- Each figure measured {m['repeats']} times ({m['duration_s']:g} s wrk runs); "
        f"headline = median of the runs. Load average at start {m['load_start']}, at end {m['load_end']}; "
        f"highest share of CPU used by other processes during a kept figure: "
        f"{_fmt(100 * m['max_foreign_cpu_share'], 1)} % ({m['noisy_runs']} figure(s) kept above the "
        f"{_fmt(100 * m['max_foreign'], 0)} % retry threshold after {m['attempts']} tries).",
        "",
    ]
    lines += _targets_table(results)
    lines += _latency_table(results)
    lines += _throughput_table(results)
    lines += _streams_table(results)
    lines += _memory_table(results)
    lines += _per_event_table(results)
    lines += _startup_table(results)
    lines += _servers_table(results)
    lines += _scaling_table(results)
    lines += _features_table(results)
    lines += _litellm_table(results)
    lines += _litellm_features_table(results)
    lines += _compare_table(results)
    lines += _runs_table(results)
    if chart_name:
        lines += ["## Chart", "", f"![added latency vs concurrency]({chart_name})", ""]
    return "\n".join(lines)


def _redis_placement(results: dict) -> str:
    redis = results.get("redis")
    if not redis or not redis.get("pids"):
        return ""
    if redis.get("problem"):
        return f" (the machine's Redis left where it was: {redis['problem']})"
    return " + the machine's Redis (moved there for the run)"


def _section(title: str, *intro: str, head: str) -> list[str]:
    """A report section: its ``## title``, the ``intro`` paragraphs and its table's ``head``
    row with the separator row under it."""
    lines = [f"## {title}", ""]
    for paragraph in intro:
        lines += [paragraph, ""]
    return [*lines, head, "|" + "---|" * (head.count("|") - 1)]


def _targets_table(results: dict) -> list[str]:
    lines = _section(
        "Targets",
        head="| target | surface | measured | target | result |",
    )
    for t in results["targets"]:
        if t.get("note"):
            lines.append(f"| all | {t['surface']} | {t['note']} | | not measured |")
            continue
        at_least = t.get("at_least") or "throughput" in t["target"]
        limit = (
            "" if t["limit"] is None else (f"≥ {t['limit']:g}" if at_least else f"≤ {t['limit']:g}")
        )
        verdict = "pass" if t["pass"] else "**miss**"
        detail = f" ({t['detail']})" if t.get("detail") else ""
        lines.append(
            f"| {t['target']}{detail} | {t['surface']} | {_fmt(t['value'])} {t['unit']} | "
            f"{limit} {t['unit'] if limit else ''} | {verdict} |"
        )
    return [*lines, ""]


def _latency_table(results: dict) -> list[str]:
    lines = _section(
        "Added latency (gateway - direct, ms)",
        "Same path on the same nginx, measured right before the gateway run; wrk percentiles.",
        head="| surface | conc. | added p50 | added p90 | added p99 | gateway p50 / p99 | direct p50 / p99 |",
    )
    for _key, s in _measured(results).items():
        for c, a in s["summary"]["added_ms"].items():
            g, d = s["summary"]["gateway_ms"][c], s["summary"]["direct_ms"][c]
            lines.append(
                f"| {s['title']} | {c} | {_fmt(a['p50'], 3)} | {_fmt(a['p90'], 3)} | "
                f"{_fmt(a['p99'], 3)} | {_fmt(g['p50'], 3)} / {_fmt(g['p99'], 3)} | "
                f"{_fmt(d['p50'], 3)} / {_fmt(d['p99'], 3)} |"
            )
    return [*lines, ""]


def _throughput_table(results: dict) -> list[str]:
    lines = _section(
        "Throughput and CPU at concurrency 32",
        head="| surface | gateway req/s | runs | direct (nginx) req/s | gateway / direct | gateway CPU ms/request | core busy |",
    )
    for _key, s in _measured(results).items():
        t = s["summary"]["rps"].get("32")
        if not t:
            continue
        runs = " / ".join(_fmt(v, 0) for v in t["gateway_runs"])
        lines.append(
            f"| {s['title']} | {_fmt(t['gateway'], 0)} | {runs} | {_fmt(t['direct'], 0)} | "
            f"{_fmt(t['gateway'] / t['direct'], 3)} | {_fmt(s['summary']['cpu_ms_per_request'], 3)} | "
            f"{_fmt(100 * s['summary']['cpu_share_of_core'], 0)} % |"
        )
    return [*lines, ""]


def _streams_table(results: dict) -> list[str]:
    lines = _section(
        "Streams",
        "TTFB / TTFT: c=1, alternating direct and gateway requests on keep-alive connections "
        "(the nginx upstream). Delayed upstream: each part sent "
        f"{results['meta']['delay_s']:g} s after the previous one; times from the request.",
        head=(
            "| surface | added TTFB p50 / p99 | added first-token p50 / p99 | delayed: first token | "
            "last token | max lag vs direct | relayed, not buffered |"
        ),
    )
    for _key, s in _measured(results).items():
        fb, dl = s.get("first_byte_summary"), s.get("delayed_summary")
        if not fb:
            continue
        lines.append(
            f"| {s['title']} | {_fmt(fb['ttfb_added_p50_ms'], 3)} / {_fmt(fb['ttfb_added_p99_ms'], 3)} ms | "
            f"{_fmt(fb['ttft_added_p50_ms'], 3)} / {_fmt(fb['ttft_added_p99_ms'], 3)} ms | "
            f"{_fmt(dl['first_token_ms'], 1)} ms | {_fmt(dl['last_token_ms'], 1)} ms | "
            f"{_fmt(dl['max_lag_ms'], 2)} ms | {'yes' if dl['streams_without_buffering'] else '**no**'} |"
        )
    return [*lines, ""]


def _memory_table(results: dict) -> list[str]:
    mem = results.get("memory", {})
    if not mem:
        return []
    lines = [
        "## Memory (gateway RSS)",
        "",
        "| state | MB |",
        "|---|---|",
        f"| idle, just started | {_fmt(mem.get('rss_fresh_mb'), 1)} |",
        f"| idle, after warm-up | {_fmt(mem.get('rss_idle_mb'), 1)} |",
        f"| under load (peak, c ≤ 32) | {_fmt(mem.get('rss_under_load_peak_mb'), 1)} |",
    ]
    soak = mem.get("soak")
    if soak:
        lines += [
            f"| soak start ({soak['seconds']:g} s, c={soak['connections']}, all surfaces in turn) | {_fmt(soak['rss_before_mb'], 1)} |",
            f"| soak, settled (after {soak['settle_s']:g} s) | {_fmt(soak['rss_after_settle_mb'], 1)} |",
            f"| soak end | {_fmt(soak['rss_end_mb'], 1)} |",
            f"| soak max | {_fmt(soak['rss_max_mb'], 1)} |",
            f"| idle after soak | {_fmt(soak['rss_idle_after_mb'], 1)} |",
            "",
            f"Soak: {soak['requests']:,} requests at {_fmt(soak['rps'], 0)} req/s, {soak['errors']} errors, "
            f"{_fmt(soak['cpu_ms_per_request'], 3)} ms CPU/request; growth settled → end "
            f"{_fmt(soak['growth_mb'], 1)} MB, second-half slope {_fmt(soak['slope_mb_per_min_second_half'], 3)} MB/min.",
            "",
            *_soak_lines(soak, "features off"),
        ]
    lines += [
        "",
        "The key database was migrated before the gateway started (`outcrop db upgrade "
        "--config ...`, as docs/keys.md recommends in production): a worker that migrates it "
        "at start-up keeps Alembic in memory (about 11 MB more idle RSS).",
    ]
    return [*lines, ""]


def _per_event_table(results: dict) -> list[str]:
    pe = results.get("per_event")
    if not pe:
        return []
    lines = _section(
        "Streams: per-event overhead",
        "A ConverseStream answer of 1,000 content events (and the usual 8-event one), c=1, direct and "
        "gateway alternating on keep-alive connections; whole-stream times (request sent to last "
        "byte), medians. *Per event* = (gateway - direct) / 1,000, the issue's measure; *marginal* "
        "= (added time of the 1,000-event stream - added time of the 8-event one) / 992, what one "
        "more event costs without the per-request overhead.",
        head="| surface | direct, whole stream | gateway | added | per event | marginal per event | added TTFB / first token |",
    )
    for s in pe.values():
        if s.get("status") != "measured":
            lines.append(f"| {s['title']} | {s.get('status')} | | | | | |")
            continue
        x = s["summary"]
        lines.append(
            f"| {s['title']} | {_fmt(x['direct_end_ms'], 3)} ms | {_fmt(x['gateway_end_ms'], 3)} ms | "
            f"{_fmt(x['added_end_ms'], 3)} ms | {_fmt(x['per_event_us'], 2)} µs | "
            f"{_fmt(x['marginal_per_event_us'], 2)} µs | {_fmt(x['ttfb_added_ms'], 3)} / "
            f"{_fmt(x['ttft_added_ms'], 3)} ms |"
        )
    return [*lines, ""]


def _startup_table(results: dict) -> list[str]:
    st = results.get("startup")
    if not st:
        return []
    calls = st.get("calls", 0)
    lines = _section(
        "Start-up and idle memory",
        f"`bench/startup_memory.py`, run in this session ({st.get('starts')} start-up(s) per setup "
        "after an unmeasured one that migrates the keys database): time from spawning `outcrop "
        "serve` to the first 200 on `/health/readiness` (minimum), the worker's RSS idle once "
        f"ready, after {calls:,} calls and idle again (medians), and `-X importtime`. *Every plugin*: "
        f"everything installed ({', '.join(st['plugins'])}), keys, Prometheus and OpenTelemetry on; "
        "*core alone*: `OUTCROP_PLUGINS=`.",
        head=(
            f"| setup | import time | ready | CPU to ready | RSS idle | RSS after {calls:,} calls | "
            "RSS idle after calls |"
        ),
    )
    for name in ("every plugin", "core alone"):
        x = st.get(name)
        if not x:
            continue
        if "ready_s" not in x:
            lines.append(f"| {name} | {x.get('status')} | | | | | |")
            continue
        lines.append(
            f"| {name} | {_fmt(x['import_s'], 2)} s | {_fmt(x['ready_s'], 2)} s | "
            f"{_fmt(x['ready_cpu_s'], 2)} s | {_fmt(x['rss_idle_mb'], 1)} MB | "
            f"{_fmt(x['rss_after_calls_mb'], 1)} MB | {_fmt(x['rss_idle_after_calls_mb'], 1)} MB |"
        )
    return [*lines, ""]


def _features_table(results: dict) -> list[str]:
    feats = results.get("features")
    if not feats:
        return []
    off = _measured(results)
    lines = _section(
        "Features on: each feature's cost (same run)",
        f"Keys and spend in {feats['database']}; the Redis limit is the key's `rpm_limit` / "
        "`tpm_limit` (high enough never to refuse) on 127.0.0.1:6379; spans exported over "
        "OTLP/HTTP to a sink on core 1 that accepts and discards. Each stage is a fresh gateway, "
        "its database migrated beforehand (`outcrop db upgrade`); "
        "Δ is against the previous row of the same surface and server (the first stage against "
        "features off).",
        head=(
            "| stage | server | surface | req/s (top c) | Δ req/s | added p50 / p99 c=1 | "
            "gateway p50 / p99 top c | CPU ms/request | RSS idle MB |"
        ),
    )
    order = ["off", "key", "limit", "all"]
    previous: dict[tuple[str, str], dict] = {}
    server = results["meta"].get("server", "hypercorn")
    rows = [("off", server, {"surfaces": off, "rss_idle_mb": results["memory"].get("rss_idle_mb")})]
    rows += sorted(
        ((e["stage"], e["server"], e) for e in feats["stages"].values()),
        key=lambda x: (x[1] != server, order.index(x[0]), x[1]),
    )
    for stage, srv, entry in rows:
        if stage != "off" and entry.get("status") != "measured":
            lines.append(f"| {stage} | {srv} | | {entry.get('status')} | | | | | |")
            continue
        for key, s in entry["surfaces"].items():
            x = s.get("summary") if s.get("status") == "measured" else None
            if not x or (
                stage == "off"
                and key not in feats["stages"].get(f"key/{server}", {}).get("surfaces", {})
            ):
                continue
            top = str(x["top_concurrency"])
            rps = x["rps"][top]["gateway"]
            before = previous.get((srv, key)) or (
                previous.get((server, key)) if stage == "all" and srv != server else None
            )
            delta = f"{100 * (rps / before - 1):+.1f} %" if before and srv == server else ""
            previous[(srv, key)] = rps
            c1 = x["added_ms"].get("1", {})
            g = x["gateway_ms"][top]
            lines.append(
                f"| {stage} | {srv} | {key} | {_fmt(rps, 0)} | {delta} | {_fmt(c1.get('p50'), 3)} / "
                f"{_fmt(c1.get('p99'), 3)} ms | {_fmt(g['p50'], 2)} / {_fmt(g['p99'], 2)} ms | "
                f"{_fmt(x['cpu_ms_per_request'], 3)} | {_fmt(entry.get('rss_idle_mb'), 1)} |"
            )
    lines.append("")
    for name, e in feats["stages"].items():
        proof = e.get("proof")
        if proof:
            lines.append(
                f"- `{name}` ({e['title']}): ready in {_fmt(e.get('ready_s'), 2)} s; {_proof(proof)}."
            )
    soak = (_stage(results, "all") or {}).get("soak")
    if soak:
        lines += ["", *_soak_lines(soak, "features on")]
    return [*lines, ""]


def _proof(proof: dict) -> str:
    parts = [f"{proof['requests_measured']:,} requests measured"]
    if proof.get("spend_rows") is not None:
        parts.append(f"{proof['spend_rows']:,} spend rows written (warm-up included)")
    if "prometheus" in proof:
        parts.append(
            f"outcrop_requests_total {proof['prometheus']['outcrop_requests_total']:,.0f} at the scrape"
        )
    if "otlp_sink" in proof:
        sink = proof["otlp_sink"]
        parts.append(
            f"OTLP sink received {sink['requests']:,} exports ({sink['bytes']:,} bytes) so far"
        )
    return ", ".join(parts)


def _soak_lines(soak: dict, what: str) -> list[str]:
    flat = (
        soak["growth_mb"] <= SOAK_GROWTH_MB
        and soak.get("slope_mb_per_min_after_settle", 0.0) <= SOAK_SLOPE_MB_PER_MIN
        and soak["errors"] == 0
    )
    return [
        f"Soak ({what}): {soak['seconds']:g} s at c={soak['connections']}, the surfaces in turn, RSS "
        f"every second: {soak['requests']:,} requests at {_fmt(soak['rps'], 0)} req/s, {soak['errors']} "
        f"errors; RSS {_fmt(soak['rss_before_mb'], 1)} MB before, {_fmt(soak['rss_after_settle_mb'], 1)} MB "
        f"once settled (after {soak['settle_s']:g} s), {_fmt(soak['rss_end_mb'], 1)} MB at the end, "
        f"max {_fmt(soak['rss_max_mb'], 1)} MB, {_fmt(soak['rss_idle_after_mb'], 1)} MB idle after; slope "
        f"after settling {_fmt(soak.get('slope_mb_per_min_after_settle'), 3)} MB/min. **Flat** = end - "
        f"settled ≤ {SOAK_GROWTH_MB:g} MB, slope after settling ≤ {SOAK_SLOPE_MB_PER_MIN:g} MB/min and no "
        f"errors: {'yes' if flat else '**no**'}.",
    ]


def _litellm_features_table(results: dict) -> list[str]:
    ll = results.get("litellm_features")
    if not ll:
        return []
    lines = [
        "## LiteLLM with its own equivalents (features on)",
        "",
        "What ran, feature by feature (and why the rest could not):",
        "",
    ]
    lines += [f"- {name}: {what}" for name, what in ll.get("features", {}).items()]
    lines.append("")
    if ll.get("status") != "measured":
        return [*lines, f"Not measured: {ll.get('status')}.", ""]
    on = _stage(results, "all")
    main = results["meta"].get("server", "hypercorn")
    lines += [
        f"Measured: LiteLLM {ll.get('version')} with {ll.get('configuration')}; Outcrop with every "
        "feature on (virtual key, spend rows, Redis limit, Prometheus, OpenTelemetry), on "
        f"{main} and on the fastest server measured with features on.",
        "",
        f"| surface | Outcrop ({main}) req/s | fastest Outcrop req/s | LiteLLM req/s | "
        f"{main} / LiteLLM | fastest / LiteLLM | added p50 c=1 Outcrop ({main}) / LiteLLM |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, s in ll["surfaces"].items():
        mine = _summary(on["surfaces"], key) if on else None
        theirs = _summary(ll["surfaces"], key)
        if not theirs:
            lines.append(f"| {key} | | | | {s.get('status')} | | |")
            continue
        mr, tr = _rps(mine), _rps(theirs)
        best, br = _fastest_on(results, key)
        ratio = f"{mr / tr:.1f}x" if mr and tr else "-"
        best_ratio = f"{br / tr:.1f}x" if br and tr else "-"
        lines.append(
            f"| {key} | {_fmt(mr, 0)} | {_fmt(br, 0)} ({best}) | {_fmt(tr, 1)} | {ratio} | "
            f"{best_ratio} | "
            f"{_fmt(mine['added_ms']['1']['p50'] if mine and '1' in mine['added_ms'] else None, 3)} / "
            f"{_fmt(theirs['added_ms']['1']['p50'] if '1' in theirs['added_ms'] else None, 3)} ms |"
        )
    return [*lines, ""]


def _fastest_on(results: dict, key: str) -> tuple[str, float | None]:
    """The server whose every-feature-on stage served ``key`` fastest, and its req/s."""
    mine = {}
    for entry in results.get("features", {}).get("stages", {}).values():
        if entry["stage"] == "all" and entry.get("status") == "measured":
            v = _rps(_summary(entry["surfaces"], key))
            if v:
                mine[entry["server"]] = v
    if not mine:
        return "-", None
    best = max(mine, key=lambda k: mine[k])
    return best, mine[best]


def _compare_table(results: dict) -> list[str]:
    old = results.get("compare")
    if not old:
        return []
    from .compare import headline

    new = headline(results)
    lines = _section(
        "Before / after",
        f"Before: `{old['file']}` ({old['date']}, {old['label']}, `{old['git']}`); after: this run. "
        "Figures present in both.",
        head="| figure | before | after | change |",
    )
    for name, b in old["figures"].items():
        a = new.get(name)
        if not a:
            continue
        change = "-" if not b["value"] else f"{100 * (a['value'] / b['value'] - 1):+.1f} %"
        lines.append(
            f"| {name} | {_fmt(b['value'], 3)} {b['unit']} | {_fmt(a['value'], 3)} {a['unit']} | {change} |"
        )
    return [*lines, ""]


def _litellm_table(results: dict) -> list[str]:
    ll = results.get("litellm")
    if not ll:
        return ["## LiteLLM comparison", "", "Not run (pass `--litellm`).", ""]
    if ll.get("status") != "measured":
        return ["## LiteLLM comparison", "", f"Not measured: {ll.get('status')}.", ""]
    top = str(max(results["meta"]["concurrency"]))
    lines = _section(
        "LiteLLM comparison (same run, same upstream, same core)",
        f"LiteLLM {ll['version']} proxy, `litellm --config` with one worker on core 0, the same "
        f"deployments and master key; RSS idle {_fmt(ll.get('rss_idle_mb'), 1)} MB. Configuration "
        "measured: **plain LiteLLM** (master key only: no key store, no limits, no callbacks), "
        "against Outcrop with features off.",
        head=(
            f"| surface | Outcrop req/s (c={top}) | LiteLLM req/s | Outcrop / LiteLLM | Outcrop added p50 c=1 | "
            "LiteLLM added p50 c=1 | CPU ms/request Outcrop / LiteLLM | LiteLLM relays stream chunks |"
        ),
    )
    for key, s in ll["surfaces"].items():
        title = results["surfaces"].get(key, {}).get("title", key)
        if s.get("status") != "measured":
            lines.append(f"| {title} | | | {s.get('status')} | | | | |")
            continue
        # features on alone (`--features on`): no features-off figure of Outcrop's to set beside
        o = results["surfaces"].get(key, {}).get("summary") or {}
        o_rps = o.get("rps", {}).get(top, {}).get("gateway")
        o_p50 = o.get("added_ms", {}).get("1", {}).get("p50")
        t = s["summary"]
        dl = s.get("delayed_summary")
        relays = (
            "-"
            if not dl
            else (
                "yes"
                if dl["streams_without_buffering"]
                else f"**no** (first token at {_fmt(dl['first_token_ms'], 0)} ms)"
            )
        )
        lines.append(
            f"| {title} | {_fmt(o_rps, 0)} | {_fmt(t['rps'][top]['gateway'], 1)} | "
            f"{_fmt(s.get('ratio_rps_outcrop_over_litellm'), 1)}x | {_fmt(o_p50, 3)} ms | "
            f"{_fmt(t['added_ms']['1']['p50'], 3)} ms | {_fmt(o.get('cpu_ms_per_request'), 3)} / "
            f"{_fmt(t['cpu_ms_per_request'], 2)} | {relays} |"
        )
    return [*lines, ""]


def _servers_table(results: dict) -> list[str]:
    servers = results.get("servers")
    if not servers:
        return []
    top = str(max(results["meta"]["concurrency"]))
    main = results["meta"].get("server", "hypercorn")
    lines = ["## Other ASGI servers (same app, same config, same run)", ""]
    for name, srv in servers.items():
        if srv.get("status") != "measured":
            lines += [f"- {name}: {srv.get('status')}", ""]
            continue
        lines += [
            f"{name}: `{srv['launch']}`; RSS idle {_fmt(srv.get('rss_idle_mb'), 1)} MB.",
            "",
            f"| surface | {main} req/s (c={top}) | {name} req/s | {name} / {main} | "
            f"added p50 c=1 {main} / {name} | added p99 c=1 {main} / {name} | CPU ms/request {main} / {name} |",
            "|---|---|---|---|---|---|---|",
        ]
        for key, s in srv["surfaces"].items():
            title = results["surfaces"][key]["title"]
            if s.get("status") != "measured":
                lines.append(f"| {title} | | | {s.get('status')} | | | |")
                continue
            h, t = results["surfaces"][key]["summary"], s["summary"]
            hr, tr = h["rps"][top]["gateway"], t["rps"][top]["gateway"]
            lines.append(
                f"| {title} | {_fmt(hr, 0)} | {_fmt(tr, 0)} | {_fmt(tr / hr, 2)}x | "
                f"{_fmt(h['added_ms']['1']['p50'], 3)} / {_fmt(t['added_ms']['1']['p50'], 3)} ms | "
                f"{_fmt(h['added_ms']['1']['p99'], 3)} / {_fmt(t['added_ms']['1']['p99'], 3)} ms | "
                f"{_fmt(h['cpu_ms_per_request'], 3)} / {_fmt(t['cpu_ms_per_request'], 3)} |"
            )
        lines.append("")
    return lines


def _scaling_table(results: dict) -> list[str]:
    sc = results.get("scaling")
    if not sc or not sc.get("servers"):
        return []
    cores = sc["estimate_cores"]
    lines = _section(
        f"Workers: 1 to 2, and an estimate for {cores} cores",
        "`outcrop serve --workers N`, features off, at the top concurrency. One worker is pinned "
        "to core 0; two are not, so here the second worker shares core 1 with nginx and wrk. CPU "
        "per request counts every process of the gateway (supervisor and workers).",
        f"Estimate for {cores} cores, one worker per core, clients and upstream on other "
        f"machines (not measured: this machine has {results['meta']['cores']} cores). *Linear*: "
        f"the per-core figure (one pinned worker, its core 100 % busy) x {cores}; workers share "
        f"nothing on the request path but the listening socket, so it is the bound with every "
        f"core free. *CPU*: {cores} x the requests per CPU-second of the two-worker run (what two "
        "workers cost each other included, the shared core not). *Low*: every worker past the "
        "first loses what the second lost here (efficiency = 2 workers / (2 x 1 worker)); "
        "pessimistic, as the second worker shares its core with the load generator.",
        head="| server | surface | 1 worker req/s | 2 workers req/s | 2 / 1 | CPU ms/request "
        f"1 / 2 workers | {cores} cores: linear | CPU | low |",
    )
    for server, surfaces in sc["servers"].items():
        for key, e in surfaces.items():
            one, two, est = e.get("1", {}), e.get("2", {}), e.get("estimate")
            if not est:
                why = next((x["status"] for x in (one, two) if x.get("status") != "measured"), "")
                lines.append(f"| {server} | {key} | | | {why} | | | | |")
                continue
            lines.append(
                f"| {server} | {key} | {_fmt(one['rps'], 0)} | {_fmt(two['rps'], 0)} | "
                f"{_fmt(two['rps'] / one['rps'], 2)}x | {_fmt(one['cpu_ms_per_request'], 3)} / "
                f"{_fmt(two['cpu_ms_per_request'], 3)} | {_fmt(est['linear'], 0)} | "
                f"{_fmt(est['cpu'], 0)} | {_fmt(est['low'], 0)} |"
            )
    return [*lines, ""]


def _runs_table(results: dict) -> list[str]:
    lines = _section(
        "Run to run",
        "Each run's added p50 / p99 (ms) and gateway req/s; spread = max/min over the runs.",
        head="| surface | conc. | added p50 by run | added p99 by run | req/s by run | req/s spread |",
    )
    for _key, s in _measured(results).items():
        by_c: dict[int, list[dict]] = {}
        for run in s["runs"]:
            by_c.setdefault(run["concurrency"], []).append(run)
        for c, runs in sorted(by_c.items()):
            p50 = " / ".join(_fmt(x["added_ms"]["p50"], 3) for x in runs)
            p99 = " / ".join(_fmt(x["added_ms"]["p99"], 3) for x in runs)
            rps = [x["gateway"]["rps"] for x in runs]
            lines.append(
                f"| {s['title']} | {c} | {p50} | {p99} | {' / '.join(_fmt(v, 0) for v in rps)} | "
                f"{_fmt(max(rps) / min(rps), 3)} |"
            )
    return [*lines, ""]


def chart(results: dict, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    measured = _measured(results)
    if not measured:
        return False
    others = {
        name: srv
        for name, srv in results.get("servers", {}).items()
        if srv.get("status") == "measured"
    }
    styles = ["--", ":", "-."]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    for ax, q in zip(axes, ("p50", "p99"), strict=True):
        for i, (key, s) in enumerate(measured.items()):
            conc = sorted(int(c) for c in s["summary"]["added_ms"])
            color = f"C{i}"
            ax.plot(
                conc,
                [s["summary"]["added_ms"][str(c)][q] for c in conc],
                marker="o",
                color=color,
                label=s["title"],
            )
            on = (_stage(results, "all") or {}).get("surfaces", {}).get(key, {}).get("summary")
            if on:
                cs = sorted(int(c) for c in on["added_ms"])
                ax.plot(
                    cs,
                    [on["added_ms"][str(c)][q] for c in cs],
                    marker="x",
                    color=color,
                    lw=3,
                    alpha=0.4,
                )
            for style, srv in zip(styles, others.values(), strict=False):
                alt = srv["surfaces"].get(key, {}).get("summary")
                if alt:
                    cs = sorted(int(c) for c in alt["added_ms"])
                    ax.plot(
                        cs,
                        [alt["added_ms"][str(c)][q] for c in cs],
                        marker=".",
                        color=color,
                        ls=style,
                    )
        ticks = sorted({int(c) for s in measured.values() for c in s["summary"]["added_ms"]})
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(c) for c in ticks])
        ax.set_xlabel("concurrent connections (wrk)")
        ax.set_ylabel(f"added latency {q} (ms)")
        ax.set_yscale("log")  # c=1 is sub-millisecond, c=32 is queueing: decades apart
        ax.grid(True, which="both", alpha=0.3)
        ax.set_title(f"Outcrop added latency, {q}")
        if q == "p50":
            ax.axhline(ADDED_P50_C1_MS, color="grey", lw=0.8)
        else:
            ax.axhline(ADDED_P99_C1_MS, color="grey", lw=0.8)
    axes[0].legend(fontsize=8)
    m = results["meta"]
    names = {"--": "dashed", ":": "dotted", "-.": "dash-dot"}
    alt = "".join(f"; {names[style]}: {name}" for style, name in zip(styles, others, strict=False))
    on_note = "; wide pale: every feature on" if _stage(results, "all") else ""
    fig.suptitle(
        f"gateway - direct nginx, 1 worker on 1 core ({m['date']}, {m['label']}); solid: "
        f"{m.get('server', 'hypercorn')} (outcrop serve){alt}{on_note}; grey: c=1 target",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
