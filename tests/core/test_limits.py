"""The counters (``outcrop.limits``: in-process and on the machine's Redis, same semantics) and
the deployment ``rpm``/``tpm`` caps the router honours."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import openai
import pytest

import outcrop
from outcrop import ConfigError, Limit
from outcrop.limits import LocalCounters, RedisCounters
from outcrop.testing.replies import ConverseReply

from .converse_plugin import ConversePlugin

CLAUDE = "anthropic.claude-3-5-sonnet-20240620-v1:0"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Hello"}]}]


@pytest.fixture(params=["local", "redis"])
def counters(request: pytest.FixtureRequest) -> Any:
    if request.param == "local":
        return LocalCounters()
    settings = request.getfixturevalue("redis_settings")
    return RedisCounters(settings["redis_url"], prefix=settings["redis_key_prefix"])


async def test_counters_semantics(counters: Any) -> None:
    await counters.start()
    try:
        rpm = Limit(Limit.REQUESTS, "k", 3, "this key's rpm_limit")
        tpm = Limit(Limit.TOKENS, "k", 20, "this key's tpm_limit")
        par = Limit(Limit.PARALLEL, "k", 2, "this key's max_parallel_requests")
        admitted = [await counters.admit([rpm, tpm, par], f"r{i}") for i in range(3)]
        # two slots: the third call is refused by the parallel limit and takes no request
        assert [v.refused for v in admitted] == [None, None, par]
        assert admitted[1].headers["x-ratelimit-remaining-requests"] == "1"
        assert admitted[1].headers["x-ratelimit-remaining-tokens"] == "20"
        counters.finish("r0", admitted[0].held, [("k", 25)])  # tokens charged at the end
        await asyncio.sleep(0)
        await _settled(counters)
        refused = await counters.admit([rpm, tpm, par], "r3")
        assert refused.refused == tpm and refused.used == 25
        error = refused.error()
        assert error.status == 429 and error.aws_type == "ThrottlingException"
        assert 1 <= int(error.headers["retry-after"]) <= 60
        assert error.headers["x-ratelimit-remaining-tokens"] == "0"
        # without the token limit: the slot freed by r0 admits one more, then rpm says no
        assert (await counters.admit([rpm, par], "r4")).refused is None
        assert (await counters.admit([rpm], "r5")).refused == rpm
        budget = Limit(Limit.SPEND, "k:0", 1.0, "this key", 3600)
        assert (await counters.admit([budget], "r6")).refused is None
        counters.finish("r6", (), (), [("k:0", 0.6, 3600), ("k:0", 0.6, 3600)])
        await _settled(counters)
        assert await counters.spent("k:0") == pytest.approx(1.2)
        over = await counters.admit([budget], "r7")
        assert over.refused == budget and "Budget has been exceeded" in over.error().message
        # deployments: the first candidate under its caps takes the request
        picks = [await counters.pick([("a", 1, None), ("b", 2, None)]) for _ in range(4)]
        assert [p[0] for p in picks] == [0, 1, 1, -1] and 0 < picks[3][1] <= 60
    finally:
        await counters.close()


async def _settled(counters: Any) -> None:
    """Redis charges run in the background: wait for them."""
    tasks = getattr(counters, "_tasks", set())
    if tasks:
        await asyncio.wait(set(tasks))


async def test_redis_down_fails_closed_or_open(unused_port: int) -> None:
    limit = [Limit(Limit.REQUESTS, "k", 1, "this key's rpm_limit")]
    closed = RedisCounters(f"redis://127.0.0.1:{unused_port}/0", timeout=0.5)
    await closed.start()
    with pytest.raises(outcrop.OutcropError) as caught:
        await closed.admit(limit, "r")
    assert caught.value.status == 503
    await closed.close()
    open_ = RedisCounters(f"redis://127.0.0.1:{unused_port}/0", on_failure="fail_open", timeout=0.5)
    await open_.start()
    verdict = await open_.admit(limit, "r")
    assert verdict.refused is None and verdict.skipped and open_.skipped == 1
    await open_.close()


def _capped_config(simulator_params: Any, **caps: Any) -> dict[str, Any]:
    return {
        "model_list": [
            {
                "model_name": "claude",
                "litellm_params": simulator_params(f"bedrock/{CLAUDE}", rpm=2),
            },
            {
                "model_name": "claude",
                "litellm_params": simulator_params(f"bedrock/{HAIKU}", **caps),
            },
            {
                "model_name": "chat",
                "litellm_params": simulator_params("testprov/amazon.nova-lite-v1:0", tpm=20),
            },
        ]
    }


def test_deployment_caps_move_calls_then_refuse(
    gateway_factory, simulator_params, bedrock_simulator, outcrop_plugin
):
    outcrop_plugin(ConversePlugin(), "testprov")
    gateway = gateway_factory(_capped_config(simulator_params, rpm=1))
    url = f"{gateway.url}/bedrock/model/claude/converse"
    statuses = [httpx.post(url, json={"messages": MESSAGES}).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]  # 2 + 1 per minute, whichever was picked first
    used = sorted(r.params["modelId"] for r in bedrock_simulator.requests)
    assert used == sorted([CLAUDE, CLAUDE, HAIKU])
    refused = httpx.post(url, json={"messages": MESSAGES})
    assert refused.headers["x-amzn-errortype"].startswith("ThrottlingException")
    assert "at its rpm/tpm cap" in refused.json()["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60

    # tpm: charged from the reported tokens when the call ends (10 + 5 per call here)
    bedrock_simulator.reply(ConverseReply("hi", usage=(10, 5)))
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)
    ask = {"model": "chat", "messages": [{"role": "user", "content": "x"}]}
    client.chat.completions.create(**ask)
    client.chat.completions.create(**ask)  # 15 < 20: admitted
    with pytest.raises(openai.RateLimitError, match="rpm/tpm cap"):
        client.chat.completions.create(**ask)  # 30 >= 20


def test_caps_with_several_workers_need_redis(
    simulator_params, monkeypatch, redis_settings, outcrop_plugin
):
    outcrop_plugin(ConversePlugin(), "testprov")
    monkeypatch.setenv("OUTCROP_WORKERS", "2")
    with pytest.raises(ConfigError, match="redis_url"):
        outcrop.Gateway(outcrop.parse_config(_capped_config(simulator_params)))
    config = _capped_config(simulator_params)
    config["general_settings"] = dict(redis_settings)
    assert outcrop.Gateway(outcrop.parse_config(config)).counters.shared


async def test_python_api_honours_deployment_caps(
    simulator_params, bedrock_simulator, outcrop_plugin
):
    outcrop_plugin(ConversePlugin(), "testprov")
    bedrock_simulator.reply(ConverseReply("hi", usage=(10, 5)))
    config = outcrop.parse_config(_capped_config(simulator_params))
    ask = {"messages": [{"role": "user", "content": "x"}], "config": config}
    await outcrop.acompletion("chat", **ask)
    await outcrop.acompletion("chat", **ask)  # 15 tokens < 20
    with pytest.raises(outcrop.OutcropError) as refused:
        await outcrop.acompletion("chat", **ask)
    assert refused.value.status == 429 and "rpm/tpm cap" in refused.value.message


def test_redis_url_settings():
    parse = outcrop.parse_config
    url = "redis://127.0.0.1:6379/3"
    assert parse({"router_settings": {"redis_url": url}}).general_settings.redis_url == url
    both = {"general_settings": {"redis_url": url}, "router_settings": {"redis_url": "redis://x"}}
    assert parse(both).general_settings.redis_url == url  # general_settings wins
    assert parse({}).general_settings.limits_on_redis_failure == "fail_closed"
    with pytest.raises(ConfigError, match="limits_on_redis_failure"):
        parse({"general_settings": {"limits_on_redis_failure": "sometimes"}})
