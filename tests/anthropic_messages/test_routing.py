"""/v1/messages routes a model exactly as /v1/chat/completions does (the core's routing):
wildcard deployments with their allow-list, model_group_alias, tag routing, retries and
failover (among the deployments the tags chose), and the Anthropic model ids on top. With the
real Anthropic SDK against the signature-verifying simulator."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anthropic
import pytest

from outcrop.testing import CallEvents, ClaudeReply, HttpError

from .common import HAIKU, MASTER_KEY, SONNET

HI = [{"role": "user", "content": "Hi"}]
EAST, WEST = "us-east-1", "us-west-2"


def _client(gw: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=MASTER_KEY, max_retries=0)


def _invoked(sim: Any) -> list[tuple[str | None, str, int | None]]:
    return [
        (r.region, r.params["modelId"], r.status)
        for r in sim.requests
        if r.operation in ("InvokeModel", "InvokeModelWithResponseStream")
    ]


def _wildcard(params: Callable[..., dict[str, Any]], allowed: list[str], **kw: Any):
    return {
        "model_name": "bedrock/*",
        "litellm_params": params("bedrock/*", **kw),
        "model_info": {"allowed_models": allowed},
    }


@pytest.fixture
def make_gateway(gateway_factory: Callable[..., Any], recorder: CallEvents):
    def make(model_list: list[dict[str, Any]], **sections: Any) -> Any:
        return gateway_factory(
            {"model_list": model_list, "general_settings": {"master_key": MASTER_KEY}, **sections}
        )

    return make


@pytest.mark.parametrize("streamed", [False, True])
def test_a_wildcard_deployment_serves_claude_ids_it_allows(
    make_gateway, simulator_params, bedrock_simulator, recorder, streamed
):
    gw = make_gateway([_wildcard(simulator_params, ["bedrock/us.anthropic.claude-*"])])
    with _client(gw) as client:
        if streamed:
            with client.messages.stream(
                model=f"bedrock/{SONNET}", max_tokens=8, messages=HI
            ) as stream:
                text = stream.get_final_text()
        else:
            answer = client.messages.create(model=f"bedrock/{SONNET}", max_tokens=8, messages=HI)
            text = answer.content[0].text
    assert text
    assert _invoked(bedrock_simulator) == [(WEST, SONNET, 200)]
    assert recorder.last().model == f"bedrock/{SONNET}" and recorder.last().status == 200
    assert recorder.last().deployment == "bedrock/*#0"  # the configured wildcard deployment


@pytest.mark.refusals_expected
def test_a_wildcard_refuses_what_its_allow_list_does_not_name(
    make_gateway, simulator_params, bedrock_simulator
):
    gw = make_gateway(
        [_wildcard(simulator_params, ["bedrock/us.anthropic.claude-3-*", "bedrock/amazon.*"])]
    )
    with _client(gw) as client:
        with pytest.raises(anthropic.BadRequestError) as outside:
            client.messages.create(model=f"bedrock/{SONNET}", max_tokens=8, messages=HI)
        assert "allowed_models" in outside.value.body["error"]["message"]
        with pytest.raises(anthropic.BadRequestError) as not_claude:
            client.messages.create(model="bedrock/amazon.nova-lite-v1:0", max_tokens=8, messages=HI)
        assert "not a Claude model" in not_claude.value.body["error"]["message"]
        with pytest.raises(anthropic.NotFoundError):
            client.messages.create(model="nothing-serves-this", max_tokens=8, messages=HI)
    assert bedrock_simulator.requests == []


def test_failover_between_wildcard_deployments(make_gateway, simulator_params, bedrock_simulator):
    allowed = ["bedrock/us.anthropic.*"]
    gw = make_gateway(
        [
            _wildcard(simulator_params, allowed, aws_region_name=EAST, order=1),
            _wildcard(simulator_params, allowed, aws_region_name=WEST, order=2),
        ],
        router_settings={"num_retries": 1},
    )

    bedrock_simulator.reply(HttpError(503, "ServiceUnavailableException", "down"), region=EAST)
    with _client(gw) as client:
        raw = client.messages.with_raw_response.create(
            model=f"bedrock/{SONNET}", max_tokens=8, messages=HI
        )
    assert raw.parse().content[0].text
    assert raw.headers["x-outcrop-attempts"] == "2"
    assert _invoked(bedrock_simulator) == [(EAST, SONNET, 503), (WEST, SONNET, 200)]


def test_model_group_alias_and_anthropic_ids(make_gateway, simulator_params, bedrock_simulator):
    gw = make_gateway(
        [
            {"model_name": "claude", "litellm_params": simulator_params(f"bedrock/{SONNET}")},
            {"model_name": "haiku", "litellm_params": simulator_params(f"bedrock/{HAIKU}")},
        ],
        router_settings={
            "model_group_alias": {"sonnet": "claude", "old": {"model": "haiku", "hidden": True}}
        },
        anthropic_messages={"model_aliases": {"house-model": "sonnet"}},
    )
    with _client(gw) as client:
        for model, model_id in (
            ("sonnet", SONNET),
            ("old", HAIKU),
            ("house-model", SONNET),  # this surface's alias to a model_group_alias
            ("claude-3-5-haiku-latest", HAIKU),  # an Anthropic id
        ):
            client.messages.create(model=model, max_tokens=8, messages=HI)
            assert bedrock_simulator.last("InvokeModel").params["modelId"] == model_id, model


def test_an_alias_may_name_a_model_string_a_wildcard_serves(
    make_gateway, simulator_params, bedrock_simulator, recorder
):
    opus = "us.anthropic.claude-opus-4-1-20250805-v1:0"
    gw = make_gateway(
        [_wildcard(simulator_params, ["bedrock/us.anthropic.claude-*"])],
        anthropic_messages={"model_aliases": {"claude-opus-4-1": f"bedrock/{opus}"}},
    )
    with _client(gw) as client:
        client.messages.create(model="claude-opus-4-1", max_tokens=8, messages=HI)
    assert bedrock_simulator.last("InvokeModel").params["modelId"] == opus
    assert recorder.last().extra["requested_model"] == "claude-opus-4-1"


def test_an_alias_naming_what_no_wildcard_allows_stops_start_up(simulator_params):
    from outcrop import ConfigError
    from outcrop.app import create_app

    with pytest.raises(ConfigError) as caught:
        create_app(
            {
                "model_list": [_wildcard(simulator_params, ["bedrock/us.anthropic.claude-3-*"])],
                "anthropic_messages": {"model_aliases": {"x": f"bedrock/{SONNET}"}},
            }
        )
    assert "anthropic_messages.model_aliases.x" in str(caught.value)


@pytest.fixture
def tagged(make_gateway, simulator_params):
    """``claude``: a free deployment in us-east-1, two paid ones (us-west-2 first, then
    eu-west-1), tag routing on."""

    def deployment(region: str, tags: list[str], order: int = 1) -> dict[str, Any]:
        return {
            "model_name": "claude",
            "litellm_params": simulator_params(
                f"bedrock/{SONNET}", aws_region_name=region, tags=tags, order=order
            ),
            "model_info": {"id": f"{tags[0]}-{region}"},
        }

    return make_gateway(
        [
            deployment(EAST, ["free"]),
            deployment(WEST, ["paid"], 1),
            deployment("eu-west-1", ["paid", "eu"], 2),
        ],
        router_settings={"enable_tag_filtering": True, "num_retries": 2},
    )


def test_tags_choose_the_deployment(tagged, bedrock_simulator, recorder):
    with _client(tagged) as client:
        for _ in range(3):
            client.messages.create(
                model="claude",
                max_tokens=8,
                messages=HI,
                extra_headers={"x-litellm-tags": "free"},
            )
        assert {r for r, _, _ in _invoked(bedrock_simulator)} == {EAST}
        bedrock_simulator.reset()
        # metadata.tags (LiteLLM's place) choose too, and never reach Bedrock
        client.messages.create(
            model="claude",
            max_tokens=8,
            messages=HI,
            metadata={"user_id": "u-1", "tags": ["paid"]},
        )
        sent = bedrock_simulator.last("InvokeModel")
        assert sent.region == WEST
        assert json.loads(sent.body)["metadata"] == {"user_id": "u-1"}
        client.messages.create(
            model="claude", max_tokens=8, messages=HI, extra_body={"tags": ["eu"]}
        )
        assert bedrock_simulator.last("InvokeModel").region == "eu-west-1"
        with pytest.raises(anthropic.BadRequestError) as caught:
            client.messages.count_tokens(
                model="claude", messages=HI, extra_headers={"x-litellm-tags": "nobody"}
            )
        assert "no deployment of model 'claude' serves the tags" in str(caught.value)
    assert recorder.last().status == 400


def test_retries_stay_among_the_tagged_deployments(tagged, bedrock_simulator, recorder):
    bedrock_simulator.reply(HttpError(429, "ThrottlingException", "slow down"), region=WEST)
    bedrock_simulator.reply(ClaudeReply("served"))
    with (
        _client(tagged) as client,
        client.messages.stream(
            model="claude", max_tokens=8, messages=HI, extra_headers={"x-litellm-tags": "paid"}
        ) as stream,
    ):
        assert stream.get_final_text() == "served"
    # the paid deployment of order 1 throttled: the other paid one served, never the free one
    assert [r for r, _, _ in _invoked(bedrock_simulator)] == [WEST, "eu-west-1"]
    assert [(a.deployment, a.status) for a in recorder.last().attempts] == [
        ("paid-us-west-2", 429),
        ("paid-eu-west-1", 200),
    ]


def test_tag_regex_routes_claude_code_by_its_user_agent(
    make_gateway, simulator_params, bedrock_simulator, recorder
):
    """LiteLLM's tag_regex: Claude Code's traffic (User-Agent: claude-code/x.y.z) goes to its
    own deployment without any client setting; the rest to the `default` one."""
    gw = make_gateway(
        [
            {
                "model_name": "claude",
                "litellm_params": simulator_params(
                    f"bedrock/{SONNET}",
                    aws_region_name=EAST,
                    tag_regex=[r"^User-Agent: claude-code\/"],
                ),
                "model_info": {"id": "claude-code-account"},
            },
            {
                "model_name": "claude",
                "litellm_params": simulator_params(
                    f"bedrock/{SONNET}", aws_region_name=WEST, tags=["default"]
                ),
                "model_info": {"id": "everyone-else"},
            },
        ],
        router_settings={"enable_tag_filtering": True},
    )
    claude_code = anthropic.Anthropic(
        base_url=gw.url,
        api_key=MASTER_KEY,
        max_retries=0,
        default_headers={"User-Agent": "claude-code/2.0.14 (external, cli)"},
    )
    with claude_code, _client(gw) as sdk:
        for _ in range(3):
            claude_code.messages.create(model="claude", max_tokens=8, messages=HI)
            assert recorder.last().deployment == "claude-code-account"
            sdk.messages.create(model="claude", max_tokens=8, messages=HI)
            assert recorder.last().deployment == "everyone-else"
    assert [r for r, _, _ in _invoked(bedrock_simulator)] == [EAST, WEST] * 3


@pytest.mark.refusals_expected
@pytest.mark.parametrize("tags", ["free", "!paid", "&free"])
def test_tags_never_reach_a_claude_deployment_they_did_not_choose(
    make_gateway, simulator_params, bedrock_simulator, recorder, tags
):
    """A name mixing Claude and other deployments serves from its Claude ones: only from those
    the tags chose. Tags choosing only its other deployment are refused, never served by the
    Claude deployment they left out."""
    gw = make_gateway(
        [
            {
                "model_name": "mixed",
                "litellm_params": simulator_params(
                    f"bedrock/{SONNET}", aws_region_name=WEST, tags=["paid"]
                ),
            },
            {
                "model_name": "mixed",
                "litellm_params": simulator_params(
                    "bedrock/amazon.nova-lite-v1:0", aws_region_name=EAST, tags=["free"]
                ),
            },
        ],
        router_settings={"enable_tag_filtering": True},
    )
    with _client(gw) as client:
        for _ in range(5):  # whichever the router would pick
            with pytest.raises(anthropic.BadRequestError) as caught:
                client.messages.create(
                    model="mixed", max_tokens=8, messages=HI, extra_headers={"x-litellm-tags": tags}
                )
            assert "serves the tags" in str(caught.value)
        assert bedrock_simulator.requests == []
        answer = client.messages.create(
            model="mixed", max_tokens=8, messages=HI, extra_headers={"x-litellm-tags": "paid"}
        )
    assert answer.content[0].text
    assert _invoked(bedrock_simulator) == [(WEST, SONNET, 200)]
