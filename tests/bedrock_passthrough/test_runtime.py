"""bedrock-runtime through the pass-through with real boto3 clients: bearer over TLS and SigV4
with a gateway-issued key over HTTP. The simulator verifies every signature the gateway makes."""

from __future__ import annotations

import json
import time

import pytest

from outcrop.testing import ConverseReply, InvokeReply, RawReply

from .common import ALIAS, ALIAS_MODEL_ID, RAW_MODEL_ID, sigv4_client

MESSAGES = [{"role": "user", "content": [{"text": "Hello there"}]}]
# anthropic.claude-3-5-sonnet: 3 USD / 15 USD per million tokens (the core's price table).
SONNET_IN, SONNET_OUT = 3.0 / 1_000_000, 15.0 / 1_000_000


def _upstream_checks(sim, operation: str, model_id: str = ALIAS_MODEL_ID):
    seen = sim.last(operation)
    assert seen.error is None and seen.auth == "sigv4"
    assert seen.access_key == "AKIDOUTCROPTEST00001" and seen.region == "us-west-2"
    assert seen.signing_service == "bedrock"
    assert seen.params.get("modelId", model_id) == model_id
    # The client's credentials never travel on.
    assert not any(h in seen.headers for h in ("x-amz-content-sha256", "amz-sdk-invocation-id"))
    return seen


def test_converse_alias(runtime, bedrock_simulator, recorder):
    client, auth = runtime
    bedrock_simulator.reply(ConverseReply("Hi! I am fine.", usage=(12, 30)))
    response = client.converse(
        modelId=ALIAS, messages=MESSAGES, inferenceConfig={"temperature": 0.5, "maxTokens": 100}
    )
    assert response["output"]["message"]["content"][0]["text"] == "Hi! I am fine."
    assert response["usage"] == {"inputTokens": 12, "outputTokens": 30, "totalTokens": 42}
    seen = _upstream_checks(bedrock_simulator, "Converse")
    assert seen.raw_path == "/model/us.anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
    assert seen.json()["inferenceConfig"] == {"temperature": 0.5, "maxTokens": 100}
    cost = 12 * SONNET_IN + 30 * SONNET_OUT
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert float(headers["x-outcrop-response-cost"]) == pytest.approx(cost)
    assert headers["x-amzn-requestid"] == seen.request_id
    event = recorder.last()
    assert (event.status, event.stream, event.model, event.region) == (
        200,
        False,
        ALIAS,
        "us-west-2",
    )
    assert event.usage.prompt_tokens == 12 and event.usage.completion_tokens == 30
    assert event.cost == pytest.approx(cost)
    assert event.route == "/bedrock/model/{modelId}/converse"
    assert event.extra["auth"] == auth and event.extra["operation"] == "Converse"
    assert event.deployment == f"{ALIAS}#0"


def test_converse_stream_alias(runtime, bedrock_simulator, recorder):
    client, _ = runtime
    bedrock_simulator.reply(
        ConverseReply("Once upon a time", chunks=["Once ", "upon ", "a time"], usage=(8, 4))
    )
    response = client.converse_stream(modelId=ALIAS, messages=MESSAGES)
    events = list(response["stream"])
    text = "".join(
        e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e
    )
    assert text == "Once upon a time"
    assert events[-1]["metadata"]["usage"] == {
        "inputTokens": 8,
        "outputTokens": 4,
        "totalTokens": 12,
    }
    assert "x-outcrop-response-cost" not in response["ResponseMetadata"]["HTTPHeaders"]
    _upstream_checks(bedrock_simulator, "ConverseStream")
    event = recorder.last()
    assert event.stream and event.status == 200 and event.error is None
    assert (event.usage.prompt_tokens, event.usage.completion_tokens) == (8, 4)
    assert event.cost == pytest.approx(8 * SONNET_IN + 4 * SONNET_OUT)


