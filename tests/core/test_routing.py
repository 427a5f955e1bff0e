"""The router's choices: strategies, order, cooldowns, and the settings it reads from a
LiteLLM config."""

from __future__ import annotations

import time
from collections import Counter
from types import SimpleNamespace

import pytest

from outcrop import ConfigError, OutcropError, parse_config
from outcrop.config import Deployment, RouterSettings
from outcrop.limits import LocalCounters, RedisCounters
from outcrop.params import parse_params
from outcrop.retry import by_usage
from outcrop.routing import Router, request_tags


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


async def test_usage_based_picks_the_least_used_on_the_counters():
    """usage-based-routing reads the counters (shared through Redis when configured): the
    deployment with the fewest tokens this window serves, under its rpm/tpm."""
    counters = LocalCounters()
    gateway = SimpleNamespace(
        router=Router(
            _group({"rpm": 2}, {"tpm": 100}), RouterSettings(routing_strategy="usage-based-routing")
        ),
        counters=counters,
    )
    d0, d1 = gateway.router.candidates("m")
    counters.finish("r1", tokens=[("deployment:d1", 60)])
    assert (await by_usage(gateway, d1, None)).id == "d0"  # d1 used more tokens
    counters.finish("r2", tokens=[("deployment:d0", 90)])
    assert (await by_usage(gateway, d0, None)).id == "d1"
    counters.finish("r3", tokens=[("deployment:d1", 40)])  # d1 at its tpm: d0 despite its tokens
    assert (await by_usage(gateway, d1, None)).id == "d0"
    with pytest.raises(OutcropError) as info:  # d0 at its rpm too: no deployment is left
        await by_usage(gateway, d0, None)
    assert info.value.status == 429


async def test_usage_based_is_shared_through_redis(redis_settings):
    """Two gateway processes' routers on one Redis see the same usage (issue 12)."""
    instances = []
    for _ in range(2):
        counters = RedisCounters(
            redis_settings["redis_url"], prefix=redis_settings["redis_key_prefix"]
        )
        await counters.start()
        router = Router(_group({}, {}), RouterSettings(routing_strategy="usage-based-routing"))
        instances.append(SimpleNamespace(router=router, counters=counters))
    try:
        one, two = instances
        d0, _ = one.router.candidates("m")
        one.counters.finish("a", tokens=[("deployment:d0", 500)])
        await one.counters.close()  # the charge is written before close returns
        assert {(await by_usage(two, d0, None)).id for _ in range(5)} == {"d1"}
    finally:
        for instance in instances:
            await instance.counters.close()


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


def test_allowed_fails_policy_counts_its_class_apart():
    router = Router(
        _group({}, {}),
        parse_config(
            {
                "model_list": _deployments("m"),
                "router_settings": {
                    "allowed_fails": 3,
                    "allowed_fails_policy": {"RateLimitErrorAllowedFails": 0},
                },
            }
        ).router_settings,
    )
    d0, d1 = router.candidates("m")
    router.failed(d0, 0.1, "InternalServerError")
    assert not router.cooling(d0)  # counted against allowed_fails (3)
    router.failed(d1, 0.1, "RateLimitError")
    assert router.cooling(d1)  # RateLimitErrorAllowedFails: 0


def test_retry_policy_honours_what_may_succeed_and_names_the_rest():
    config = parse_config(
        {
            "model_list": _deployments("a", "b"),
            "router_settings": {
                "num_retries": 1,
                "retry_policy": {
                    "RateLimitErrorRetries": 4,
                    "BadRequestErrorRetries": 3,
                    "AuthenticationErrorRetries": 0,
                },
                "model_group_retry_policy": {"b": {"InternalServerErrorRetries": 2}},
                "allowed_fails_policy": {"ContentPolicyViolationErrorAllowedFails": 5},
            },
        }
    )
    router = Router(config.model_list, config.router_settings)
    assert router.retry_limits("a") == {"RateLimitError": 4}
    assert router.retry_limits("b") == {"RateLimitError": 4, "InternalServerError": 2}
    assert config.ignored == [
        "router_settings.retry_policy.BadRequestErrorRetries: a 400 would fail again: never retried",
        "router_settings.allowed_fails_policy.ContentPolicyViolationErrorAllowedFails: only "
        "retryable failures (429, 5xx, timeouts) count towards a cooldown",
    ]
    with pytest.raises(ConfigError) as info:
        parse_config(
            {
                "model_list": _deployments("a"),
                "router_settings": {"retry_policy": {"RateLimitErrorRetrys": 1}},
            }
        )
    assert info.value.errors[0].startswith("router_settings.retry_policy")


def test_tag_routing_as_litellm_documents_it():
    router = Router(
        _group({"tags": ["free"]}, {"tags": ["paid", "eu"]}, {"tags": ["default"]}),
        RouterSettings(enable_tag_filtering=True),
    )
    assert {router.pick("m", tags=["free"]).id for _ in range(20)} == {"d0"}
    assert {router.pick("m", tags=["paid", "x"]).id for _ in range(20)} == {"d1"}  # any tag
    assert {router.pick("m").id for _ in range(20)} == {"d2"}  # untagged: default
    assert {router.pick("m", tags=["nobody"]).id for _ in range(20)} == {"d2"}
    strict = Router(
        _group({"tags": ["paid"]}, {"tags": ["paid", "eu"]}),
        RouterSettings(enable_tag_filtering=True, tag_filtering_match_any=False),
    )
    assert {strict.pick("m", tags=["paid", "eu"]).id for _ in range(20)} == {"d1"}
    assert strict.pick("m", tags=["other"]) is None  # no match and no default
    assert {strict.pick("m").id for _ in range(50)} == {"d0", "d1"}  # untagged, no default: all
    off = Router(_group({"tags": ["free"]}, {"tags": ["paid"]}))
    assert {off.pick("m", tags=["free"]).id for _ in range(50)} == {"d0", "d1"}


def test_request_tags_come_from_body_metadata_and_header():
    body = {"tags": ["a"], "other": 1}
    assert request_tags(body, {"tags": "b"}, {"x-litellm-tags": "c, a"}) == ("a", "b", "c")
    assert body == {"other": 1}  # never sent to the provider
    assert request_tags({}, None, {}) is None


def test_model_group_alias_shares_the_deployments_and_may_hide():
    config = parse_config(
        {
            "model_list": _deployments("claude", "nova"),
            "router_settings": {
                "model_group_alias": {
                    "sonnet": "claude",
                    "secret": {"model": "nova", "hidden": True},
                },
                "fallbacks": [{"claude": ["nova"]}],
            },
        }
    )
    router = Router(config.model_list, config.router_settings)
    assert router.pick("sonnet").model_name == "claude"
    assert router.pick("secret").model_name == "nova"
    assert router.fallbacks("sonnet") == ["nova"]  # the model_name's own
    assert "secret" in router.names() and "secret" not in router.listed
    assert "sonnet" in router.listed
    for bad, why in (
        ({"claude": "nova"}, "already a model_name"),
        ({"x": "nope"}, "'nope' is not"),
    ):
        with pytest.raises(ConfigError) as info:
            parse_config(
                {
                    "model_list": _deployments("claude", "nova"),
                    "router_settings": {"model_group_alias": bad},
                }
            )
        assert why in info.value.errors[0]
