"""Tag routing and model_group_alias on the pass-through, as on the chat route (the core's
routing): boto3 sends `x-litellm-tags` (the body is AWS's and goes upstream unchanged), the
tags choose among an alias's deployments, and retries fail over only among the deployments
they chose. Against the signature-verifying simulator, each attempt signed for its region."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import botocore.exceptions
import pytest

from outcrop.testing import HttpError
from outcrop.testing.replies import ConverseReply

from .common import ALIAS, ALIAS_MODEL_ID, sigv4_client

MESSAGES = [{"role": "user", "content": [{"text": "hi"}]}]
EAST, WEST, EU = "us-east-1", "us-west-2", "eu-west-1"


def tagged_client(url: str, tags: str | None) -> Any:
    """bedrock-runtime sending ``x-litellm-tags`` (added before signing, so it is signed)."""
    client = sigv4_client("bedrock-runtime", url)
    if tags is not None:

        def add(request: Any, **_: Any) -> None:
            request.headers["x-litellm-tags"] = tags

        client.meta.events.register("before-sign.bedrock-runtime.*", add)
    return client


@pytest.fixture
def tagged(
    gateway_factory: Callable[..., Any],
    make_config: Callable[..., dict[str, Any]],
    simulator_params: Callable[..., dict[str, Any]],
    recorder: Any,  # registered before the gateway starts
) -> Any:
    """``ALIAS``: a free deployment in us-east-1, two paid ones (us-west-2 first, then
    eu-west-1); ``house-model`` is a model_group_alias of it."""

    def deployment(region: str, tags: list[str], order: int) -> dict[str, Any]:
        return {
            "model_name": ALIAS,
            "litellm_params": simulator_params(
                f"bedrock/{ALIAS_MODEL_ID}", aws_region_name=region, tags=tags, order=order
            ),
            "model_info": {"id": f"{tags[0]}-{region}"},
        }

    config = make_config(
        model_list=[
            deployment(EAST, ["free"], 1),
            deployment(WEST, ["paid"], 1),
            deployment(EU, ["paid", "eu"], 2),
        ]
    )
    config["router_settings"] = {
        "enable_tag_filtering": True,
        "num_retries": 2,
        "model_group_alias": {"house-model": ALIAS},
    }
    return gateway_factory(config)


def _regions(sim: Any) -> list[str | None]:
    return [r.region for r in sim.requests if r.operation == "Converse"]


def test_tags_choose_the_deployment(tagged, bedrock_simulator, recorder):
    for tags, region in (("free", EAST), ("paid", WEST), ("eu", EU), ("nobody-has, eu", EU)):
        bedrock_simulator.reset()
        answer = tagged_client(tagged.url, tags).converse(modelId=ALIAS, messages=MESSAGES)
        assert answer["output"]["message"]["content"][0]["text"]
        assert _regions(bedrock_simulator) == [region], tags
    # the alias goes to the same deployments, the same way
    bedrock_simulator.reset()
    tagged_client(tagged.url, "free").converse(modelId="house-model", messages=MESSAGES)
    sent = bedrock_simulator.last("Converse")
    assert (sent.region, sent.params["modelId"]) == (EAST, ALIAS_MODEL_ID)
    assert not any(r.error for r in bedrock_simulator.requests)
    # no tag and no deployment tagged `default`: any of them serves
    seen = set()
    for _ in range(30):
        tagged_client(tagged.url, None).converse(modelId=ALIAS, messages=MESSAGES)
        seen.add(bedrock_simulator.last("Converse").region)
        if len(seen) > 1:
            break
    assert len(seen) > 1


def test_tags_nobody_serves_are_refused_before_aws(tagged, bedrock_simulator, recorder):
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        tagged_client(tagged.url, "nobody").converse(modelId=ALIAS, messages=MESSAGES)
    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == "ValidationException"
    assert "serves the tags nobody" in error["Error"]["Message"]
    assert bedrock_simulator.requests == []
    assert recorder.last().status == 400


def test_retries_fail_over_only_among_the_tagged_deployments(tagged, bedrock_simulator, recorder):
    bedrock_simulator.reply(HttpError(503, "ServiceUnavailableException", "down"), region=WEST)
    bedrock_simulator.reply(ConverseReply("served"))
    answer = tagged_client(tagged.url, "paid").converse(modelId=ALIAS, messages=MESSAGES)
    assert answer["output"]["message"]["content"][0]["text"] == "served"
    assert answer["ResponseMetadata"]["HTTPHeaders"]["x-outcrop-attempts"] == "2"
    # us-west-2 (paid, order 1) failed: eu-west-1 (paid) served, never us-east-1 (free)
    assert _regions(bedrock_simulator) == [WEST, EU]
    assert [(a.deployment, a.status) for a in recorder.last().attempts] == [
        ("paid-us-west-2", 503),
        ("paid-eu-west-1", 200),
    ]
    # the tags header is the gateway's: AWS never sees it
    assert all("x-litellm-tags" not in r.headers for r in bedrock_simulator.requests)


def _paid_and_free(
    gateway_factory: Callable[..., Any],
    make_config: Callable[..., dict[str, Any]],
    simulator_params: Callable[..., dict[str, Any]],
    free_model: str,
    **general: Any,
) -> Any:
    """``mixed``: the native model in us-west-2 tagged ``paid``, ``free_model`` in us-east-1
    tagged ``free``, tag routing on."""
    config = make_config(
        model_list=[
            {
                "model_name": "mixed",
                "litellm_params": simulator_params(
                    f"bedrock/{ALIAS_MODEL_ID}", aws_region_name=WEST, tags=["paid"]
                ),
            },
            {
                "model_name": "mixed",
                "litellm_params": simulator_params(free_model, aws_region_name=EAST, tags=["free"]),
            },
        ],
        **general,
    )
    config["router_settings"] = {"enable_tag_filtering": True}
    return gateway_factory(config)


@pytest.mark.parametrize("tags", ["free", "!paid", "&free"])
def test_tags_never_reach_a_native_deployment_they_did_not_choose(
    gateway_factory, make_config, simulator_params, bedrock_simulator, recorder, tags
):
    """A name mixing native and other deployments is served by its native ones: only by those
    the tags chose. Tags choosing only its agent are refused, never served by the native
    deployment they left out."""
    gw = _paid_and_free(
        gateway_factory, make_config, simulator_params, "bedrock/agent/AGENT12345/ALIAS12345"
    )
    for _ in range(5):  # whichever the router would pick
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            tagged_client(gw.url, tags).converse(modelId="mixed", messages=MESSAGES)
        error = caught.value.response
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert "serves the tags" in error["Error"]["Message"]
    assert bedrock_simulator.requests == []
    tagged_client(gw.url, "paid").converse(modelId="mixed", messages=MESSAGES)
    assert _regions(bedrock_simulator) == [WEST]


def test_a_raw_id_reaches_a_deployment_only_where_its_tags_would(
    gateway_factory, make_config, simulator_params, bedrock_simulator, recorder
):
    """With allow_raw_models, a raw id a deployment calls is served by that deployment, as its
    model_name would be: among the deployments the tags choose, never one they leave out."""
    gw = _paid_and_free(
        gateway_factory,
        make_config,
        simulator_params,
        "bedrock/amazon.nova-lite-v1:0",
        allow_raw_models=True,
    )
    for tags in ("free", "!paid"):
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            tagged_client(gw.url, tags).converse(modelId=ALIAS_MODEL_ID, messages=MESSAGES)
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert "serves the tags" in caught.value.response["Error"]["Message"]
    assert bedrock_simulator.requests == []
    tagged_client(gw.url, "paid").converse(modelId=ALIAS_MODEL_ID, messages=MESSAGES)
    assert _regions(bedrock_simulator) == [WEST]
