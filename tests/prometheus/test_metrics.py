"""``/metrics`` after calls on every surface — chat (OpenAI SDK, streamed or not), the
pass-through (boto3) — and every way a call ends (success, 4xx, upstream 5xx, client gone, a
refusal), read back with ``prometheus_client``'s text parser."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest

import outcrop
from outcrop import OutcropError
from outcrop.testing import ConverseReply, HttpError

from .common import AUTH, MASTER_KEY, gateway_config, runtime_client, scrape

USER = [{"role": "user", "content": "hi"}]


def _client(gw: Any, key: str = MASTER_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


def _wait(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_chat_success_and_stream(prom_gateway, bedrock_simulator):
    client = _client(prom_gateway)
    bedrock_simulator.reply(ConverseReply("fine", usage=(10, 5), cache=(4, 2)), times=1)
    first = client.chat.completions.create(model="nova", messages=USER).usage
    bedrock_simulator.reply(ConverseReply("one two three", usage=(7, 3)), times=1)
    chunks = list(
        client.chat.completions.create(
            model="nova", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    second = chunks[-1].usage
    _wait(lambda: scrape(prom_gateway.url).value("outcrop_requests_total") == 2)
    s = scrape(prom_gateway.url)
    labels = {"model_name": "nova", "deployment": "nova#0", "surface": "chat"}
    assert s.value("outcrop_requests_total", status_class="2xx", **labels) == 2
    assert s.value("outcrop_tokens_total", type="output", **labels) == (
        first.completion_tokens + second.completion_tokens
    )
    assert s.value("outcrop_tokens_total", type="input", **labels) == (
        first.prompt_tokens + second.prompt_tokens
    )
    cached = [u.prompt_tokens_details for u in (first, second) if u.prompt_tokens_details]
    assert s.value("outcrop_tokens_total", type="cache_read", **labels) == sum(
        d.cached_tokens for d in cached
    )
    assert s.value("outcrop_tokens_total", type="cache_write", **labels) == sum(
        d.cache_creation_tokens for d in cached
    )
    assert cached[0].cached_tokens == 4
    assert s.value("outcrop_spend_usd_total", **labels) > 0
    assert s.value("outcrop_request_duration_seconds_count", **labels) == 2
    assert s.value("outcrop_upstream_duration_seconds_count", **labels) == 2
    assert s.value("outcrop_overhead_duration_seconds_count", surface="chat") == 2
    # only the streamed call has a first token
    assert s.value("outcrop_time_to_first_token_seconds_count", **labels) == 1
    total = s.value("outcrop_request_duration_seconds_sum", **labels)
    upstream = s.value("outcrop_upstream_duration_seconds_sum", **labels)
    assert 0 < upstream <= total
    assert s.value("outcrop_in_flight_requests") == 0  # sampled at scrape time: none running


def test_errors_are_counted_by_class_and_aws_type(prom_gateway, bedrock_simulator):
    client = _client(prom_gateway)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="nova", messages=[])
    bedrock_simulator.reply(HttpError(500, "InternalServerException", "boom"), times=1)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="nova", messages=USER)
    bedrock_simulator.reply(HttpError(429, "ThrottlingException", "slow down"), times=1)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="nova", messages=USER)
    with pytest.raises(openai.BadRequestError):  # a raw model string nobody claims
        client.chat.completions.create(model="made-up/123", messages=USER)
    _wait(lambda: scrape(prom_gateway.url).value("outcrop_requests_total") == 4)
    s = scrape(prom_gateway.url)
    chat = {"surface": "chat"}
    assert s.value("outcrop_requests_total", status_class="4xx", **chat) == 3
    assert (
        s.value(
            "outcrop_requests_total",
            status_class="5xx",
            error_type="InternalServerException",
            model_name="nova",
            **chat,
        )
        == 1
    )
    assert s.value("outcrop_requests_total", error_type="ThrottlingException", **chat) == 1
    # the made-up model string never becomes a label value
    assert "made-up/123" not in s.text
    # AWS's own throttling is not a gateway refusal
    assert s.value("outcrop_refusals_total") == 0


def test_a_client_that_disconnects_mid_stream_is_a_499(prom_gateway, bedrock_simulator):
    bedrock_simulator.reply(ConverseReply(" ".join(["word"] * 60), delay=0.05), times=1)
    with httpx.stream(
        "POST",
        prom_gateway.url + "/v1/chat/completions",
        json={"model": "nova", "messages": USER, "stream": True},
        headers=AUTH,
    ) as r:
        for _ in r.iter_lines():
            break  # the first chunk arrived: hang up
    _wait(lambda: scrape(prom_gateway.url).value("outcrop_requests_total") == 1)
    s = scrape(prom_gateway.url)
    assert s.value("outcrop_requests_total", status_class="4xx", model_name="nova") == 1
    assert s.value("outcrop_time_to_first_token_seconds_count", model_name="nova") == 1


def test_passthrough_calls(prom_gateway, bedrock_simulator):
    runtime = runtime_client(prom_gateway.url)
    bedrock_simulator.reply(ConverseReply("fine", usage=(6, 2)), times=1)
    runtime.converse(modelId="nova", messages=[{"role": "user", "content": [{"text": "hi"}]}])
    bedrock_simulator.reply(ConverseReply("one two", usage=(3, 4)), times=1)
    stream = runtime.converse_stream(
        modelId="nova", messages=[{"role": "user", "content": [{"text": "hi"}]}]
    )
    assert list(stream["stream"])
    bedrock_simulator.reply(HttpError(400, "ValidationException", "bad"), times=1)
    with pytest.raises(runtime.exceptions.ValidationException):
        runtime.converse(modelId="nova", messages=[{"role": "user", "content": [{"text": "x"}]}])
    _wait(lambda: scrape(prom_gateway.url).value("outcrop_requests_total") == 3)
    s = scrape(prom_gateway.url)
    pt = {"surface": "passthrough", "model_name": "nova", "deployment": "nova#0"}
    assert s.value("outcrop_requests_total", status_class="2xx", **pt) == 2
    assert (
        s.value(
            "outcrop_requests_total", status_class="4xx", error_type="ValidationException", **pt
        )
        == 1
    )
    assert s.value("outcrop_tokens_total", type="output", **pt) == 6
    assert s.value("outcrop_time_to_first_token_seconds_count", **pt) == 1


class Refuser:
    """Refuses like a budget or a rate limit does, and reports a level like outcrop-keys."""

    def __init__(self) -> None:
        self.code = "budget_exceeded"

    @outcrop.hookimpl
    def outcrop_admit(self, admission: outcrop.Admission) -> None:
        raise OutcropError("no", 429, code=self.code, aws_type="ThrottlingException")

    @outcrop.hookimpl
    def outcrop_report_gauges(self, report: Any) -> None:
        report("spend_buffer_rows", "spend rows buffered, not yet written", 7)


def test_refusals_by_reason_and_plugin_levels(gateway_factory, bedrock_simulator, outcrop_plugin):
    refuser = Refuser()
    outcrop_plugin(refuser, "refuser")
    gw = gateway_factory(gateway_config(bedrock_simulator.url))
    client = _client(gw)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="nova", messages=USER)
    refuser.code = "rate_limit_exceeded"
    for _ in range(2):
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="nova", messages=USER)
    _wait(lambda: scrape(gw.url).value("outcrop_requests_total") == 3)
    s = scrape(gw.url)
    assert s.value("outcrop_refusals_total", reason="budget", surface="chat") == 1
    assert s.value("outcrop_refusals_total", reason="rate_limit", surface="chat") == 2
    assert s.value("outcrop_spend_buffer_rows") == 7
    assert not bedrock_simulator.requests  # refused before any upstream byte


def test_bearer_token(gateway_factory, bedrock_simulator):
    config = gateway_config(bedrock_simulator.url, prometheus={"bearer_token": "scrape-me"})
    gw = gateway_factory(config)
    r = httpx.get(gw.url + "/metrics")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    # the scrape token replaces the master key for /metrics
    assert httpx.get(gw.url + "/metrics", headers=AUTH).status_code == 401
    s = scrape(gw.url, headers={"authorization": "Bearer scrape-me"})
    assert "outcrop_in_flight_requests" in s.names()


def test_a_gateway_with_a_master_key_serves_metrics_to_it_only(gateway_factory, bedrock_simulator):
    config = gateway_config(
        bedrock_simulator.url, prometheus={"key_labels": True, "team_labels": True}
    )
    gw = gateway_factory(config)
    assert httpx.get(gw.url + "/metrics").status_code == 401
    bedrock_simulator.reply(ConverseReply("fine"), times=1)
    _client(gw).chat.completions.create(model="nova", messages=USER)
    _wait(lambda: scrape(gw.url).value("outcrop_requests_total") == 1)
    s = scrape(gw.url)
    assert s.value("outcrop_requests_total", key_alias="master_key", team="") == 1
    assert s.value("outcrop_spend_usd_total", key_alias="master_key") > 0


def test_off_unless_configured(gateway_factory, bedrock_simulator):
    config = gateway_config(bedrock_simulator.url)
    del config["litellm_settings"]
    gw = gateway_factory(config)
    assert httpx.get(gw.url + "/metrics", headers=AUTH).status_code == 404
    assert not [
        name
        for name, _ in gw.gateway.pm.list_name_plugin()
        if name.startswith("outcrop_prometheus.")
    ]
    on = gateway_factory({**config, "prometheus": {"enabled": True, "path": "/prom"}})
    assert httpx.get(on.url + "/prom", headers=AUTH).status_code == 200


def test_a_malformed_section_is_a_config_error(gateway_factory, bedrock_simulator):
    from outcrop.config import parse_config
    from outcrop.errors import ConfigError

    config = gateway_config(bedrock_simulator.url, prometheus={"key_lables": True})
    with pytest.raises(ConfigError) as info:
        outcrop.Gateway(parse_config(config))
    assert info.value.errors[0].startswith("prometheus: Object contains unknown field `key_lables`")


def test_retries_and_fallbacks_through_the_router(gateway_factory, bedrock_simulator):
    config = gateway_config(bedrock_simulator.url)
    nova = config["model_list"][0]
    config["model_list"].append({**nova, "model_name": "lite"})
    config["router_settings"] = {"num_retries": 1, "fallbacks": [{"nova": ["lite"]}]}
    gw = gateway_factory(config)
    bedrock_simulator.reply(HttpError(503, "ServiceUnavailableException", "busy"), times=2)
    bedrock_simulator.reply(ConverseReply("fine"), times=1)
    _client(gw).chat.completions.create(model="nova", messages=USER)
    assert len(bedrock_simulator.requests) == 3
    _wait(lambda: scrape(gw.url).value("outcrop_requests_total") == 1)
    s = scrape(gw.url)
    assert s.value("outcrop_retries_total", model_name="nova", deployment="nova#0") == 1
    assert s.value("outcrop_fallbacks_total", model_name="lite", deployment="lite#1") == 1
    assert s.value("outcrop_requests_total", status_class="2xx") == 1


def test_model_strings_aws_refuses_never_become_series(gateway_factory, bedrock_simulator):
    # with raw model strings allowed a client can send any model id through the pass-through;
    # AWS refusing it must not leave a series (and a cached child) per string in every worker
    config = gateway_config(bedrock_simulator.url)
    config["general_settings"]["allow_raw_models"] = True
    prom_gateway = gateway_factory(config)
    bedrock_simulator.reply(
        HttpError(400, "ValidationException", "The provided model identifier is invalid.")
    )
    with httpx.Client(base_url=prom_gateway.url, headers=AUTH, timeout=30) as client:
        for i in range(300):
            r = client.post(f"/bedrock/model/made-up.model-{i}/converse", json={"messages": []})
            assert r.status_code == 400
    _wait(lambda: scrape(prom_gateway.url).value("outcrop_requests_total") == 300)
    text = scrape(prom_gateway.url).text
    assert "made-up.model-" not in text
