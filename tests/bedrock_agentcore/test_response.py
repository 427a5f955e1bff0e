"""What the client gets back for each kind of runtime answer: JSON, Strands SSE, plain-string
SSE, plain text, NDJSON; streamed as it arrives; usage only when reported; mid-stream errors."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from outcrop.testing import RawReply, RuntimeReply

from .common import AUTH, USER


def ask(client, **kwargs):
    return client.chat.completions.create(model="agentcore-runtime-1", messages=USER, **kwargs)


def streamed(client, **kwargs):
    chunks = list(ask(client, stream=True, stream_options={"include_usage": True}, **kwargs))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return chunks, text


# --- application/json -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "text"),
    [
        ({"result": "Cloud computing saves money."}, "Cloud computing saves money."),
        (
            {
                "result": {
                    "role": "assistant",
                    "content": [{"text": "Strands "}, {"text": "message"}],
                }
            },
            "Strands message",
        ),
        (
            {"output": {"message": {"role": "assistant", "content": [{"text": "converse shape"}]}}},
            "converse shape",
        ),
        (
            {"choices": [{"message": {"role": "assistant", "content": "openai shape"}}]},
            "openai shape",
        ),
        ("a bare JSON string", "a bare JSON string"),
    ],
)
def test_json_answers(client, sim, document, text):
    sim.reply(RuntimeReply.json(document))
    response = ask(client)
    assert response.choices[0].message.content == text
    assert "agentcore_response" not in (response.model_extra or {})


def test_json_without_text_keeps_the_raw_document(client, sim):
    sim.reply(RuntimeReply.json({"status": "queued", "ticket": 42}))
    response = ask(client)
    assert json.loads(response.choices[0].message.content) == {"status": "queued", "ticket": 42}
    assert response.model_extra["agentcore_response"] == {"status": "queued", "ticket": 42}


def test_json_usage_and_stop_reason_only_when_reported(client, sim):
    sim.reply(
        RuntimeReply.json(
            {
                "result": "ok",
                "usage": {"inputTokens": 11, "outputTokens": 4},
                "stopReason": "max_tokens",
            }
        ),
        times=1,
    )
    response = ask(client)
    assert (
        response.usage.prompt_tokens,
        response.usage.completion_tokens,
        response.usage.total_tokens,
    ) == (11, 4, 15)
    assert response.choices[0].finish_reason == "length"
    sim.reply(RuntimeReply.json({"result": "ok"}))
    response = ask(client)
    assert response.usage is None  # nothing reported, nothing invented


def test_json_answer_to_a_streaming_client(client, sim):
    sim.reply(RuntimeReply.json({"result": "one piece", "ticket": 1}))
    chunks, text = streamed(client)
    assert text == "one piece"
    assert chunks[-1].usage is None  # none reported, none invented


# --- text/event-stream -----------------------------------------------------------------------


def test_strands_stream(client, sim):
    sim.reply(RuntimeReply.strands(["Cloud ", "computing ", "scales."], usage=(25, 9)))
    chunks, text = streamed(client)
    assert text == "Cloud computing scales."  # each text once, though Strands sends it twice
    assert [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ] == ["Cloud ", "computing ", "scales."]
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (25, 9)
    assert chunks[0].session_id == sim.last().headers["x-amzn-bedrock-agentcore-runtime-session-id"]


def test_strands_stream_folded_for_a_non_streaming_client(client, sim):
    # the agent loop: a tool turn, then the answer; usage is the sum of both model calls
    events = [
        {"init_event_loop": True},
        {"event": {"messageStart": {"role": "assistant"}}},
        {"event": {"contentBlockDelta": {"delta": {"text": "Let me check. "}}}},
        {"data": "Let me check. "},
        {"event": {"contentBlockDelta": {"delta": {"toolUse": {"input": '{"city": "Paris"}'}}}}},
        {"event": {"messageStop": {"stopReason": "tool_use"}}},
        {"event": {"metadata": {"usage": {"inputTokens": 30, "outputTokens": 12}}}},
        {
            "message": {
                "role": "user",
                "content": [{"toolResult": {"content": [{"text": "sunny"}]}}],
            }
        },
        {"event": {"contentBlockDelta": {"delta": {"text": "It is sunny."}}}},
        {"data": "It is sunny."},
        {"event": {"messageStop": {"stopReason": "end_turn"}}},
        {"event": {"metadata": {"usage": {"inputTokens": 50, "outputTokens": 5}}}},
        {"result": "It is sunny."},
    ]
    sim.reply(RuntimeReply.sse(events))
    response = ask(client)
    assert response.choices[0].message.content == "Let me check. It is sunny."
    assert response.choices[0].finish_reason == "stop"
    assert (
        response.usage.prompt_tokens,
        response.usage.completion_tokens,
        response.usage.total_tokens,
    ) == (80, 17, 97)


def test_strands_reasoning_is_reasoning_content(client, sim):
    sim.reply(
        RuntimeReply.sse(
            [
                {
                    "event": {
                        "contentBlockDelta": {"delta": {"reasoningContent": {"text": "think"}}}
                    }
                },
                {"reasoningText": "think", "reasoning": True},
                {"event": {"contentBlockDelta": {"delta": {"text": "answer"}}}},
                {"data": "answer"},
            ]
        )
    )
    response = ask(client)
    assert response.choices[0].message.content == "answer"
    assert response.choices[0].message.model_extra["reasoning_content"] == "think"


def test_plain_json_string_stream(client, sim):
    sim.reply(RuntimeReply.sse(["Hello ", "from ", "a generator"]))
    chunks, text = streamed(client)
    assert text == "Hello from a generator"
    assert chunks[-1].usage is None  # no usage reported by this agent


def test_plain_text_sse_and_dict_chunks(client, sim):
    sim.reply(
        RawReply(
            200,
            {"content-type": "text/event-stream; charset=utf-8"},
            [
                b"data: plain words\n\n",
                b": ping\n\n",
                b'data: {"text": " and dicts"}\n\n',
                b"data: [DONE]\n\n",
            ],
        )
    )
    assert ask(client).choices[0].message.content == "plain words and dicts"


def test_sse_of_unknown_objects_is_not_silently_empty(client, sim):
    sim.reply(RuntimeReply.sse([{"status": "working"}, {"status": "done", "items": [1, 2]}]))
    response = ask(client)
    assert response.choices[0].message.content.splitlines() == [
        '{"status":"working"}',
        '{"status":"done","items":[1,2]}',
    ]
    assert response.model_extra["agentcore_response"][1] == {"status": "done", "items": [1, 2]}


def test_ndjson_stream(client, sim):
    sim.reply(
        RawReply(
            200,
            {"content-type": "application/x-ndjson"},
            [b'{"text": "line one, "}\n', b'"line two"\n'],
        )
    )
    assert ask(client).choices[0].message.content == "line one, line two"


# --- text/plain ------------------------------------------------------------------------------


def test_plain_text(client, sim):
    sim.reply(RuntimeReply.text("Just text, no JSON."))
    assert ask(client).choices[0].message.content == "Just text, no JSON."


def test_plain_text_streamed_with_a_character_split_across_chunks(client, sim):
    data = "Grüße, café".encode()
    split = data.index("ü".encode()) + 1  # in the middle of the two-byte ü
    sim.reply(RuntimeReply([data[:split], data[split:]], "text/plain; charset=utf-8", delay=0.05))
    _, text = streamed(client)
    assert text == "Grüße, café"


# --- never buffered --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        RuntimeReply.sse(["first ", "second ", "third"], delay=0.25),
        RuntimeReply([b"first ", b"second ", b"third"], "text/plain", delay=0.25),
    ],
)
def test_each_event_reaches_the_client_as_it_arrives(client, sim, reply):
    sim.reply(reply)
    started = time.perf_counter()
    arrivals = []
    for chunk in ask(client, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append((time.perf_counter() - started, chunk.choices[0].delta.content))
    assert [text for _, text in arrivals] == ["first ", "second ", "third"]
    # Relative, not absolute, so machine load cannot fail it: a buffering gateway would deliver
    # the pieces together; relayed, the first arrives about two runtime delays before the last.
    assert arrivals[-1][0] - arrivals[0][0] >= 0.4


# --- mid-stream errors -----------------------------------------------------------------------


def test_mid_stream_error_becomes_an_sse_error_event(gateway, sim):
    sim.reply(RuntimeReply.strands(["Partial "], error=("database unreachable", "ConnectionError")))
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        headers=AUTH,
        json={"model": "agentcore-runtime-1", "messages": USER, "stream": True},
    ) as r:
        assert r.status_code == 200
        events = [line.removeprefix("data: ") for line in r.iter_lines() if line]
    assert json.loads(events[0])["choices"][0]["delta"]["content"] == "Partial "
    error = json.loads(events[-1])["error"]
    assert error["code"] == "agent_stream_error"
    assert "ConnectionError: database unreachable" in error["message"]
    assert "[DONE]" not in events


def test_mid_stream_error_with_the_openai_sdk(client, sim):
    sim.reply(RuntimeReply.sse(["Partial "], error=("boom", "ValueError")))
    texts = []
    with pytest.raises(openai.APIError, match="ValueError: boom"):
        for chunk in ask(client, stream=True):
            texts.append(chunk.choices[0].delta.content)
    assert texts == ["Partial "]


def test_mid_stream_error_fails_a_non_streaming_call_without_partial_text(client, sim):
    sim.reply(RuntimeReply.strands(["Partial "], error=("boom", "ValueError")))
    with pytest.raises(openai.InternalServerError) as info:
        ask(client)
    assert info.value.status_code == 502
    assert "ValueError: boom" in info.value.message and "Partial" not in info.value.message
    assert info.value.response.headers["x-outcrop-session-id"]


def test_client_disconnect_cancels_the_runtime_call(gateway, sim):
    sim.reply(RuntimeReply.sse([f"piece {i} " for i in range(10)], delay=0.15))
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        headers=AUTH,
        json={"model": "agentcore-runtime-1", "messages": USER, "stream": True},
    ) as r:
        first = next(line for line in r.iter_lines() if line)
    assert "piece 0" in first
    deadline = time.time() + 3
    while not sim.last().disconnected and time.time() < deadline:
        time.sleep(0.02)
    assert sim.last().disconnected  # the gateway let go of the runtime, long before its 10th piece
