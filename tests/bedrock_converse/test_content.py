"""Images, documents, prompt caching and reasoning."""

from __future__ import annotations

import base64
import re

import openai
import pytest

from outcrop.testing import ConverseReply

from .common import ALIAS, NOVA, PDF_B64, PNG_B64, USER

BIG_PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(3_750_001)).decode()


def _image(url: str) -> list[dict]:
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        }
    ]


def test_image_as_a_data_url(client, bedrock_simulator):
    client.chat.completions.create(model=ALIAS, messages=_image(f"data:image/png;base64,{PNG_B64}"))
    content = bedrock_simulator.last().json()["messages"][0]["content"]
    assert content == [
        {"text": "What is this?"},
        {"image": {"format": "png", "source": {"bytes": PNG_B64}}},
    ]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://example.com/cat.png", "image URLs are not fetched"),
        ("http://169.254.169.254/latest/meta-data", "image URLs are not fetched"),
        (f"data:image/jpeg;base64,{PNG_B64}", "not a JPEG image (it looks like PNG)"),
        ("data:image/tiff;base64,AAAA", "image type 'image/tiff' is not supported"),
        ("data:image/png;base64,%%%", "not valid base64"),
        ("data:image/png;base64,", "holds no data"),
        (f"data:image/png;base64,{BIG_PNG}", "exceeds Bedrock's limit of 3750000 bytes"),
    ],
)
def test_bad_images_are_400_and_never_fetched(client, bedrock_simulator, url, message):
    with pytest.raises(openai.BadRequestError, match=re.escape(message)) as caught:
        client.chat.completions.create(model=ALIAS, messages=_image(url))
    assert caught.value.body["param"] == "messages[0].content[1]"
    assert bedrock_simulator.requests == []


def test_too_many_images(client, bedrock_simulator):
    parts = [{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}}] * 21
    with pytest.raises(openai.BadRequestError, match="more than 20 images"):
        client.chat.completions.create(model=ALIAS, messages=[{"role": "user", "content": parts}])


def test_pdf_file_part_becomes_a_document(client, bedrock_simulator):
    part = {
        "type": "file",
        "file": {
            "filename": "Q3 report (final).pdf",
            "file_data": f"data:application/pdf;base64,{PDF_B64}",
        },
    }
    client.chat.completions.create(
        model=ALIAS,
        messages=[{"role": "user", "content": [{"type": "text", "text": "Summarize"}, part, part]}],
    )
    content = bedrock_simulator.last().json()["messages"][0]["content"]
    assert content[1] == {
        "document": {"format": "pdf", "name": "Q3 report (final)", "source": {"bytes": PDF_B64}}
    }
    assert content[2]["document"]["name"] == "Q3 report (final) (2)"  # names must differ


