"""Before/after: an earlier run's headline figures beside this run's (``--compare OLD.json``)."""

from __future__ import annotations

import json
from pathlib import Path


def headline(results: dict) -> dict[str, dict]:
    """``{figure name: {"value", "unit", "better"}}`` for the figures worth comparing across runs:
    per surface (features off) req/s at the top concurrency, added p50 / p99 at c=1 and CPU per
    request; idle RSS; the Outcrop/LiteLLM ratio; with features on, the same for the main
    server's everything-on stage."""
    out: dict[str, dict] = {}

    def put(name: str, value: float | None, unit: str, better: str) -> None:
        if value is not None:
            out[name] = {"value": value, "unit": unit, "better": better}

    def surfaces(prefix: str, group: dict) -> None:
        for key, s in group.items():
            summary = s.get("summary")
            if s.get("status") != "measured" or not summary:
                continue
            top = str(summary["top_concurrency"])
            put(f"{prefix}{key}: req/s c={top}", summary["rps"][top]["gateway"], "req/s", "higher")
            c1 = summary["added_ms"].get("1")
            if c1:
                put(f"{prefix}{key}: added p50 c=1", c1["p50"], "ms", "lower")
                put(f"{prefix}{key}: added p99 c=1", c1["p99"], "ms", "lower")
            put(f"{prefix}{key}: CPU/request", summary["cpu_ms_per_request"], "ms", "lower")

    surfaces("", results.get("surfaces", {}))
    put("RSS idle", results.get("memory", {}).get("rss_idle_mb"), "MB", "lower")
    for key, s in results.get("litellm", {}).get("surfaces", {}).items():
        put(f"{key}: Outcrop / LiteLLM", s.get("ratio_rps_outcrop_over_litellm"), "x", "higher")
    server = results.get("meta", {}).get("server", "hypercorn")
    on = results.get("features", {}).get("stages", {}).get(f"all/{server}")
    if on and on.get("status") == "measured":
        surfaces("features on, ", on["surfaces"])
    for key, s in results.get("per_event", {}).items():
        if s.get("status") == "measured":
            put(f"{key}: per-event", s["summary"]["per_event_us"], "µs", "lower")
    return out


def load(path: Path) -> dict:
    old = json.loads(path.read_text())
    meta = old.get("meta", {})
    return {
        "file": str(path),
        "label": meta.get("label"),
        "date": meta.get("date"),
        "git": meta.get("git"),
        "figures": headline(old),
    }