def test_invoke_model_relays_bytes_and_token_headers(runtime, bedrock_simulator, recorder):
    client, _ = runtime
    answer = b'{"id":"msg_1","content":[{"type":"text","text":"caf\xc3\xa9"}],  "odd":  [1,2]}\n'
    bedrock_simulator.reply(InvokeReply(body=answer, input_tokens=21, output_tokens=7))
    body = b'{"anthropic_version": "bedrock-2023-05-31",\n  "max_tokens": 50, "messages": []}'
    response = client.invoke_model(
        modelId=ALIAS,
        body=body,
        contentType="application/json",
        accept="application/json",
        trace="ENABLED",
        guardrailIdentifier="gr1",
        guardrailVersion="1",
    )
    assert response["body"].read() == answer
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amzn-bedrock-input-token-count"] == "21"
    assert headers["x-amzn-bedrock-output-token-count"] == "7"
    assert float(headers["x-outcrop-response-cost"]) == pytest.approx(
        21 * SONNET_IN + 7 * SONNET_OUT
    )
    seen = _upstream_checks(bedrock_simulator, "InvokeModel")
    assert seen.body == body
    assert seen.headers["x-amzn-bedrock-trace"] == "ENABLED"
    assert seen.headers["x-amzn-bedrock-guardrailidentifier"] == "gr1"
    assert seen.headers["accept"] == "application/json"
    assert recorder.last().usage.total_tokens == 28 and not recorder.last().stream


def test_invoke_model_with_response_stream(runtime, bedrock_simulator, recorder):
    client, _ = runtime
    chunks = [
        {"type": "content_block_delta", "delta": {"text": "Hel"}},
        {"type": "content_block_delta", "delta": {"text": "lo"}},
        {"type": "message_stop"},
    ]
    bedrock_simulator.reply(InvokeReply(chunks=chunks, input_tokens=9, output_tokens=2))
    response = client.invoke_model_with_response_stream(
        modelId=ALIAS,
        body=json.dumps(
            {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50, "messages": []}
        ),
        contentType="application/json",
        accept="application/json",
    )
    parts = [json.loads(e["chunk"]["bytes"]) for e in response["body"]]
    assert [p.get("delta", {}).get("text") for p in parts] == ["Hel", "lo", None]
    assert parts[-1]["amazon-bedrock-invocationMetrics"]["inputTokenCount"] == 9
    seen = _upstream_checks(bedrock_simulator, "InvokeModelWithResponseStream")
    assert seen.headers["x-amzn-bedrock-accept"] == "application/json"
    assert response["contentType"] == "application/json"
    event = recorder.last()
    assert event.stream and (event.usage.prompt_tokens, event.usage.completion_tokens) == (9, 2)


def test_apply_guardrail(runtime, bedrock_simulator, recorder):
    client, _ = runtime
    response = client.apply_guardrail(
        guardrailIdentifier="gr-abc123",
        guardrailVersion="DRAFT",
        source="INPUT",
        content=[{"text": {"text": "Hello world"}}],
    )
    assert response["action"] == "NONE" and response["usage"]["topicPolicyUnits"] == 1
    seen = _upstream_checks(bedrock_simulator, "ApplyGuardrail")
    assert seen.params["guardrailIdentifier"] == "gr-abc123"
    assert recorder.last().model == "gr-abc123" and recorder.last().status == 200


def test_count_tokens(runtime, bedrock_simulator, recorder):
    client, _ = runtime
    response = client.count_tokens(modelId=ALIAS, input={"converse": {"messages": MESSAGES}})
    assert response["inputTokens"] == 2  # "Hello there"
    _upstream_checks(bedrock_simulator, "CountTokens")
    assert recorder.last().extra["operation"] == "CountTokens" and recorder.last().usage is None


def test_raw_model_id_uses_the_gateway_defaults(
    gateway_factory, make_config, bedrock_simulator, recorder
):
    gateway = gateway_factory(make_config(allow_raw_models=True))
    client = sigv4_client("bedrock-runtime", gateway.url)
    response = client.converse(modelId=RAW_MODEL_ID, messages=MESSAGES)
    assert response["output"]["message"]["content"][0]["text"] == "You said: Hello there"
    seen = _upstream_checks(bedrock_simulator, "Converse", RAW_MODEL_ID)
    assert seen.raw_path == "/model/cohere.command-r-v1%3A0/converse"  # as the client sent it
    event = recorder.last()
    assert event.deployment is None and event.model == RAW_MODEL_ID
    # cohere.command-r-v1:0 costs 0.5 / 1.5 USD per million tokens.
    assert event.cost == pytest.approx(
        event.usage.prompt_tokens * 0.5e-6 + event.usage.completion_tokens * 1.5e-6
    )


