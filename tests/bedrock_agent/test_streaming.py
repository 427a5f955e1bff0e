"""Real streaming: no buffering, cancellation on disconnect, exception frames mid-stream."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from outcrop.testing import AgentReply, EventStreamReply, encode_error, encode_event

from .common import MASTER_KEY

USER = [{"role": "user", "content": "Tell me a story"}]
DELAY = 0.15


def test_first_chunk_arrives_before_the_last_is_produced(client, bedrock_simulator):
    words = ["Once ", "upon ", "a ", "time."]
    bedrock_simulator.reply(
        AgentReply(words, delay=DELAY, usage_steps=[(10, 4)]), operation="InvokeAgent"
    )
    started = time.perf_counter()
    arrivals: list[tuple[float, str]] = []
    stream = client.chat.completions.create(model="bedrock-agent-1", messages=USER, stream=True)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append((time.perf_counter() - started, chunk.choices[0].delta.content))
    assert [text for _, text in arrivals] == words
    # Frames: 2 traces then 4 chunks, DELAY apart: the simulator produces the last chunk 5 * DELAY
    # after it got the request. The first chunk (frame 3) must reach the client before even
    # frame 5 exists, i.e. nothing waited for the rest of the answer.
    first, last = arrivals[0][0], arrivals[-1][0]
    assert last >= 5 * DELAY * 0.9
    assert first < 4 * DELAY


def test_client_disconnect_cancels_the_upstream_call(gateway, bedrock_simulator, events):
    bedrock_simulator.reply(
        AgentReply([f"part {i} " for i in range(40)], delay=0.1), operation="InvokeAgent"
    )
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        json={"model": "bedrock-agent-1", "messages": USER, "stream": True},
    ) as r:
        for line in r.iter_lines():
            if line.startswith("data: ") and "part 0" in line:
                break  # close after the first chunk
    event = events.wait_for(lambda e: e.stream)
    assert event.status == 499
    deadline = time.monotonic() + 3
    while not bedrock_simulator.last("InvokeAgent").disconnected and time.monotonic() < deadline:
        time.sleep(0.02)
    assert bedrock_simulator.last("InvokeAgent").disconnected  # the upstream stream was abandoned


def test_exception_frame_mid_stream_is_an_sse_error_then_the_end(
    gateway, bedrock_simulator, events
):
    bedrock_simulator.reply(
        AgentReply(["Partial ", "answer"], exception=("throttlingException", "Rate exceeded")),
        operation="InvokeAgent",
    )
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        json={"model": "bedrock-agent-1", "messages": USER, "stream": True},
    ) as r:
        assert r.status_code == 200
        payloads = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert "[DONE]" not in payloads
    *chunks, last = [json.loads(p) for p in payloads]
    assert (
        "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "Partial answer"
    )
    assert last == {
        "error": {
            "message": "ThrottlingException: Rate exceeded",
            "type": "rate_limit_error",
            "param": None,
            "code": "ThrottlingException",
        }
    }
    assert events.wait_for(lambda e: e.stream).status == 429


def test_exception_frame_through_the_openai_sdk(client, bedrock_simulator):
    bedrock_simulator.reply(
        AgentReply(["Partial"], exception=("dependencyFailedException", "Lambda failed")),
        operation="InvokeAgent",
    )
    stream = client.chat.completions.create(model="bedrock-agent-1", messages=USER, stream=True)
    seen = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            seen.append(chunk.choices[0].delta.content if chunk.choices else None)
    assert seen == ["Partial"]
    assert "DependencyFailedException: Lambda failed" in info.value.message


def test_non_stream_call_fails_with_the_mapped_error_not_partial_text(client, bedrock_simulator):
    bedrock_simulator.reply(
        AgentReply(["Partial"], exception=("throttlingException", "Rate exceeded")),
        operation="InvokeAgent",
    )
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="bedrock-agent-1", messages=USER)
    assert info.value.body["code"] == "ThrottlingException"
    assert "Partial" not in info.value.message


def test_error_frame_and_unknown_events(client, bedrock_simulator):
    frames = [
        encode_event("somethingNew", {"x": 1}),
        encode_event("chunk", {"bytes": "aGk="}),
        encode_error("InternalFailure", "boom"),
    ]
    bedrock_simulator.reply(EventStreamReply(frames), operation="InvokeAgent")
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="bedrock-agent-1", messages=USER)
    assert info.value.status_code == 502 and "InternalFailure: boom" in info.value.message


@pytest.mark.parametrize(
    "frame",
    [
        encode_event("chunk", {"bytes": "not base64!"}),
        encode_event("trace", b"[1, 2]"),
        encode_event("returnControl", b"{broken"),
    ],
)
def test_malformed_events_are_bad_gateway(client, bedrock_simulator, frame):
    bedrock_simulator.reply(EventStreamReply([frame]), operation="InvokeAgent")
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="bedrock-agent-1", messages=USER)
    assert info.value.status_code == 502 and info.value.body["code"] == "malformed_upstream_event"
