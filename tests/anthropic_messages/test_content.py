"""Tools, tool results, images, documents, thinking and prompt caching pass through unchanged,
and come back as the SDK expects them (a full tool loop; thinking blocks sent back)."""

from __future__ import annotations

import base64
import json
from typing import Any

import anthropic
import pytest

from outcrop.testing import CallEvents, ClaudeReply, ToolUse

WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()
PDF = base64.b64encode(b"%PDF-1.4 tiny").decode()


@pytest.mark.parametrize("streamed", [False, True])
def test_tool_loop(client: anthropic.Anthropic, bedrock_simulator: Any, streamed: bool) -> None:
    call = ToolUse("get_weather", {"city": "Paris"}, id="toolu_01A")
    bedrock_simulator.reply(ClaudeReply(tool_calls=[call]), times=1)
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    kwargs: dict[str, Any] = {
        "model": "claude",
        "max_tokens": 256,
        "tools": [WEATHER],
        "tool_choice": {"type": "auto"},
    }
    if streamed:
        with client.messages.stream(messages=messages, **kwargs) as stream:
            first = stream.get_final_message()
    else:
        first = client.messages.create(messages=messages, **kwargs)
    assert first.stop_reason == "tool_use"
    use = next(b for b in first.content if b.type == "tool_use")
    assert (use.id, use.name, use.input) == ("toolu_01A", "get_weather", {"city": "Paris"})

    bedrock_simulator.reply(ClaudeReply("It is sunny in Paris."), times=1)
    messages += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny, 24C"}],
        },
    ]
    second = client.messages.create(messages=messages, **kwargs)
    assert second.content[0].text == "It is sunny in Paris."
    sent = json.loads(bedrock_simulator.requests[-1].body)
    assert sent["tools"] == [WEATHER]
    assert sent["tool_choice"] == {"type": "auto"}
    assert sent["messages"][1]["content"][0]["type"] == "tool_use"
    assert sent["messages"][2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "toolu_01A",
        "content": "sunny, 24C",
    }


def test_images_and_documents_pass_through(
    client: anthropic.Anthropic, bedrock_simulator: Any
) -> None:
    content = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
            "title": "tiny",
        },
        {"type": "text", "text": "Describe both."},
    ]
    client.messages.create(
        model="claude", max_tokens=64, messages=[{"role": "user", "content": content}]
    )
    sent = json.loads(bedrock_simulator.last("InvokeModel").body)
    assert sent["messages"][0]["content"] == content


@pytest.mark.parametrize("streamed", [False, True])
def test_thinking_round_trip(
    client: anthropic.Anthropic, bedrock_simulator: Any, streamed: bool
) -> None:
    reply = ClaudeReply("42.", thinking="Six times seven is forty-two.", thinking_signature="c2ln")
    bedrock_simulator.reply(reply, times=1)
    kwargs: dict[str, Any] = {
        "model": "claude",
        "max_tokens": 2048,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": "6*7?"}],
        "extra_headers": {"anthropic-beta": "interleaved-thinking-2025-05-14"},
    }
    if streamed:
        with client.messages.stream(**kwargs) as stream:
            thoughts = [e.thinking for e in stream if e.type == "thinking"]
            message = stream.get_final_message()
        assert "".join(thoughts) == "Six times seven is forty-two."
    else:
        message = client.messages.create(**kwargs)
    thinking = message.content[0]
    assert thinking.type == "thinking"
    assert (thinking.thinking, thinking.signature) == ("Six times seven is forty-two.", "c2ln")
    assert message.content[1].text == "42."
    sent = json.loads(bedrock_simulator.requests[-1].body)
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert sent["anthropic_beta"] == ["interleaved-thinking-2025-05-14"]
    # the next turn sends the signed block back unchanged
    client.messages.create(
        model="claude",
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[
            {"role": "user", "content": "6*7?"},
            {
                "role": "assistant",
                "content": [b.model_dump(exclude_none=True) for b in message.content],
            },
            {"role": "user", "content": "And 6*8?"},
        ],
    )
    sent = json.loads(bedrock_simulator.last("InvokeModel").body)
    assert sent["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "Six times seven is forty-two.",
        "signature": "c2ln",
    }


@pytest.mark.parametrize("streamed", [False, True])
def test_prompt_caching_usage_and_cost(
    client: anthropic.Anthropic, bedrock_simulator: Any, recorder: CallEvents, streamed: bool
) -> None:
    bedrock_simulator.reply(ClaudeReply("cached", usage=(10, 5), cache=(1000, 200)))
    system = [
        {"type": "text", "text": "A long, stable preamble.", "cache_control": {"type": "ephemeral"}}
    ]
    kwargs: dict[str, Any] = {
        "model": "claude",
        "max_tokens": 64,
        "system": system,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    if streamed:
        with client.messages.stream(**kwargs) as stream:
            message = stream.get_final_message()
    else:
        message = client.messages.create(**kwargs)
    assert message.usage.cache_read_input_tokens == 1000
    assert message.usage.cache_creation_input_tokens == 200
    assert message.usage.input_tokens == 10
    sent = json.loads(bedrock_simulator.requests[-1].body)
    assert sent["system"] == system
    usage = recorder.last().usage
    assert usage.prompt_tokens == 1210 and usage.completion_tokens == 5
    assert usage.prompt_tokens_details.cached_tokens == 1000
    assert usage.prompt_tokens_details.cache_creation_tokens == 200
    # Claude's cache prices: reads at 0.1x and writes at 1.25x the $3 input price
    assert recorder.last().cost == pytest.approx(
        10 * 3e-6 + 1000 * 0.3e-6 + 200 * 3.75e-6 + 5 * 15e-6
    )


def test_unsupported_betas_are_dropped_supported_ones_forwarded(
    client: anthropic.Anthropic, bedrock_simulator: Any, recorder: CallEvents
) -> None:
    client.messages.create(
        model="claude",
        max_tokens=8,
        messages=[{"role": "user", "content": "Hi"}],
        extra_headers={
            "anthropic-beta": "claude-code-20250219, fine-grained-tool-streaming-2025-05-14"
        },
    )
    sent = json.loads(bedrock_simulator.last("InvokeModel").body)
    assert sent["anthropic_beta"] == ["fine-grained-tool-streaming-2025-05-14"]
    assert recorder.last().extra["dropped_betas"] == ["claude-code-20250219"]


def test_context_edits_bedrock_refuses_are_dropped(
    client: anthropic.Anthropic, bedrock_simulator: Any, recorder: CallEvents
) -> None:
    """Claude Code asks for ``clear_thinking_20251015`` on every call; Bedrock refuses it, so
    it is dropped (the field with it when nothing is left); ``compact_20260112`` goes through."""
    client.messages.create(
        model="claude",
        max_tokens=8,
        messages=[{"role": "user", "content": "Hi"}],
        extra_body={"context_management": {"edits": [{"type": "clear_thinking_20251015"}]}},
    )
    assert "context_management" not in json.loads(bedrock_simulator.last("InvokeModel").body)
    assert recorder.last().extra["dropped_context_edits"] == ["clear_thinking_20251015"]
    edits = [{"type": "clear_thinking_20251015"}, {"type": "compact_20260112"}]
    client.messages.create(
        model="claude",
        max_tokens=8,
        messages=[{"role": "user", "content": "Hi"}],
        extra_body={"context_management": {"edits": edits, "note": 1}},
    )
    sent = json.loads(bedrock_simulator.last("InvokeModel").body)
    assert sent["context_management"] == {"edits": [{"type": "compact_20260112"}], "note": 1}
