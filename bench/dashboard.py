"""Draw the Grafana dashboard's main panels from real scrapes of a local load run.

    python bench/dashboard.py [--seconds 90] [--workers 2] [--out docs/grafana/outcrop-dashboard.png]

Starts the Bedrock simulator (answers of varied length and delay, a few throttled and failed
calls), serves the gateway with ``outcrop serve --workers N`` and ``callbacks: ["prometheus"]``
in front of it, drives chat calls (streamed and not) at a varying rate, scrapes ``/metrics``
every two seconds, and plots what the dashboard's panels compute from those scrapes (rates,
histogram quantiles) with matplotlib (``pip install matplotlib``). Not a test.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from outcrop.testing import (
    TEST_ACCESS_KEY,
    TEST_SECRET_KEY,
    BedrockSimulator,
    ConverseReply,
    HttpError,
    ServerThread,
)

KEY = "sk-dashboard"
AUTH = {"authorization": f"Bearer {KEY}"}
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "the",
    "lazy",
    "dog",
    "while",
    "the",
    "gateway",
    "counts",
]


def _reply(request: object) -> object:
    roll = random.random()
    if roll < 0.03:
        return HttpError(429, "ThrottlingException", "Too many requests")
    if roll < 0.04:
        return HttpError(500, "InternalServerException", "model error")
    n = random.randint(5, 60)
    return ConverseReply(
        " ".join(random.choice(WORDS) for _ in range(n)),
        usage=(random.randint(20, 400), n),
        delay=random.uniform(0.005, 0.03),
        cache=(random.choice([0, 0, 128]), 0),
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(sim_url: str) -> dict:
    params = {
        "aws_region_name": "us-west-2",
        "aws_access_key_id": TEST_ACCESS_KEY,
        "aws_secret_access_key": TEST_SECRET_KEY,
        "api_base": sim_url,
    }
    return {
        "model_list": [
            {
                "model_name": "nova-lite",
                "litellm_params": {"model": "bedrock/converse/amazon.nova-lite-v1:0", **params},
            },
            {
                "model_name": "claude-sonnet",
                "litellm_params": {
                    "model": "bedrock/converse/anthropic.claude-3-5-sonnet-20240620-v1:0",
                    **params,
                },
            },
        ],
        "general_settings": {"master_key": KEY},
        "litellm_settings": {"callbacks": ["prometheus"]},
    }


def _load(base: str, stop: threading.Event, seconds: float) -> None:
    started = time.monotonic()
    with httpx.Client(headers=AUTH, timeout=30) as client, ThreadPoolExecutor(16) as pool:

        def one() -> None:
            body = {
                "model": random.choice(["nova-lite", "nova-lite", "claude-sonnet"]),
                "messages": [{"role": "user", "content": "hello"}],
                "stream": random.random() < 0.6,
            }
            if random.random() < 0.02:
                body["messages"] = []  # a client error
            client.post(base + "/v1/chat/completions", json=body).read()

        while not stop.is_set():
            phase = (time.monotonic() - started) / seconds
            rate = 20 + 60 * max(0.0, 1 - abs(phase - 0.5) * 2.5)  # ramp up, then down
            pool.submit(one)
            time.sleep(random.expovariate(rate))


def _scrape(base: str) -> dict[tuple[str, tuple], float]:
    text = httpx.get(base + "/metrics", headers=AUTH).text
    out: dict[tuple[str, tuple], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _sum(sample: dict, name: str, **match: str) -> float:
    return sum(
        v
        for (n, labels), v in sample.items()
        if n == name and all(dict(labels).get(k) == w for k, w in match.items())
    )


def _quantile(prev: dict, cur: dict, name: str, q: float) -> float | None:
    """histogram_quantile(q, sum by (le) (increase(name_bucket))) between two scrapes."""
    buckets: dict[float, float] = defaultdict(float)
    for (n, labels), v in cur.items():
        if n == f"{name}_bucket":
            le = float(dict(labels)["le"])
            buckets[le] += v - prev.get((n, labels), 0.0)
    if not buckets or buckets[float("inf")] <= 0:
        return None
    total = buckets[float("inf")]
    lower, below = 0.0, 0.0
    for le in sorted(buckets):
        if buckets[le] >= q * total:
            if le == float("inf"):
                return lower
            span = buckets[le] - below
            return lower + (le - lower) * ((q * total - below) / span if span else 1.0)
        lower, below = le, buckets[le]
    return None


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seconds", type=float, default=90)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", default="docs/grafana/outcrop-dashboard.png")
    args = p.parse_args()

    sim = BedrockSimulator()
    sim.reply(_reply)
    with ServerThread(sim) as sim_server, tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "config.yaml"
        cfg.write_text(json.dumps(_config(sim_server.url)))
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "OUTCROP_LOG_LEVEL": "WARNING"}
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "outcrop",
                "serve",
                "--config",
                str(cfg),
                "--port",
                str(port),
                "--workers",
                str(args.workers),
                "--log-level",
                "WARNING",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(300):
                try:
                    if httpx.get(base + "/health/readiness").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            stop = threading.Event()
            loader = threading.Thread(target=_load, args=(base, stop, args.seconds), daemon=True)
            loader.start()
            scrapes: list[tuple[float, dict]] = []
            t0 = time.monotonic()
            while time.monotonic() - t0 < args.seconds:
                scrapes.append((time.monotonic() - t0, _scrape(base)))
                time.sleep(2)
            stop.set()
            loader.join(30)
            scrapes.append((time.monotonic() - t0, _scrape(base)))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    _plot(scrapes, args.out)
    print("wrote", args.out)


def _plot(scrapes: list[tuple[float, dict]], out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[float | None]] = defaultdict(list)
    xs: list[float] = []
    for (t0, prev), (t1, cur) in itertools.pairwise(scrapes):
        dt = t1 - t0
        xs.append(t1)
        for cls in ("2xx", "4xx", "5xx"):
            series[f"rps {cls}"].append(
                (
                    _sum(cur, "outcrop_requests_total", status_class=cls)
                    - _sum(prev, "outcrop_requests_total", status_class=cls)
                )
                / dt
            )
        for q in (0.5, 0.95, 0.99):
            series[f"latency p{int(q * 100)}"].append(
                _quantile(prev, cur, "outcrop_request_duration_seconds", q)
            )
            series[f"overhead p{int(q * 100)}"].append(
                _quantile(prev, cur, "outcrop_overhead_duration_seconds", q)
            )
        for q in (0.5, 0.95):
            series[f"ttft p{int(q * 100)}"].append(
                _quantile(prev, cur, "outcrop_time_to_first_token_seconds", q)
            )
        for kind in ("input", "output", "cache_read"):
            series[f"tokens {kind}"].append(
                (
                    _sum(cur, "outcrop_tokens_total", type=kind)
                    - _sum(prev, "outcrop_tokens_total", type=kind)
                )
                / dt
            )
        for model in ("nova-lite", "claude-sonnet"):
            series[f"spend {model}"].append(
                (
                    _sum(cur, "outcrop_spend_usd_total", model_name=model)
                    - _sum(prev, "outcrop_spend_usd_total", model_name=model)
                )
                / dt
                * 3600
            )
        series["in flight"].append(_sum(cur, "outcrop_in_flight_requests"))

    plt.style.use("dark_background")
    fig, axes = plt.subplots(3, 2, figsize=(14, 10), facecolor="#111217")
    panels = [
        ("Requests by status class (req/s)", ["rps 2xx", "rps 4xx", "rps 5xx"], 1.0, ""),
        ("Latency, total (ms)", ["latency p50", "latency p95", "latency p99"], 1000.0, ""),
        ("Time to first token, streams (ms)", ["ttft p50", "ttft p95"], 1000.0, ""),
        ("Gateway overhead (ms)", ["overhead p50", "overhead p95", "overhead p99"], 1000.0, ""),
        ("Tokens / s", ["tokens input", "tokens output", "tokens cache_read"], 1.0, ""),
        (
            "Spend (USD / hour) and in-flight calls",
            ["spend nova-lite", "spend claude-sonnet"],
            1.0,
            "in flight",
        ),
    ]
    for ax, (title, names, scale, right) in zip(axes.flat, panels, strict=True):
        ax.set_facecolor("#181b1f")
        for name in names:
            ys = [None if v is None else v * scale for v in series[name]]
            ax.plot(xs, [float("nan") if v is None else v for v in ys], label=name, linewidth=1.6)
        if right:
            twin = ax.twinx()
            twin.plot(xs, series[right], label=right, color="#bbbbbb", linestyle="--", linewidth=1)
            twin.set_ylabel(right)
        ax.set_title(title, loc="left", fontsize=11)
        ax.set_xlabel("seconds into the run")
        ax.grid(color="#2c3036", linewidth=0.6)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle("Outcrop gateway — drawn from /metrics scrapes of a local load run", fontsize=13)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80, facecolor=fig.get_facecolor())


if __name__ == "__main__":
    main()
