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


def _fmt(v: float | None, digits: int = 2) -> str:
    if v is None or v != v:
        return "-"
    return f"{v:,.{digits}f}"


def _measured(results: dict) -> dict[str, dict]:
    return {k: s for k, s in results["surfaces"].items() if s.get("status") == "measured"}


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
    return out


def markdown(results: dict, chart_name: str | None) -> str:
    m = results["meta"]
    lines = [f"# Outcrop gateway benchmark: {m['date']} ({m['label']})", ""]
    lines += [
        f"- Machine: {m['cpu']} ({m['cores']} cores), {m['kernel']}; gateway worker on core 0, "
        "nginx + wrk + probes on core 1.",
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
    lines += _servers_table(results)
    lines += _litellm_table(results)
    lines += _runs_table(results)
    if chart_name:
        lines += ["## Chart", "", f"![added latency vs concurrency]({chart_name})", ""]
    return "\n".join(lines)


def _targets_table(results: dict) -> list[str]:
    lines = [
        "## Targets",
        "",
        "| target | surface | measured | target | result |",
        "|---|---|---|---|---|",
    ]
    for t in results["targets"]:
        if t.get("note"):
            lines.append(f"| all | {t['surface']} | {t['note']} | | not measured |")
            continue
        limit = (
            ""
            if t["limit"] is None
            else (f"≥ {t['limit']:g}" if "throughput" in t["target"] else f"≤ {t['limit']:g}")
        )
        verdict = "pass" if t["pass"] else "**miss**"
        lines.append(
            f"| {t['target']} | {t['surface']} | {_fmt(t['value'])} {t['unit']} | "
            f"{limit} {t['unit'] if limit else ''} | {verdict} |"
        )
    return [*lines, ""]


def _latency_table(results: dict) -> list[str]:
    lines = [
        "## Added latency (gateway - direct, ms)",
        "",
        "Same path on the same nginx, measured right before the gateway run; wrk percentiles.",
        "",
        "| surface | conc. | added p50 | added p90 | added p99 | gateway p50 / p99 | direct p50 / p99 |",
        "|---|---|---|---|---|---|---|",
    ]
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
    lines = [
        "## Throughput and CPU at concurrency 32",
        "",
        "| surface | gateway req/s | runs | direct (nginx) req/s | gateway / direct | gateway CPU ms/request | core busy |",
        "|---|---|---|---|---|---|---|",
    ]
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
    lines = [
        "## Streams",
        "",
        "TTFB / TTFT: c=1, alternating direct and gateway requests on keep-alive connections "
        "(the nginx upstream). Delayed upstream: each part sent "
        f"{results['meta']['delay_s']:g} s after the previous one; times from the request.",
        "",
        "| surface | added TTFB p50 / p99 | added first-token p50 / p99 | delayed: first token | "
        "last token | max lag vs direct | relayed, not buffered |",
        "|---|---|---|---|---|---|---|",
    ]
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
        ]
    return [*lines, ""]


def _litellm_table(results: dict) -> list[str]:
    ll = results.get("litellm")
    if not ll:
        return ["## LiteLLM comparison", "", "Not run (pass `--litellm`).", ""]
    if ll.get("status") != "measured":
        return ["## LiteLLM comparison", "", f"Not measured: {ll.get('status')}.", ""]
    top = str(max(results["meta"]["concurrency"]))
    lines = [
        "## LiteLLM comparison (same run, same upstream, same core)",
        "",
        f"LiteLLM {ll['version']} proxy, `litellm --config` with one worker on core 0, the same "
        f"deployments and master key; RSS idle {_fmt(ll.get('rss_idle_mb'), 1)} MB.",
        "",
        f"| surface | Outcrop req/s (c={top}) | LiteLLM req/s | Outcrop / LiteLLM | Outcrop added p50 c=1 | "
        "LiteLLM added p50 c=1 | CPU ms/request Outcrop / LiteLLM | LiteLLM relays stream chunks |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, s in ll["surfaces"].items():
        title = results["surfaces"].get(key, {}).get("title", key)
        if s.get("status") != "measured":
            lines.append(f"| {title} | | | {s.get('status')} | | | | |")
            continue
        o = results["surfaces"][key]["summary"]
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
            f"| {title} | {_fmt(o['rps'][top]['gateway'], 0)} | {_fmt(t['rps'][top]['gateway'], 1)} | "
            f"{_fmt(s.get('ratio_rps_outcrop_over_litellm'), 1)}x | {_fmt(o['added_ms']['1']['p50'], 3)} ms | "
            f"{_fmt(t['added_ms']['1']['p50'], 3)} ms | {_fmt(o['cpu_ms_per_request'], 3)} / "
            f"{_fmt(t['cpu_ms_per_request'], 2)} | {relays} |"
        )
    return [*lines, ""]


def _servers_table(results: dict) -> list[str]:
    servers = results.get("servers")
    if not servers:
        return []
    top = str(max(results["meta"]["concurrency"]))
    lines = ["## Other ASGI servers (same app, same config, same run)", ""]
    for name, srv in servers.items():
        if srv.get("status") != "measured":
            lines += [f"- {name}: {srv.get('status')}", ""]
            continue
        lines += [
            f"{name}: `{srv['launch']}`; RSS idle {_fmt(srv.get('rss_idle_mb'), 1)} MB.",
            "",
            f"| surface | hypercorn req/s (c={top}) | {name} req/s | {name} / hypercorn | "
            f"added p50 c=1 hypercorn / {name} | added p99 c=1 hypercorn / {name} | CPU ms/request hypercorn / {name} |",
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


def _runs_table(results: dict) -> list[str]:
    lines = [
        "## Run to run",
        "",
        "Each run's added p50 / p99 (ms) and gateway req/s; spread = max/min over the runs.",
        "",
        "| surface | conc. | added p50 by run | added p99 by run | req/s by run | req/s spread |",
        "|---|---|---|---|---|---|",
    ]
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
    fig.suptitle(
        f"gateway - direct nginx, 1 worker on 1 core ({m['date']}, {m['label']}); solid: "
        f"hypercorn (outcrop serve){alt}; grey: c=1 target",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
