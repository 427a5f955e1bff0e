"""Fold repeated runs into headline figures (median of the runs) and their run-to-run spread."""

from __future__ import annotations

from .stats import median, r, spread


def by_concurrency(runs: list[dict]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for run in runs:
        out.setdefault(run["concurrency"], []).append(run)
    return dict(sorted(out.items()))


def latency_runs(runs: list[dict]) -> dict:
    groups = by_concurrency(runs)
    out: dict = {"added_ms": {}, "gateway_ms": {}, "direct_ms": {}, "rps": {}, "spread": {}}
    for c, rs in groups.items():
        key = str(c)
        out["added_ms"][key] = {
            q: r(median([x["added_ms"][q] for x in rs])) for q in ("p50", "p90", "p99")
        }
        for side in ("gateway", "direct"):
            out[f"{side}_ms"][key] = {
                q: r(median([x[side][f"{q}_ms"] for x in rs])) for q in ("p50", "p90", "p99")
            }
        g_rps = [x["gateway"]["rps"] for x in rs]
        out["rps"][key] = {
            "gateway": r(median(g_rps), 1),
            "direct": r(median([x["direct"]["rps"] for x in rs]), 1),
            "gateway_runs": g_rps,
        }
        out["spread"][key] = {
            "gateway_rps": r(spread(g_rps)),
            "added_p50": r(spread([x["added_ms"]["p50"] for x in rs])),
        }
    top = groups[max(groups)]
    out["cpu_ms_per_request"] = r(median([x["gateway"]["cpu_ms_per_request"] for x in top]), 4)
    out["cpu_share_of_core"] = r(median([x["gateway"]["cpu_share_of_core"] for x in top]), 3)
    out["top_concurrency"] = max(groups)
    return out


def stream_runs(reps: list[dict]) -> dict:
    keys = [k for k in reps[0] if k.endswith(("_ms", "_us")) and not isinstance(reps[0][k], list)]
    out: dict = {k: r(median([x[k] for x in reps])) for k in keys}
    if "streams_without_buffering" in reps[0]:
        out["streams_without_buffering"] = all(x["streams_without_buffering"] for x in reps)
    out["failed"] = sum(x["failed"] for x in reps)
    return out
