"""The real Anthropic SDK against the gateway: sync, async, streaming helpers, accounting."""

from __future__ import annotations

import base64
import json
from typing import Any

import anthropic
import pytest

from outcrop.testing import CallEvents, ClaudeReply

from .common import HAIKU, SONNET


def test_create_reaches_invoke_model_with_bedrocks_body(
    client: anthropic.Anthropic, bedrock_simulator: Any, recorder: CallEvents
) -> None:
    bedrock_simulator.reply(
        ClaudeReply("Hello from Claude", usage=(12, 4)), operation="InvokeModel"
    )
    message = client.messages.create(
        model="claude",
        max_tokens=256,
        system="Be brief.",
        messages=[{"role": "user", "content": "Hi"}],
        stop_sequences=["\n\nHuman:"],
        metadata={"user_id": "u-1"},
        extra_body={"temperature": 0.5},  # this SDK version has no temperature argument
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello from Claude"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 4)
    sent = bedrock_simulator.last("InvokeModel")
    assert sent.params["modelId"] == SONNET
    body = json.loads(sent.body)
    assert body == {
        "anthropic_version": "bedrock-2023-05-31",
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 256,
        "system": "Be brief.",
        "metadata": {"user_id": "u-1"},
        "stop_sequences": ["\n\nHuman:"],
        "temperature": 0.5,
    }
    event = recorder.last()
    assert (event.surface, event.model, event.status, event.stream) == (
        "messages",
        "claude",
        200,
        False,
    )
    assert event.usage is not None and (
        event.usage.prompt_tokens,
        event.usage.completion_tokens,
    ) == (12, 4)
    # anthropic.claude-sonnet-4-5 at $3 / $15 per million tokens
    assert event.cost == pytest.approx(12 * 3e-6 + 4 * 15e-6)
    assert event.route == "/v1/messages"


async def test_async_create(aclient: anthropic.AsyncAnthropic, bedrock_simulator: Any) -> None:
    bedrock_simulator.reply(ClaudeReply("async answer"), operation="InvokeModel")
    message = await aclient.messages.create(
        model="claude", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
    )
    assert message.content[0].text == "async answer"


def test_stream_helper_text_and_final_message(
    client: anthropic.Anthropic, bedrock_simulator: Any, recorder: CallEvents
) -> None:
    bedrock_simulator.reply(
        ClaudeReply("one two three four", usage=(20, 7)),
        operation="InvokeModelWithResponseStream",
    )
    with client.messages.stream(
        model="claude", max_tokens=64, messages=[{"role": "user", "content": "count"}]
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == "one two three four"
    assert len(pieces) == 4
    assert final.content[0].text == "one two three four"
    assert final.usage.output_tokens == 7 and final.usage.input_tokens == 20
    sent = bedrock_simulator.last("InvokeModelWithResponseStream")
    assert sent.headers["x-amzn-bedrock-accept"] == "application/json"
    assert "stream" not in json.loads(sent.body)
    event = recorder.last()
    assert event.stream and event.status == 200
    assert (event.usage.prompt_tokens, event.usage.completion_tokens) == (20, 7)
    assert event.cost == pytest.approx(20 * 3e-6 + 7 * 15e-6)


async def test_async_stream_raw_events(
    aclient: anthropic.AsyncAnthropic, bedrock_simulator: Any
) -> None:
    bedrock_simulator.reply(ClaudeReply("a b"), operation="InvokeModelWithResponseStream")
    kinds = []
    async with await aclient.messages.create(
        model="claude",
        max_tokens=64,
        messages=[{"role": "user", "content": "Hi"}],
        stream=True,
    ) as stream:
        async for event in stream:
            kinds.append(event.type)
    assert kinds == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


def test_stream_frames_are_anthropic_sse_without_bedrock_metrics(
    gateway: Any, bedrock_simulator: Any
) -> None:
    import httpx

    bedrock_simulator.reply(ClaudeReply("x"), operation="InvokeModelWithResponseStream")
    response = httpx.post(
        gateway.url + "/v1/messages",
        headers={"x-api-key": "sk-anthropic-master", "anthropic-version": "2023-06-01"},
        json={
            "model": "claude",
            "max_tokens": 8,
            "stream": True,
            "messages": [{"role": "user", "content": "Hi"}],
        },
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["request-id"]
    frames = [f for f in response.text.split("\n\n") if f]
    for frame in frames:
        kind, data = frame.split("\n")
        assert kind.startswith("event: ") and data.startswith("data: ")
        assert json.loads(data[6:])["type"] == kind[7:]
    assert "amazon-bedrock-invocationMetrics" not in response.text
    assert frames[-1] == 'event: message_stop\ndata: {"type":"message_stop"}'


def test_anthropic_model_ids_reach_their_deployments(
    client: anthropic.Anthropic, bedrock_simulator: Any, recorder: CallEvents
) -> None:
    client.messages.create(
        model="claude-3-5-haiku-latest", max_tokens=8, messages=[{"role": "user", "content": "a"}]
    )
    assert bedrock_simulator.last("InvokeModel").params["modelId"] == HAIKU
    assert recorder.last().model == "haiku"
    assert recorder.last().extra["requested_model"] == "claude-3-5-haiku-latest"
    client.messages.create(
        model="claude-sonnet-4-5", max_tokens=8, messages=[{"role": "user", "content": "b"}]
    )
    assert bedrock_simulator.last("InvokeModel").params["modelId"] == SONNET


def test_configured_alias(
    gateway_factory: Any, model_list: list[dict[str, Any]], bedrock_simulator: Any
) -> None:
    gw = gateway_factory(
        {
            "model_list": model_list,
            "anthropic_messages": {"model_aliases": {"claude-opus-4-1": "claude"}},
        }
    )
    with anthropic.Anthropic(base_url=gw.url, api_key="anything", max_retries=0) as c:
        c.messages.create(
            model="claude-opus-4-1", max_tokens=8, messages=[{"role": "user", "content": "a"}]
        )
    assert bedrock_simulator.last("InvokeModel").params["modelId"] == SONNET


def test_count_tokens_through_bedrock_count_tokens(
    client: anthropic.Anthropic, bedrock_simulator: Any, recorder: CallEvents
) -> None:
    counted = client.messages.count_tokens(
        model="claude",
        system=[{"type": "text", "text": "You are terse."}],
        messages=[{"role": "user", "content": "one two three"}],
    )
    sent = bedrock_simulator.last("CountTokens")
    # CountTokens takes the foundation model, not the inference profile
    assert sent.params["modelId"] == "anthropic.claude-sonnet-4-5-20250929-v1:0"
    inner = json.loads(base64.b64decode(json.loads(sent.body)["input"]["invokeModel"]["body"]))
    assert inner["anthropic_version"] == "bedrock-2023-05-31"
    assert inner["system"] == [{"type": "text", "text": "You are terse."}]
    # the simulator counts words: "You are terse." + "one two three"
    assert counted.input_tokens == 6
    assert recorder.last().route == "/v1/messages/count_tokens"
    assert recorder.last().status == 200


def test_stream_events_reach_the_client_as_they_arrive(
    gateway: Any, bedrock_simulator: Any
) -> None:
    """Bedrock sends the events 0.3 s apart: the client sees them spread out the same way (a
    buffering gateway would deliver them all at once at the end)."""
    import time

    import httpx

    bedrock_simulator.reply(
        ClaudeReply("a b c d", delay=0.3), operation="InvokeModelWithResponseStream"
    )
    arrivals: list[float] = []
    with httpx.stream(
        "POST",
        gateway.url + "/v1/messages",
        headers={"x-api-key": "sk-anthropic-master"},
        json={
            "model": "claude",
            "max_tokens": 8,
            "stream": True,
            "messages": [{"role": "user", "content": "Hi"}],
        },
    ) as response:
        for chunk in response.iter_raw():
            if b"text_delta" in chunk:
                arrivals.append(time.monotonic())
    assert len(arrivals) >= 3
    # the simulator sleeps 0.3 s before each part: 4 deltas span at least 0.9 s, whatever the load
    assert arrivals[-1] - arrivals[0] >= 0.6


def test_alias_to_an_unknown_model_name_stops_start_up(
    model_list: list[dict[str, Any]],
) -> None:
    from outcrop import ConfigError
    from outcrop.app import create_app

    with pytest.raises(ConfigError) as caught:
        create_app(
            {"model_list": model_list, "anthropic_messages": {"model_aliases": {"x": "nova"}}}
        )
    assert "anthropic_messages.model_aliases.x: 'nova' is not a model_name" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        create_app({"model_list": model_list, "anthropic_messages": {"betas": "all"}})
    assert "anthropic_messages.betas" in str(caught.value)
