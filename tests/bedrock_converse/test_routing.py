"""Retries, failover, fallbacks and cooldowns on the chat route, with faults injected in the
signature-verifying simulator (each attempt is a real, re-signed upstream request)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest

from outcrop.testing.replies import ConverseReply, HttpError, RawReply

from .common import CLAUDE, MASTER_KEY, NOVA, USER

EAST, WEST = "us-east-1", "us-west-2"


def _deployment(simulator_params: Callable[..., dict[str, Any]], name: str, region: str, **kw):
    model = kw.pop("model", f"bedrock/{CLAUDE}")
    return {
        "model_name": name,
        "litellm_params": simulator_params(model, aws_region_name=region, **kw),
        "model_info": {"id": f"{name}-{region}"},
    }


@pytest.fixture
def routed(gateway_factory, simulator_params, events) -> Callable[..., Any]:
    """``routed(router_settings, *deployments)``: a gateway and an OpenAI client on it."""

    def make(router: dict[str, Any], *deployments: dict[str, Any]) -> openai.OpenAI:
        gw = gateway_factory(
            {
                "model_list": list(deployments),
                "general_settings": {"master_key": MASTER_KEY},
                "router_settings": router,
            }
        )
        return openai.OpenAI(base_url=gw.url + "/v1", api_key=MASTER_KEY, max_retries=0)

    return make


def _fail_in(region: str, error: HttpError) -> Callable[[Any], Any]:
    """A reply that fails every request signed for ``region`` and answers the others."""

    def reply(request: Any) -> Any:
        return error if request.region == region else ConverseReply("served")

    return reply


def _calls(sim: Any) -> list[tuple[str | None, int | None]]:
    return [(r.region, r.status) for r in sim.requests if r.operation == "Converse"]


def test_throttled_then_served_on_the_same_deployment(
    routed, simulator_params, bedrock_simulator, events
):
    client = routed({"num_retries": 2}, _deployment(simulator_params, "claude", WEST))
    bedrock_simulator.reply(HttpError(429, "ThrottlingException", "Rate exceeded"), times=1)
    bedrock_simulator.reply(ConverseReply("after a wait"))
    raw = client.chat.completions.with_raw_response.create(model="claude", messages=USER)
    assert raw.parse().choices[0].message.content == "after a wait"
    assert raw.headers["x-outcrop-attempts"] == "2"
    assert _calls(bedrock_simulator) == [(WEST, 429), (WEST, 200)]
    event = events.wait_count(1)[-1]
    assert [(a.deployment, a.status, a.error) for a in event.attempts] == [
        ("claude-us-west-2", 429, "ThrottlingException"),
        ("claude-us-west-2", 200, None),
    ]
    assert event.status == 200 and event.deployment == "claude-us-west-2"
    assert all(a.latency_s > 0 for a in event.attempts)


def test_retry_after_is_honoured(routed, simulator_params, bedrock_simulator):
    client = routed({"num_retries": 1}, _deployment(simulator_params, "claude", WEST))
    throttled = RawReply(
        429,
        {
            "content-type": "application/json",
            "x-amzn-ErrorType": "ThrottlingException",
            "retry-after": "1",
        },
        [b'{"message":"slow down"}'],
    )
    bedrock_simulator.reply(throttled, times=1)
    bedrock_simulator.reply(ConverseReply("waited"))
    reply = client.chat.completions.create(model="claude", messages=USER)
    assert reply.choices[0].message.content == "waited"
    first, second = (r for r in bedrock_simulator.requests if r.operation == "Converse")
    assert second.received_at - first.received_at >= 0.95  # at least the second AWS asked for


def test_unavailable_deployment_fails_over_to_the_other(
    routed, simulator_params, bedrock_simulator, events
):
    client = routed(
        {"num_retries": 1},
        _deployment(simulator_params, "claude", EAST, order=1),
        _deployment(simulator_params, "claude", WEST, order=2),
    )
    bedrock_simulator.reply(
        _fail_in(EAST, HttpError(503, "ServiceUnavailableException", "Service unavailable"))
    )
    raw = client.chat.completions.with_raw_response.create(model="claude", messages=USER)
    assert raw.parse().choices[0].message.content == "served"
    assert raw.headers["x-outcrop-attempts"] == "2"
    assert _calls(bedrock_simulator) == [(EAST, 503), (WEST, 200)]  # each signed for its region
    event = events.wait_count(1)[-1]
    assert event.deployment == "claude-us-west-2" and event.region == WEST
    assert [a.region for a in event.attempts] == [EAST, WEST]


def test_validation_error_is_never_retried(routed, simulator_params, bedrock_simulator, events):
    client = routed(
        {"num_retries": 3, "fallbacks": [{"claude": ["nova"]}]},
        _deployment(simulator_params, "claude", EAST),
        _deployment(simulator_params, "claude", WEST),
        _deployment(simulator_params, "nova", WEST, model=f"bedrock/converse/{NOVA}"),
    )
    bedrock_simulator.reply(HttpError(400, "ValidationException", "messages: malformed"))
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.with_raw_response.create(model="claude", messages=USER)
    assert "malformed" in info.value.message
    assert "x-outcrop-attempts" not in info.value.response.headers
    assert len(_calls(bedrock_simulator)) == 1  # exactly one upstream call
    assert events.wait_count(1)[-1].attempts == ()


def test_access_denied_is_never_retried(routed, simulator_params, bedrock_simulator):
    client = routed({"num_retries": 3}, _deployment(simulator_params, "claude", WEST))
    bedrock_simulator.reply(HttpError(403, "AccessDeniedException", "no access to this model"))
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="claude", messages=USER)
    assert len(_calls(bedrock_simulator)) == 1


def test_fallback_to_another_model_name(routed, simulator_params, bedrock_simulator, events):
    client = routed(
        {"num_retries": 0, "fallbacks": [{"claude": ["nova"]}]},
        _deployment(simulator_params, "claude", EAST),
        _deployment(simulator_params, "nova", WEST, model=f"bedrock/converse/{NOVA}"),
    )
    bedrock_simulator.reply(_fail_in(EAST, HttpError(429, "ThrottlingException", "Too many")))
    raw = client.chat.completions.with_raw_response.create(model="claude", messages=USER)
    reply = raw.parse()
    assert reply.choices[0].message.content == "served"
    assert "nova" in reply.model  # the answer names the model that served it
    paths = [r.path for r in bedrock_simulator.requests]
    assert CLAUDE in paths[0] and NOVA in paths[1]
    event = events.wait_count(1)[-1]
    assert [a.deployment for a in event.attempts] == ["claude-us-east-1", "nova-us-west-2"]


def test_context_window_fallback(routed, simulator_params, bedrock_simulator, events):
    client = routed(
        {"context_window_fallbacks": [{"claude": ["nova"]}]},
        _deployment(simulator_params, "claude", EAST),
        _deployment(simulator_params, "nova", WEST, model=f"bedrock/converse/{NOVA}"),
    )
    too_long = HttpError(400, "ValidationException", "Input is too long for requested model.")
    bedrock_simulator.reply(_fail_in(EAST, too_long))
    reply = client.chat.completions.create(model="claude", messages=USER)
    assert reply.choices[0].message.content == "served" and "nova" in reply.model
    # a 400 that is not about the context window is the answer, its body intact
    bedrock_simulator.reset()
    bedrock_simulator.reply(HttpError(400, "ValidationException", "temperature: out of range"))
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="claude", messages=USER)
    assert "temperature: out of range" in info.value.message
    assert len(_calls(bedrock_simulator)) == 1


def test_cooldown_skips_a_failing_deployment_then_readmits_it(
    routed, simulator_params, bedrock_simulator
):
    client = routed(
        # long enough for three calls on a loaded machine, short enough to wait for
        {"num_retries": 1, "allowed_fails": 0, "cooldown_time": 8},
        _deployment(simulator_params, "claude", EAST, order=1),
        _deployment(simulator_params, "claude", WEST, order=2),
    )
    bedrock_simulator.reply(_fail_in(EAST, HttpError(500, "InternalServerException", "boom")))
    client.chat.completions.create(model="claude", messages=USER)
    assert _calls(bedrock_simulator) == [(EAST, 500), (WEST, 200)]
    bedrock_simulator.requests.clear()
    for _ in range(3):  # east cools down: west serves at once
        client.chat.completions.create(model="claude", messages=USER)
    assert _calls(bedrock_simulator) == [(WEST, 200)] * 3
    import time

    deadline = time.monotonic() + 30
    while (EAST, 500) not in _calls(bedrock_simulator):  # readmitted after cooldown_time
        assert time.monotonic() < deadline, "the cooled-down deployment was never readmitted"
        time.sleep(0.2)
        client.chat.completions.create(model="claude", messages=USER)


def test_a_stream_that_failed_after_its_first_byte_is_not_retried(
    routed, simulator_params, bedrock_simulator, events
):
    client = routed(
        {"num_retries": 3},
        _deployment(simulator_params, "claude", EAST),
        _deployment(simulator_params, "claude", WEST),
    )
    bedrock_simulator.reply(
        ConverseReply("partial answer", exception=("throttlingException", "slow down"))
    )
    stream = client.chat.completions.create(model="claude", messages=USER, stream=True)
    texts = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            texts.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
    assert "".join(texts).startswith("partial")
    assert len([r for r in bedrock_simulator.requests if r.operation == "ConverseStream"]) == 1
    assert events.wait_count(1)[-1].attempts == ()


def test_timeout_deadline_stops_retrying(routed, simulator_params, bedrock_simulator):
    client = routed({"num_retries": 5, "timeout": 1}, _deployment(simulator_params, "claude", WEST))
    throttled = RawReply(
        429,
        {
            "content-type": "application/json",
            "x-amzn-ErrorType": "ThrottlingException",
            "retry-after": "30",
        },
        [b'{"message":"slow down"}'],
    )
    bedrock_simulator.reply(throttled)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="claude", messages=USER)
    # Retry-After is past the call's deadline: no second attempt
    assert len(_calls(bedrock_simulator)) == 1


def test_python_api_retries_too(bedrock_simulator, simulator_params, tmp_path, monkeypatch):
    import outcrop

    config = outcrop.parse_config(
        {
            "model_list": [_deployment(simulator_params, "claude", WEST)],
            "router_settings": {"num_retries": 1},
        }
    )
    bedrock_simulator.reply(HttpError(503, "ServiceUnavailableException", "busy"), times=1)
    bedrock_simulator.reply(ConverseReply("from the api"))
    reply = outcrop.completion("claude", USER, config=config)
    assert reply.choices[0].message.content == "from the api"
    assert len(_calls(bedrock_simulator)) == 2


def test_retry_policy_counts_per_error_class(routed, simulator_params, bedrock_simulator):
    client = routed(
        {
            "num_retries": 5,
            "retry_policy": {
                "RateLimitErrorRetries": 2,
                "InternalServerErrorRetries": 0,
                "BadRequestErrorRetries": 3,  # named as ignored: a 400 is never retried
            },
        },
        _deployment(simulator_params, "claude", WEST),
    )
    throttled = HttpError(429, "ThrottlingException", "Rate exceeded")
    bedrock_simulator.reply(throttled, times=2)
    bedrock_simulator.reply(ConverseReply("third time"), times=1)
    raw = client.chat.completions.with_raw_response.create(model="claude", messages=USER)
    assert raw.headers["x-outcrop-attempts"] == "3"
    bedrock_simulator.requests.clear()
    bedrock_simulator.reply(throttled, times=3)
    with pytest.raises(openai.RateLimitError):  # RateLimitErrorRetries: 2, not num_retries: 5
        client.chat.completions.create(model="claude", messages=USER)
    assert _calls(bedrock_simulator) == [(WEST, 429)] * 3
    bedrock_simulator.requests.clear()
    bedrock_simulator.reply(HttpError(503, "ServiceUnavailableException", "down"), times=1)
    with pytest.raises(openai.InternalServerError):  # InternalServerErrorRetries: 0
        client.chat.completions.create(model="claude", messages=USER)
    bedrock_simulator.requests.clear()
    bedrock_simulator.reply(HttpError(400, "ValidationException", "bad"), times=1)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="claude", messages=USER)
    assert _calls(bedrock_simulator) == [(WEST, 400)]  # exactly one upstream call


def test_tag_routing_with_the_openai_sdk(routed, simulator_params, bedrock_simulator):
    client = routed(
        {"enable_tag_filtering": True, "num_retries": 1},
        _deployment(simulator_params, "claude", EAST, tags=["free"]),
        _deployment(simulator_params, "claude", WEST, tags=["paid"]),
        _deployment(simulator_params, "claude", "eu-west-1", tags=["default"]),
    )
    client.chat.completions.create(model="claude", messages=USER, extra_body={"tags": ["free"]})
    client.chat.completions.create(model="claude", messages=USER, metadata={"tags": "paid"})
    client.chat.completions.create(
        model="claude", messages=USER, extra_headers={"x-litellm-tags": "paid"}
    )
    client.chat.completions.create(model="claude", messages=USER)
    assert [r for r, _ in _calls(bedrock_simulator)] == [EAST, WEST, WEST, "eu-west-1"]
    # a retry stays among the deployments the tags select: never the free or default one
    bedrock_simulator.requests.clear()
    bedrock_simulator.reply(_fail_in(WEST, HttpError(503, "ServiceUnavailableException", "x")))
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="claude", messages=USER, extra_body={"tags": ["paid"]})
    assert _calls(bedrock_simulator) == [(WEST, 503), (WEST, 503)]


def test_tag_routing_without_a_match_or_default_is_refused(routed, simulator_params):
    client = routed(
        {"enable_tag_filtering": True},
        _deployment(simulator_params, "claude", EAST, tags=["free"]),
    )
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="claude", messages=USER, extra_body={"tags": ["x"]})
    assert caught.value.code == "no_deployments_with_tag"


def test_model_group_alias(routed, simulator_params, bedrock_simulator):
    client = routed(
        {
            "model_group_alias": {
                "sonnet": "claude",
                "internal": {"model": "claude", "hidden": True},
            }
        },
        _deployment(simulator_params, "claude", WEST),
    )
    for name in ("sonnet", "internal"):
        assert client.chat.completions.create(model=name, messages=USER).choices
    assert len(_calls(bedrock_simulator)) == 2
    listed = {m.id for m in client.models.list()}
    assert {"claude", "sonnet"} <= listed and "internal" not in listed