def test_first_event_reaches_the_client_before_the_upstream_finishes(gateway, bedrock_simulator):
    bedrock_simulator.reply(ConverseReply("a b c d", chunks=["a ", "b ", "c ", "d"], delay=0.15))
    client = sigv4_client("bedrock-runtime", gateway.url)
    started = time.monotonic()
    response = client.converse_stream(modelId=ALIAS, messages=MESSAGES)
    arrivals = [(time.monotonic() - started, event) for event in response["stream"]]
    first_delta = next(t for t, e in arrivals if "contentBlockDelta" in e)
    # 8 parts 0.15 s apart: the upstream needs >= 1 s; the first text must not wait for it.
    assert arrivals[-1][0] >= 1.0
    assert first_delta < arrivals[-1][0] - 0.6, arrivals


def test_streamed_exception_frame_is_relayed(gateway, bedrock_simulator, recorder):
    bedrock_simulator.reply(
        ConverseReply("part", chunks=["part"], exception=("throttlingException", "slow down"))
    )
    client = sigv4_client("bedrock-runtime", gateway.url)
    response = client.converse_stream(modelId=ALIAS, messages=MESSAGES)
    with pytest.raises(Exception) as caught:
        list(response["stream"])
    assert "throttlingException" in str(caught.value) and "slow down" in str(caught.value)
    assert recorder.wait_count(1)[-1].error == "throttlingException: slow down"


def test_inference_profile_arn_and_model_arn_with_encoded_colons_and_slashes(
    gateway_factory, make_config, bedrock_simulator, recorder
):
    gateway = gateway_factory(make_config(allow_raw_models=True))
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0"
    client = sigv4_client("bedrock-runtime", gateway.url)
    client.converse(modelId=arn, messages=MESSAGES)
    seen = bedrock_simulator.last("Converse")
    assert seen.raw_path == (
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile"
        "%2Fus.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
    )
    assert seen.params["modelId"] == arn and seen.error is None
    assert seen.region == "us-east-1"  # the ARN fixes the region
    assert recorder.last().region == "us-east-1" and recorder.last().model == arn
    stream = client.invoke_model_with_response_stream(modelId=arn, body=b'{"messages": []}')
    assert list(stream["body"])
    seen = bedrock_simulator.last("InvokeModelWithResponseStream")
    assert seen.params["modelId"] == arn and "%2F" in seen.raw_path


def test_alias_of_an_arn_is_encoded_like_botocore(
    gateway_factory, make_config, simulator_params, bedrock_simulator
):
    arn = "arn:aws:bedrock:us-west-2:123456789012:application-inference-profile/abc123xyz"
    config = make_config(
        model_list=[
            {"model_name": "profile", "litellm_params": simulator_params(f"bedrock/converse/{arn}")}
        ]
    )
    gw = gateway_factory(config)
    sigv4_client("bedrock-runtime", gw.url).converse(modelId="profile", messages=MESSAGES)
    seen = bedrock_simulator.last("Converse")
    assert seen.raw_path == (
        "/model/arn%3Aaws%3Abedrock%3Aus-west-2%3A123456789012%3A"
        "application-inference-profile%2Fabc123xyz/converse"
    )
    assert seen.params["modelId"] == arn


def test_large_body_is_forwarded_byte_for_byte(gateway, bedrock_simulator):
    payload = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "x" * 300_000 + "\U0001f600"}],
    }
    body = json.dumps(payload, ensure_ascii=False, indent=1).encode()
    answer = bytes(range(256)) * 1000  # not JSON, not UTF-8: relayed as is
    bedrock_simulator.reply(
        RawReply(
            200, {"content-type": "application/octet-stream"}, [answer[:100_000], answer[100_000:]]
        )
    )
    client = sigv4_client("bedrock-runtime", gateway.url)
    response = client.invoke_model(
        modelId=ALIAS, body=body, contentType="application/json", accept="application/octet-stream"
    )
    assert response["body"].read() == answer
    assert bedrock_simulator.last("InvokeModel").body == body
