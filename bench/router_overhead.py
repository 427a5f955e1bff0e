"""What the router costs a call that needs no retry: CPU seconds per chat request, in-process.

    python bench/router_overhead.py [--requests 2000] [--repeats 7]

Drives ``/v1/chat/completions`` (the Converse chat provider) through ASGI exactly as
``bench/inprocess.py`` does (same canned upstream in a child process, whose CPU is not counted),
once per configuration of the same model:

- ``single``: one deployment and no router settings (the fast path: one weighted choice);
- ``two``: two deployments of the name (weights 3:1), nothing else;
- ``router``: the same two deployments, with retries, a fallback, a retry policy, cooldowns and a
  deadline configured (nothing fails, so none of it runs);
- ``tags``: the same with tag routing on and a tagged request;
- ``alias``: the ``router`` configuration called through a ``model_group_alias``;
- ``wildcard``: a ``bedrock/*`` deployment with an allow-list, called with the concrete model;
- ``usage``: ``usage-based-routing`` on in-process counters (one counters step per call).

The figure is the minimum over ``--repeats`` runs of this process's CPU time per request (the
least disturbed by other load). ``--micro`` times only the router's part of a call instead
(``Gateway.resolve`` then ``Gateway.send_routed`` around an attempt that answers 200 at once, no
network), many more times: on a loaded machine the whole call's figure moves by more than the
router costs. Not a test: pytest never collects it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import canned
from inprocess import KEY_ID, PROMPT, SECRET, _one, canned_upstream

NAME = "bench-converse"
MODEL = f"bedrock/{canned.MODEL_ID}"


def _configs(upstream: str) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    creds = {
        "aws_access_key_id": KEY_ID,
        "aws_secret_access_key": SECRET,
        "api_base": upstream,
    }

    def deployment(name: str, region: str, **extra: Any) -> dict[str, Any]:
        params = {"model": MODEL, "aws_region_name": region, **creds, **extra}
        return {"model_name": name, "litellm_params": params}

    base = {"general_settings": {"master_key": "sk-bench"}}
    body = {"model": NAME, "messages": [{"role": "user", "content": PROMPT}]}
    routed = [
        deployment(NAME, "us-west-2", weight=3),
        deployment(NAME, "us-east-1", weight=1),
        deployment("bench-fallback", "eu-west-1"),
    ]
    router = {
        "num_retries": 3,
        "fallbacks": [{NAME: ["bench-fallback"]}],
        "retry_policy": {"RateLimitErrorRetries": 5, "InternalServerErrorRetries": 2},
        "allowed_fails": 2,
        "cooldown_time": 30,
        "timeout": 120,
        "model_group_alias": {"bench-alias": NAME},
    }
    tagged = [
        deployment(NAME, "us-west-2", tags=["paid"]),
        deployment(NAME, "us-east-1", tags=["default"]),
    ]
    wildcard = {
        "model_name": "bedrock/*",
        "litellm_params": {"model": "bedrock/*", "aws_region_name": "us-west-2", **creds},
        "model_info": {"allowed_models": ["bedrock/anthropic.*", "bedrock/amazon.*"]},
    }
    return {
        "single": ({**base, "model_list": [deployment(NAME, "us-west-2")]}, body),
        "two": ({**base, "model_list": routed}, body),
        "router": ({**base, "model_list": routed, "router_settings": router}, body),
        "tags": (
            {
                **base,
                "model_list": tagged,
                "router_settings": {"enable_tag_filtering": True, "num_retries": 2},
            },
            {**body, "tags": ["paid"]},
        ),
        "alias": (
            {**base, "model_list": routed, "router_settings": router},
            {**body, "model": "bench-alias"},
        ),
        "wildcard": ({**base, "model_list": [wildcard]}, {**body, "model": MODEL}),
        "usage": (
            {
                **base,
                "model_list": routed[:2],
                "router_settings": {"routing_strategy": "usage-based-routing"},
            },
            body,
        ),
    }


async def _measure(config: dict[str, Any], body: bytes, args: argparse.Namespace) -> float:
    from outcrop.app import create_app

    app = create_app(config)
    await app.state.gateway.start()
    try:
        for _ in range(200):  # warm-up: pools, caches, signing keys
            assert await _one(app, "/v1/chat/completions", body) == 200
        runs = []
        for _ in range(args.repeats):
            c0 = time.process_time()
            for _ in range(args.requests):
                await _one(app, "/v1/chat/completions", body)
            runs.append((time.process_time() - c0) / args.requests * 1e6)
        return min(runs)
    finally:
        await app.state.gateway.stop()


async def _measure_routing(config: dict[str, Any], body: dict[str, Any], args: Any) -> float:
    """CPU per call of the router's part alone: resolve, then the routed send of one attempt."""
    from outcrop.config import parse_config
    from outcrop.gateway import Gateway
    from outcrop.routing import request_tags
    from outcrop.upstream import UpstreamResponse

    gateway = Gateway(parse_config(config))
    await gateway.start()
    answer = UpstreamResponse(200, [], time.perf_counter())

    async def attempt(_: Any) -> UpstreamResponse:
        return answer

    async def call() -> None:
        extra = {"tags": body["tags"]} if "tags" in body else {}
        tags = request_tags(extra, None, {})
        _, _, deployment = gateway.resolve(body["model"], None, tags)
        assert deployment is not None
        await gateway.send_routed(
            attempt, model_name=deployment.model_name, deployment=deployment, tags=tags
        )

    try:
        for _ in range(1000):
            await call()
        runs = []
        for _ in range(args.repeats):
            c0 = time.process_time()
            for _ in range(args.requests):
                await call()
            runs.append((time.process_time() - c0) / args.requests * 1e6)
        return min(runs)
    finally:
        await gateway.stop()


async def _run(args: argparse.Namespace, upstream: str) -> None:
    from outcrop.logs import configure_logging

    configure_logging("WARNING")
    configs = _configs(upstream)
    results: dict[str, float] = {}
    for name in args.configs.split(","):
        config, body = configs[name]
        if args.micro:
            results[name] = await _measure_routing(config, body, args)
        else:
            results[name] = await _measure(config, json.dumps(body).encode(), args)
        delta = (results[name] / results["single"] - 1) * 100 if "single" in results else 0.0
        print(f"{name:9s} cpu/request min {results[name]:7.1f} us  ({delta:+.1f}% vs single)")


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--configs", default="single,two,router,tags,alias,wildcard,usage")
    p.add_argument("--micro", action="store_true", help="time the router's part alone")
    args = p.parse_args()
    with canned_upstream() as upstream:
        asyncio.run(_run(args, upstream))


if __name__ == "__main__":
    main()
