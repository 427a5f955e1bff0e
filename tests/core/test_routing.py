"""The router's choices: strategies, order, cooldowns, and the settings it reads from a
LiteLLM config."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from outcrop import ConfigError, Usage, parse_config
from outcrop.config import Deployment, RouterSettings
from outcrop.params import parse_params
from outcrop.routing import Router


def _group(*extra: dict, name: str = "m") -> list[Deployment]:
    return [
        Deployment(
            model_name=name,
            params=parse_params({"model": "bedrock/x", "aws_region_name": "us-east-1", **kw}),
            index=i,
            model_info={"id": f"d{i}"},
        )
        for i, kw in enumerate(extra)
    ]


def test_simple_shuffle_is_weighted():
    router = Router(_group({"weight": 9}, {"weight": 1}))
    seen = Counter(router.pick("m").id for _ in range(2000))
    assert seen["d0"] > seen["d1"] * 3


def test_order_serves_the_lowest_tier_first():
    router = Router(_group({"order": 2}, {"order": 1}, {}))
    assert {router.pick("m").id for _ in range(50)} == {"d1"}
    # d1 failed this call: the next tier serves it
    assert router.pick("m", exclude={1}).id == "d0"


def test_least_busy_picks_the_idlest():
    router = Router(_group({}, {}), RouterSettings(routing_strategy="least-busy"))
    d0, d1 = router.candidates("m")
    router.started(d0)
    router.started(d0)
    router.started(d1)
    assert router.pick("m").id == "d1"
    router.finished("d0", None)
    router.finished("d0", None)
    assert router.pick("m").id == "d0"


def test_latency_based_tries_each_then_prefers_the_fastest():
    router = Router(_group({}, {}), RouterSettings(routing_strategy="latency-based-routing"))
    d0, d1 = router.candidates("m")
    router.answered(d0, 2.0)
    assert router.pick("m").id == "d1"  # untried first
    router.answered(d1, 0.1)
    assert {router.pick("m").id for _ in range(20)} == {"d1"}
    router.failed(d1, 0.1)  # a failure weighs like a slow answer
    router.failed(d1, 0.1)
    assert router.pick("m").id == "d0"


def test_usage_based_honours_rpm_and_tpm():
    router = Router(
        _group({"rpm": 2}, {"tpm": 100}), RouterSettings(routing_strategy="usage-based-routing")
    )
    d0, d1 = router.candidates("m")
    router.started(d1)
    router.finished("d1", Usage(prompt_tokens=100, completion_tokens=0, total_tokens=100))
    assert router.pick("m").id == "d0"  # d1 spent its tpm
    router.started(d0)
    router.started(d0)
    # both at their limit: the least used this minute still serves (caps are another plugin's)
    assert router.pick("m").id == "d0"


def test_cooldown_needs_a_second_deployment_and_ends():
    alone = Router(_group({}), RouterSettings(allowed_fails=0, cooldown_time=60))
    (d,) = alone.candidates("m")
    alone.failed(d, 0.1)
    assert not alone.cooling(d)  # nobody else could serve: never cooled down
    router = Router(_group({}, {}), RouterSettings(allowed_fails=1, cooldown_time=0.2))
    d0, _ = router.candidates("m")
    router.failed(d0, 0.1)
    assert not router.cooling(d0)  # one failure is allowed
    router.failed(d0, 0.1)
    assert router.cooling(d0)
    assert {router.pick("m").id for _ in range(30)} == {"d1"}
    deadline = time.monotonic() + 10
    while router.cooling(d0):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert "d0" in {router.pick("m").id for _ in range(100)}


def test_disable_cooldowns():
    router = Router(_group({}, {}), RouterSettings(allowed_fails=0, disable_cooldowns=True))
    d0, _ = router.candidates("m")
    router.failed(d0, 0.1)
    assert not router.cooling(d0)


def _deployments(*names: str) -> list[dict]:
    return [
        {"model_name": n, "litellm_params": {"model": "bedrock/x", "aws_region_name": "us-east-1"}}
        for n in names
    ]


def test_router_settings_come_from_router_and_litellm_settings():
    config = parse_config(
        {
            "model_list": _deployments("a", "b"),
            "litellm_settings": {"num_retries": 1, "fallbacks": [{"a": ["b"]}], "cooldown_time": 9},
            "router_settings": {"num_retries": 4, "routing_strategy": "least-busy"},
        }
    )
    router = config.router_settings
    assert router.num_retries == 4  # router_settings wins
    assert router.cooldown_time == 9 and router.routing_strategy == "least-busy"
    assert Router([], router).fallbacks("a") == ["b"]
    assert not config.sections  # nothing left for "accepted, ignored"


def test_router_settings_errors_name_their_path():
    with pytest.raises(ConfigError) as info:
        parse_config(
            {
                "model_list": _deployments("a"),
                "router_settings": {"fallbacks": [{"a": ["nope"]}], "routing_strategy": "x"},
            }
        )
    assert any(e.startswith("router_settings.routing_strategy") for e in info.value.errors)
    with pytest.raises(ConfigError) as info:
        parse_config(
            {"model_list": _deployments("a"), "litellm_settings": {"fallbacks": [{"a": ["nope"]}]}}
        )
    assert info.value.errors == [
        "litellm_settings.fallbacks[0]: 'nope' is not a model_name of model_list"
    ]


def test_deployment_router_keys_are_read():
    config = parse_config(
        {
            "model_list": [
                {
                    "model_name": "a",
                    "litellm_params": {
                        "model": "bedrock/x",
                        "aws_region_name": "us-east-1",
                        "num_retries": 2,
                        "rpm": 10,
                        "tpm": 1000,
                        "order": 1,
                    },
                }
            ]
        }
    )
    params = config.model_list[0].params
    assert (params.num_retries, params.rpm, params.tpm, params.order) == (2, 10, 1000, 1)
    assert not config.ignored
