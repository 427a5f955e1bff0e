"""Wildcard deployments (``model_name: "bedrock/*"``, ``"*"``) with an operator's allow-list,
end to end: the OpenAI SDK on /v1/chat/completions (the Converse chat provider) and boto3 on
/bedrock/model/{id}/converse (the pass-through), against the signature-verifying simulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import botocore.exceptions
import httpx
import openai
import pytest

import outcrop
from outcrop.testing.replies import ConverseReply, HttpError

from .common import MASTER_KEY, sigv4_client

CLAUDE = "us.anthropic.claude-3-5-sonnet-20240620-v1:0"
NOVA = "amazon.nova-pro-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "hi"}]}]
USER = [{"role": "user", "content": "hi"}]
ALLOWED = ["bedrock/us.anthropic.*"]


def _wildcard(params: Callable[..., dict[str, Any]], name: str = "bedrock/*", **kw: Any):
    allowed = kw.pop("allowed", ALLOWED)
    model = kw.pop("model", name)
    return {
        "model_name": name,
        "litellm_params": params(model, **kw),
        "model_info": {"allowed_models": allowed, **kw.pop("info", {})},
    }


def _chat(gw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=MASTER_KEY, max_retries=0)


@pytest.fixture
def wildcard_gateway(gateway_factory, make_config, simulator_params) -> Callable[..., Any]:
    def make(*entries: dict[str, Any], router: dict[str, Any] | None = None) -> Any:
        config = make_config(model_list=list(entries) or [_wildcard(simulator_params)])
        if router:
            config["router_settings"] = router
        return gateway_factory(config)

    return make


def test_chat_and_native_calls_reach_an_allowed_model_id(wildcard_gateway, bedrock_simulator):
    gw = wildcard_gateway()
    answer = _chat(gw).chat.completions.create(model=f"bedrock/{CLAUDE}", messages=USER)
    assert answer.choices[0].message.content
    assert answer.model == CLAUDE  # the model id called, as for a configured deployment
    assert bedrock_simulator.last("Converse").params["modelId"] == CLAUDE

    native = sigv4_client("bedrock-runtime", gw.url).converse(modelId=CLAUDE, messages=MESSAGES)
    assert native["output"]["message"]["content"][0]["text"]
    relayed = bedrock_simulator.last("Converse")
    assert relayed.params["modelId"] == CLAUDE and relayed.region == "us-west-2"


def test_a_model_outside_the_allow_list_is_refused_in_each_dialect(
    wildcard_gateway, bedrock_simulator
):
    gw = wildcard_gateway()
    with pytest.raises(openai.BadRequestError) as caught:
        _chat(gw).chat.completions.create(model=f"bedrock/{NOVA}", messages=USER)
    assert caught.value.code == "model_not_found"
    assert "allowed_models" in caught.value.message and NOVA in caught.value.message

    with pytest.raises(botocore.exceptions.ClientError) as refused:
        sigv4_client("bedrock-runtime", gw.url).converse(modelId=NOVA, messages=MESSAGES)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "allowed_models" in refused.value.response["Error"]["Message"]
    # an agent string under the same prefix is another plugin's model: not allowed either
    with pytest.raises(openai.BadRequestError):
        _chat(gw).chat.completions.create(
            model="bedrock/agent/AGENT12345/ALIAS12345", messages=USER
        )
    assert not bedrock_simulator.requests  # nothing reached AWS


def test_explicit_deployments_win_over_a_wildcard(
    wildcard_gateway, simulator_params, bedrock_simulator
):
    gw = wildcard_gateway(
        _wildcard(simulator_params, aws_region_name="us-west-2"),
        {
            "model_name": f"bedrock/{CLAUDE}",
            "litellm_params": simulator_params(f"bedrock/{CLAUDE}", aws_region_name="eu-west-1"),
        },
    )
    for _ in range(2):  # a native call never hands the explicit name to the wildcard
        _chat(gw).chat.completions.create(model=f"bedrock/{CLAUDE}", messages=USER)
        assert bedrock_simulator.last("Converse").region == "eu-west-1"
        sigv4_client("bedrock-runtime", gw.url).converse(modelId=CLAUDE, messages=MESSAGES)
        assert bedrock_simulator.last("Converse").region == "eu-west-1"


def test_the_most_specific_pattern_serves_and_fills_in_its_model(
    wildcard_gateway, simulator_params, bedrock_simulator
):
    gw = wildcard_gateway(
        _wildcard(simulator_params, "*", model="bedrock/*", allowed=["bedrock/*"]),
        _wildcard(
            simulator_params,
            "claude-*",
            model="bedrock/us.anthropic.claude-*",
            allowed=["bedrock/us.anthropic.claude-3-5-*"],
            aws_region_name="us-east-2",
        ),
    )
    _chat(gw).chat.completions.create(model="claude-3-5-sonnet-20240620-v1:0", messages=USER)
    served = bedrock_simulator.last("Converse")
    assert (served.params["modelId"], served.region) == (CLAUDE, "us-east-2")
    # the longer pattern matches but does not allow it, and the catch-all does
    _chat(gw).chat.completions.create(model=NOVA, messages=USER)
    served = bedrock_simulator.last("Converse")
    assert (served.params["modelId"], served.region) == (NOVA, "us-west-2")


def test_region_and_arn_checks_apply_to_wildcard_model_ids(wildcard_gateway, simulator_params):
    gw = wildcard_gateway(_wildcard(simulator_params, allowed=["bedrock/*"]))
    bad_arn = "bedrock/arn:aws:bedrock:not_a-region.example.com:123456789012:inference-profile/x"
    with pytest.raises(openai.BadRequestError) as caught:
        _chat(gw).chat.completions.create(model=bad_arn, messages=USER)
    assert "region" in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        _chat(gw).chat.completions.create(model="bedrock/us.anthropic claude", messages=USER)
    assert "not a Bedrock model id" in caught.value.message


def test_failover_between_wildcard_deployments(
    wildcard_gateway, simulator_params, bedrock_simulator
):
    gw = wildcard_gateway(
        _wildcard(simulator_params, aws_region_name="us-east-1", order=1),
        _wildcard(simulator_params, aws_region_name="us-west-2", order=2),
        router={"num_retries": 1},
    )

    def reply(request: Any) -> Any:
        if request.region == "us-east-1":
            return HttpError(503, "ServiceUnavailableException", "unavailable")
        return ConverseReply("served")

    bedrock_simulator.reply(reply)
    raw = _chat(gw).chat.completions.with_raw_response.create(
        model=f"bedrock/{CLAUDE}", messages=USER
    )
    assert raw.parse().choices[0].message.content == "served"
    assert raw.headers["x-outcrop-attempts"] == "2"
    native = sigv4_client("bedrock-runtime", gw.url).converse(modelId=CLAUDE, messages=MESSAGES)
    assert native["ResponseMetadata"]["HTTPHeaders"]["x-outcrop-attempts"] == "2"
    regions = [r.region for r in bedrock_simulator.requests if r.operation == "Converse"]
    assert regions == ["us-east-1", "us-west-2", "us-east-1", "us-west-2"]


def test_models_lists_the_allowed_patterns(wildcard_gateway):
    gw = wildcard_gateway()
    listed = httpx.get(
        gw.url + "/v1/models", headers={"authorization": f"Bearer {MASTER_KEY}"}
    ).json()
    assert "bedrock/us.anthropic.*" in [m["id"] for m in listed["data"]]
    one = httpx.get(
        gw.url + f"/v1/models/bedrock/{CLAUDE}", headers={"authorization": f"Bearer {MASTER_KEY}"}
    )
    assert one.status_code == 200 and one.json()["id"] == f"bedrock/{CLAUDE}"
    other = httpx.get(
        gw.url + f"/v1/models/bedrock/{NOVA}", headers={"authorization": f"Bearer {MASTER_KEY}"}
    )
    assert other.status_code == 404


def test_a_wildcard_without_an_allow_list_is_a_config_error(simulator_params):
    entry = {"model_name": "bedrock/*", "litellm_params": simulator_params("bedrock/*")}
    with pytest.raises(outcrop.ConfigError) as caught:
        outcrop.parse_config({"model_list": [entry]})
    (error,) = caught.value.errors
    assert error.startswith("model_list[0].model_info.allowed_models: required")
    entry["litellm_params"] = simulator_params("bedrock/*/*")
    entry["model_info"] = {"allowed_models": "bedrock/*"}
    with pytest.raises(outcrop.ConfigError) as caught:
        outcrop.parse_config({"model_list": [entry]})
    assert len(caught.value.errors) == 2
    assert "non-empty list" in caught.value.errors[0]
    assert "more `*`" in caught.value.errors[1]