def test_bad_documents_are_400(client, bedrock_simulator):
    for part, message in [
        ({"type": "file", "file": {"file_id": "file-abc"}}, "file ids are not supported"),
        (
            {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PNG_B64}"}},
            "not a PDF",
        ),
        (
            {"type": "file", "file": {"file_data": "data:application/zip;base64,AAAA"}},
            "not supported",
        ),
        (
            {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
            "not supported",
        ),
    ]:
        with pytest.raises(openai.BadRequestError, match=message):
            client.chat.completions.create(
                model=ALIAS, messages=[{"role": "user", "content": [part]}]
            )
    assert bedrock_simulator.requests == []


def test_cache_control_becomes_cache_points(client, bedrock_simulator):
    marked = {"type": "ephemeral"}
    client.chat.completions.create(
        model=ALIAS,
        messages=[
            {
                "role": "system",
                "content": [{"type": "text", "text": "Long rules", "cache_control": marked}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Long doc", "cache_control": marked},
                    {"type": "text", "text": "Question"},
                ],
            },
        ],
        tools=[{"type": "function", "function": {"name": "f"}, "cache_control": marked}],
    )
    body = bedrock_simulator.last().json()
    point = {"cachePoint": {"type": "default"}}
    assert body["system"] == [{"text": "Long rules"}, point]
    assert body["messages"][0]["content"] == [{"text": "Long doc"}, point, {"text": "Question"}]
    assert body["toolConfig"]["tools"][1] == point


@pytest.mark.parametrize("stream", [False, True])
def test_cache_tokens_in_usage_and_cost(client, bedrock_simulator, events, stream):
    bedrock_simulator.reply(ConverseReply("ok", usage=(100, 10), cache=(1000, 200)))
    r = client.chat.completions.create(
        model=ALIAS,
        messages=USER,
        stream=stream,
        stream_options={"include_usage": True} if stream else None,
    )
    usage = list(r)[-1].usage if stream else r.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (1300, 10, 1310)
    assert usage.prompt_tokens_details.cached_tokens == 1000
    assert usage.prompt_tokens_details.model_extra["cache_creation_tokens"] == 200
    # Claude 3.5 Sonnet: $3/M input, reads at 10 %, writes at 125 %, $15/M output
    expected = 100 * 3e-6 + 1000 * 0.3e-6 + 200 * 3.75e-6 + 10 * 15e-6
    assert events.wait_count(1)[-1].cost == pytest.approx(expected)


@pytest.mark.parametrize("stream", [False, True])
def test_reasoning_effort_on_claude(client, bedrock_simulator, stream):
    bedrock_simulator.reply(ConverseReply("42", reasoning="Six times seven is forty-two."))
    r = client.chat.completions.create(
        model=ALIAS, messages=USER, reasoning_effort="medium", stream=stream
    )
    if stream:
        chunks = list(r)
        reasoning = "".join(
            c.choices[0].delta.model_extra.get("reasoning_content") or "" for c in chunks
        )
        content = "".join(c.choices[0].delta.content or "" for c in chunks)
    else:
        reasoning, content = (
            r.choices[0].message.model_extra["reasoning_content"],
            r.choices[0].message.content,
        )
    assert (reasoning, content) == ("Six times seven is forty-two.", "42")
    body = bedrock_simulator.last().json()
    assert body["additionalModelRequestFields"] == {
        "thinking": {"type": "enabled", "budget_tokens": 2048}
    }
    assert body["inferenceConfig"] == {"maxTokens": 2048 + 4096}


def test_anthropic_thinking_parameter(client, bedrock_simulator):
    client.chat.completions.create(
        model=ALIAS,
        messages=USER,
        max_tokens=8000,
        extra_body={"thinking": {"type": "enabled", "budget_tokens": 3000}},
    )
    body = bedrock_simulator.last().json()
    assert body["additionalModelRequestFields"]["thinking"]["budget_tokens"] == 3000
    with pytest.raises(openai.BadRequestError, match="must be larger than the thinking budget"):
        client.chat.completions.create(
            model=ALIAS,
            messages=USER,
            max_tokens=1000,
            extra_body={"thinking": {"type": "enabled", "budget_tokens": 3000}},
        )


def test_reasoning_effort_on_a_model_without_a_known_setting(client, bedrock_simulator):
    with pytest.raises(openai.BadRequestError, match=f"no reasoning setting is known for {NOVA}"):
        client.chat.completions.create(
            model="nova", messages=USER, reasoning_effort="high", extra_body={"drop_params": False}
        )
    r = client.chat.completions.with_raw_response.create(
        model="nova", messages=USER, reasoning_effort="high"
    )
    assert r.headers["x-outcrop-dropped-params"] == "reasoning_effort"
    assert "additionalModelRequestFields" not in bedrock_simulator.last().json()


@pytest.mark.parametrize("stream", [False, True])
def test_signed_reasoning_goes_back_with_the_tool_loop(client, bedrock_simulator, stream):
    """Claude with extended thinking needs its signed reasoning block back beside its tool calls:
    the answer carries it as ``thinking_blocks`` and the next request sends it first in the turn."""
    from outcrop.testing import ToolUse

    bedrock_simulator.reply(
        ConverseReply(
            reasoning="I should call the tool.",
            reasoning_signature="c2ln",
            tool_calls=[ToolUse("get_time", {}, id="t1")],
        ),
        times=1,
    )
    tools = [{"type": "function", "function": {"name": "get_time"}}]
    r = client.chat.completions.create(
        model=ALIAS, messages=USER, tools=tools, reasoning_effort="low", stream=stream
    )
    if stream:
        deltas = [c.choices[0].delta for c in r if c.choices]
        blocks = [b for d in deltas for b in (d.model_extra.get("thinking_blocks") or ())]
        assistant = {
            "role": "assistant",
            "thinking_blocks": blocks,
            "tool_calls": [
                {
                    "id": "t1",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": "{}"},
                }
            ],
        }
    else:
        message = r.choices[0].message
        blocks = message.model_extra["thinking_blocks"]
        assistant = message.model_dump(exclude_none=True)
    assert blocks == [
        {"type": "thinking", "thinking": "I should call the tool.", "signature": "c2ln"}
    ]
    client.chat.completions.create(
        model=ALIAS,
        reasoning_effort="low",
        tools=tools,
        messages=[*USER, assistant, {"role": "tool", "tool_call_id": "t1", "content": "noon"}],
    )
    turn = bedrock_simulator.last().json()["messages"][1]
    assert turn["content"][0] == {
        "reasoningContent": {
            "reasoningText": {"text": "I should call the tool.", "signature": "c2ln"}
        }
    }
    assert turn["content"][1]["toolUse"]["toolUseId"] == "t1"


def test_redacted_reasoning_round_trip(client, bedrock_simulator):
    assistant = {
        "role": "assistant",
        "content": "ok",
        "thinking_blocks": [{"type": "redacted_thinking", "data": "c2VjcmV0"}],
    }
    client.chat.completions.create(model=ALIAS, messages=[*USER, assistant, *USER])
    assert bedrock_simulator.last().json()["messages"][1]["content"][0] == {
        "reasoningContent": {"redactedContent": "c2VjcmV0"}
    }
    with pytest.raises(openai.BadRequestError, match="thinking_blocks"):
        client.chat.completions.create(
            model=ALIAS,
            messages=[
                *USER,
                {"role": "assistant", "content": "x", "thinking_blocks": [{"type": "other"}]},
                *USER,
            ],
        )
