"""The pass-through's retries: an alias fails over across its deployments (each attempt signed
for its own region, which the simulator verifies), a raw model id retries on the same target,
and a validation error is relayed after exactly one upstream call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import botocore.exceptions
import pytest

from outcrop.testing import HttpError
from outcrop.testing.replies import ConverseReply

from .common import ALIAS, ALIAS_MODEL_ID, RAW_MODEL_ID, sigv4_client

MESSAGES = [{"role": "user", "content": [{"text": "hi"}]}]
EAST, WEST = "us-east-1", "us-west-2"


@pytest.fixture
def two_regions(
    gateway_factory: Callable[..., Any],
    make_config: Callable[..., dict[str, Any]],
    simulator_params: Callable[..., dict[str, Any]],
    recorder: Any,
) -> Any:
    config = make_config(
        model_list=[
            {
                "model_name": ALIAS,
                "litellm_params": simulator_params(
                    f"bedrock/{ALIAS_MODEL_ID}", aws_region_name=region, order=order
                ),
                "model_info": {"id": f"alias-{region}"},
            }
            for order, region in ((1, EAST), (2, WEST))
        ],
        allow_raw_models=True,
    )
    config["router_settings"] = {"num_retries": 2}
    return gateway_factory(config)


def _converse(sim: Any) -> list[tuple[str | None, int | None]]:
    return [(r.region, r.status) for r in sim.requests if r.operation == "Converse"]


def test_alias_fails_over_to_the_other_region_resigned(two_regions, bedrock_simulator, recorder):
    def reply(request: Any) -> Any:
        if request.region == EAST:
            return HttpError(503, "ServiceUnavailableException", "east is down")
        return ConverseReply("from the west")

    bedrock_simulator.reply(reply)
    client = sigv4_client("bedrock-runtime", two_regions.url)
    answer = client.converse(modelId=ALIAS, messages=MESSAGES)
    assert answer["output"]["message"]["content"][0]["text"] == "from the west"
    assert answer["ResponseMetadata"]["HTTPHeaders"]["x-outcrop-attempts"] == "2"
    # both attempts verified by the simulator, each signed for its deployment's region
    assert _converse(bedrock_simulator) == [(EAST, 503), (WEST, 200)]
    assert all(r.auth == "sigv4" and not r.error for r in bedrock_simulator.requests)
    event = recorder.last()
    assert event.deployment == "alias-us-west-2" and event.region == WEST
    assert [(a.deployment, a.status, a.region) for a in event.attempts] == [
        ("alias-us-east-1", 503, EAST),
        ("alias-us-west-2", 200, WEST),
    ]


def test_raw_model_id_retries_on_the_same_target(two_regions, bedrock_simulator, recorder):
    bedrock_simulator.reply(HttpError(429, "ThrottlingException", "Rate exceeded"), times=1)
    bedrock_simulator.reply(ConverseReply("second time lucky"))
    client = sigv4_client("bedrock-runtime", two_regions.url)
    answer = client.converse(modelId=RAW_MODEL_ID, messages=MESSAGES)
    assert answer["output"]["message"]["content"][0]["text"] == "second time lucky"
    calls = [r for r in bedrock_simulator.requests if r.operation == "Converse"]
    assert [r.status for r in calls] == [429, 200]
    assert calls[0].raw_path == calls[1].raw_path and calls[0].region == calls[1].region


def test_validation_error_is_relayed_after_one_call(two_regions, bedrock_simulator, recorder):
    bedrock_simulator.reply(HttpError(400, "ValidationException", "bad input"))
    client = sigv4_client("bedrock-runtime", two_regions.url)
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.converse(modelId=ALIAS, messages=MESSAGES)
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert info.value.response["Error"]["Message"] == "bad input"
    assert len(_converse(bedrock_simulator)) == 1
    assert recorder.last().attempts == ()


def test_last_failure_is_relayed_as_aws_sent_it(two_regions, bedrock_simulator, recorder):
    bedrock_simulator.reply(HttpError(503, "ServiceUnavailableException", "all down"))
    client = sigv4_client("bedrock-runtime", two_regions.url)
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.converse(modelId=ALIAS, messages=MESSAGES)
    assert info.value.response["Error"]["Code"] == "ServiceUnavailableException"
    headers = info.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-outcrop-attempts"] == "3"  # num_retries: 2
    assert [s for _, s in _converse(bedrock_simulator)] == [503, 503, 503]
    assert len(recorder.last().attempts) == 3
