"""An upstream answer that ends in the middle of a frame (or an SSE event, or a JSON line) is
never taken for a complete one: a 502 on non-streamed chat, an SSE error event and no [DONE]
on streamed chat, an aborted connection on the pass-through (so the AWS SDK raises)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import urllib3.exceptions
from botocore.exceptions import BotoCoreError, EventStreamError

import outcrop
from outcrop import OutcropError
from outcrop.testing import EventStreamReply, RawReply, encode_event

from .conftest import AUTH, assert_openai_error, assert_still_serves, sigv4_client

CHUNK = encode_event("chunk", {"bytes": "SGVsbG8g"})  # "Hello "
LAST = encode_event("chunk", {"bytes": "d29ybGQ="})  # "world"
#: Where the last frame is cut: inside the prelude, in the headers, in the payload, before the CRC.
CUTS = [3, 11, 40, len(LAST) - 20, len(LAST) - 1]


def chat(gateway, model: str, **extra) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers=AUTH,
        timeout=10,
        json={"model": model, "messages": [{"role": "user", "content": "hi"}], **extra},
    )


def stream_chat(gateway, model: str) -> tuple[int, list[bytes]]:
    """Status and the SSE ``data:`` payloads of a streamed chat call."""
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        headers=AUTH,
        timeout=10,
        json={"model": model, "stream": True, "messages": [{"role": "user", "content": "hi"}]},
    ) as r:
        text = b"".join(r.iter_bytes())
        status = r.status_code
    frames = [block[len(b"data: ") :] for block in text.split(b"\n\n") if block]
    return status, frames


# -- Bedrock agents (InvokeAgent event stream) -------------------------------------------------


@pytest.mark.parametrize("cut", CUTS)
def test_agent_answer_cut_mid_frame_is_a_502(gateway, bedrock_simulator, cut):
    bedrock_simulator.reply(EventStreamReply([CHUNK, LAST[:cut]]), operation="InvokeAgent", times=1)
    error = assert_openai_error(chat(gateway, "agent"), 502, code="malformed_upstream_event")
    assert "ended in the middle of a frame" in error["message"]
    assert_still_serves(gateway)


def test_agent_complete_answer_is_still_a_200(gateway, bedrock_simulator):
    bedrock_simulator.reply(EventStreamReply([CHUNK, LAST]), operation="InvokeAgent", times=1)
    r = chat(gateway, "agent")
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "Hello world"


@pytest.mark.parametrize("cut", [3, 40])
def test_agent_stream_cut_mid_frame_ends_with_an_error_event_and_no_done(
    gateway, bedrock_simulator, cut
):
    bedrock_simulator.reply(EventStreamReply([CHUNK, LAST[:cut]]), operation="InvokeAgent", times=1)
    status, frames = stream_chat(gateway, "agent")
    assert status == 200  # the stream had started: the error travels in it
    assert b"[DONE]" not in frames
    first = json.loads(frames[0])
    assert first["choices"][0]["delta"]["content"] == "Hello "
    error = json.loads(frames[-1])["error"]
    assert error["code"] == "malformed_upstream_event" and error["type"] == "api_error"
    assert_still_serves(gateway)


def test_python_api_raises_on_a_cut_answer(bedrock_simulator, simulator_params):
    bedrock_simulator.reply(EventStreamReply([CHUNK, LAST[:30]]), operation="InvokeAgent", times=1)
    config = outcrop.parse_config({"model_list": []})
    params = simulator_params("bedrock/agent/L1RT58GYRW/MFPSBCXYTW")
    model = params.pop("model")

    async def call() -> None:
        await outcrop.acompletion(
            model, [{"role": "user", "content": "hi"}], config=config, **params
        )

    with pytest.raises(OutcropError) as caught:
        asyncio.run(call())
    assert caught.value.status == 502


# -- AgentCore runtimes (SSE and NDJSON written by the agent container) --------------------------

_SSE = {"content-type": "text/event-stream"}
_NDJSON = {"content-type": "application/x-ndjson"}


@pytest.mark.parametrize(
    "tail", [b'data: {"text": "wor', b'data: {"text": "world"}\n', b"data: plain words"]
)
def test_runtime_sse_cut_mid_event_is_a_502(gateway, bedrock_simulator, tail):
    bedrock_simulator.reply(
        RawReply(200, _SSE, [b'data: {"text": "Hello "}\n\n', tail]),
        operation="InvokeAgentRuntime",
        times=1,
    )
    error = assert_openai_error(chat(gateway, "runtime"), 502, code="truncated_upstream_stream")
    assert "cut short" in error["message"]
    assert_still_serves(gateway)


def test_runtime_sse_stream_cut_mid_event_ends_with_an_error_event(gateway, bedrock_simulator):
    bedrock_simulator.reply(
        RawReply(200, _SSE, [b'data: {"text": "Hello "}\n\n', b'data: {"te']),
        operation="InvokeAgentRuntime",
        times=1,
    )
    status, frames = stream_chat(gateway, "runtime")
    assert status == 200 and b"[DONE]" not in frames
    assert json.loads(frames[0])["choices"][0]["delta"]["content"] == "Hello "
    assert json.loads(frames[-1])["error"]["code"] == "truncated_upstream_stream"
    assert_still_serves(gateway)


def test_runtime_ndjson_cut_mid_line_is_a_502(gateway, bedrock_simulator):
    bedrock_simulator.reply(
        RawReply(200, _NDJSON, [b'{"text": "Hello "}\n', b'{"text": "wo']),
        operation="InvokeAgentRuntime",
        times=1,
    )
    assert_openai_error(chat(gateway, "runtime"), 502, code="truncated_upstream_stream")
    assert_still_serves(gateway)


@pytest.mark.parametrize("tail", [b'{"text": "world"}', b'{"text": "world"}\n', b'"world"'])
def test_runtime_ndjson_last_line_may_lack_its_newline(gateway, bedrock_simulator, tail):
    bedrock_simulator.reply(
        RawReply(200, _NDJSON, [b'{"text": "Hello "}\n', tail]),
        operation="InvokeAgentRuntime",
        times=1,
    )
    r = chat(gateway, "runtime")
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "Hello world"


# -- the pass-through relay -----------------------------------------------------------------------

_STREAM_FAILURES = (EventStreamError, BotoCoreError, urllib3.exceptions.HTTPError)
CONVERSE_MESSAGES = [{"role": "user", "content": [{"text": "hi"}]}]


@pytest.mark.parametrize("cut", [3, 40])
def test_passthrough_stream_cut_mid_frame_makes_the_sdk_raise(gateway, bedrock_simulator, cut):
    start = encode_event("messageStart", {"role": "assistant"})
    delta = encode_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}})
    bedrock_simulator.reply(
        EventStreamReply([start, delta, delta[:cut]]), operation="ConverseStream", times=1
    )
    client = sigv4_client("bedrock-runtime", gateway.url)
    response = client.converse_stream(modelId="native", messages=CONVERSE_MESSAGES)
    seen = []
    with pytest.raises(_STREAM_FAILURES):
        for item in response["stream"]:
            seen.append(next(iter(item)))
    assert seen == ["messageStart", "contentBlockDelta"]  # the whole frames, then a failure
    assert_still_serves(gateway)


def test_passthrough_agent_stream_cut_mid_frame_makes_the_sdk_raise(gateway, bedrock_simulator):
    bedrock_simulator.reply(EventStreamReply([CHUNK, LAST[:40]]), operation="InvokeAgent", times=1)
    client = sigv4_client("bedrock-agent-runtime", gateway.url)
    response = client.invoke_agent(
        agentId="L1RT58GYRW", agentAliasId="MFPSBCXYTW", sessionId="s-1", inputText="hi"
    )
    with pytest.raises(_STREAM_FAILURES):
        for _ in response["completion"]:
            pass
    assert_still_serves(gateway)


def test_passthrough_raw_client_sees_an_aborted_body(gateway, bedrock_simulator):
    bedrock_simulator.reply(EventStreamReply([CHUNK, LAST[:40]]), operation="InvokeAgent", times=1)
    with pytest.raises(httpx.RemoteProtocolError):  # no terminating chunk: not a complete body
        httpx.post(
            f"{gateway.url}/bedrock/agents/L1RT58GYRW/agentAliases/MFPSBCXYTW/sessions/s-1/text",
            headers=AUTH,
            json={"inputText": "hi"},
            timeout=10,
        )
    assert_still_serves(gateway)


def test_passthrough_complete_stream_is_relayed_whole(gateway, bedrock_simulator):
    bedrock_simulator.reply(EventStreamReply([CHUNK, LAST]), operation="InvokeAgent", times=1)
    client = sigv4_client("bedrock-agent-runtime", gateway.url)
    response = client.invoke_agent(
        agentId="L1RT58GYRW", agentAliasId="MFPSBCXYTW", sessionId="s-1", inputText="hi"
    )
    text = b"".join(e["chunk"]["bytes"] for e in response["completion"] if "chunk" in e)
    assert text == b"Hello world"
