"""Hostile bytes at the decoders: malformed event-stream frames are a 502 (never a 500), JSON
nested too deep is a 400 (never a RecursionError), and the worker serves on."""

from __future__ import annotations

import struct
import zlib

import httpx
import msgspec
import pytest

import outcrop
from outcrop import JSONTooDeep, OutcropError, decode_json
from outcrop.eventstream import EventStreamDecoder, encode_event
from outcrop.testing import EventStreamReply
from outcrop.wire import MAX_JSON_DEPTH

from .conftest import AUTH, RUNTIME_ARN, assert_openai_error, assert_still_serves


def frame_with_header_block(block: bytes, payload: bytes = b"{}") -> bytes:
    """A frame whose checksums are right but whose header block is ``block`` as given."""
    total = 12 + len(block) + len(payload) + 4
    prelude = struct.pack(">II", total, len(block))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + block + payload
    return message + struct.pack(">I", zlib.crc32(message))


#: Header blocks cut short at every place a header can be cut.
CUT_BLOCKS = {
    "name length only": b"\x0d",
    "name cut": b"\x0d:message",
    "no type byte": b"\x0d:message-type",
    "string length cut": b"\x0d:message-type\x07\x00",
    "string value cut": b"\x0d:message-type\x07\x00\x05ev",
    "int value cut": b"\x04size\x04\x00\x00",
    "long value cut": b"\x04size\x05\x00\x00\x00\x00",
    "uuid cut": b"\x02id\x09" + b"\x00" * 7,
    "unknown type": b"\x02id\x0c",
    "second header cut": b"\x01a\x00\x05",
}


@pytest.mark.parametrize("block", CUT_BLOCKS.values(), ids=CUT_BLOCKS.keys())
def test_header_block_cut_short_is_a_malformed_stream(block):
    with pytest.raises(OutcropError) as caught:
        EventStreamDecoder().feed(frame_with_header_block(block))
    assert caught.value.status == 502 and caught.value.code == "malformed_upstream_event"


def test_malformed_header_block_after_a_good_frame_is_a_502():
    """Found by the fuzz test: the error's traceback kept a view of the buffer alive, so
    dropping the decoded frame raised BufferError (a 500) instead of the 502."""
    good = encode_event("chunk", {"bytes": "SGk="})
    bad = frame_with_header_block(b"\x00\x00\x00\x13\x00\x00\x00\x03")
    with pytest.raises(OutcropError) as caught:
        EventStreamDecoder().feed(good + bad)
    assert caught.value.status == 502


def test_every_cut_of_a_frame_is_reported_at_the_end():
    frame = encode_event("chunk", {"bytes": "SGVsbG8="})
    for cut in range(1, len(frame)):
        decoder = EventStreamDecoder()
        assert decoder.feed(frame[:cut]) == []
        assert not decoder.at_boundary
        with pytest.raises(OutcropError) as caught:
            decoder.finish()
        assert caught.value.status == 502
    decoder = EventStreamDecoder()
    assert len(decoder.feed(frame)) == 1 and decoder.at_boundary
    decoder.finish()  # a whole frame: nothing to report


@pytest.mark.parametrize(
    "block", [CUT_BLOCKS["no type byte"], CUT_BLOCKS["name cut"]], ids=["no type byte", "name cut"]
)
def test_agent_frame_with_a_cut_header_block_is_a_502(gateway, bedrock_simulator, block):
    bedrock_simulator.reply(
        EventStreamReply([frame_with_header_block(block)]), operation="InvokeAgent", times=1
    )
    r = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers=AUTH,
        timeout=10,
        json={"model": "agent", "messages": [{"role": "user", "content": "hi"}]},
    )
    error = assert_openai_error(r, 502, code="malformed_upstream_event")
    assert "header block cut short" in error["message"]
    assert_still_serves(gateway)


# -- JSON nested too deep (client input) ----------------------------------------------------------

DEPTHS = [MAX_JSON_DEPTH, 999, 1000, 5000, 200_000]


def nested(depth: int, open_: str = "[", close: str = "]") -> str:
    return open_ * depth + close * depth


def post_raw(gateway, body: str) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/chat/completions",
        timeout=10,
        content=body.encode(),
        headers={**AUTH, "content-type": "application/json"},
    )


@pytest.mark.parametrize("depth", DEPTHS)
def test_chat_body_nested_too_deep_is_a_400(gateway, depth):
    body = (
        '{"model": "agent", "messages": [{"role": "user", "content": "hi"}], "x": '
        + nested(depth)
        + "}"
    )
    error = assert_openai_error(post_raw(gateway, body), 400, code="json_too_deep")
    assert str(MAX_JSON_DEPTH) in error["message"]
    assert_still_serves(gateway)


@pytest.mark.parametrize("where", ["content", "tools", "top"])
def test_deep_nesting_anywhere_in_the_body_is_a_400(gateway, where):
    deep = nested(1500, '{"a":', "}").replace('{"a":}', '{"a":1}')
    body = {
        "content": '{"model": "agent", "messages": [{"role": "user", "content": [' + deep + "]}]}",
        "tools": '{"model": "agent", "messages": [], "tools": [' + deep + "]}",
        "top": nested(3000),
    }[where]
    assert_openai_error(post_raw(gateway, body), 400, code="json_too_deep")
    assert_still_serves(gateway)


def test_nesting_within_the_limit_is_served(gateway, bedrock_simulator):
    body = (
        '{"model": "runtime", "messages": [{"role": "user", "content": "hi"}], '
        '"payload": {"deep": ' + nested(MAX_JSON_DEPTH - 3) + "}}"
    )
    r = post_raw(gateway, body)
    assert r.status_code == 200, r.text
    assert bedrock_simulator.last("InvokeAgentRuntime").body.count(b"[") == MAX_JSON_DEPTH - 3


def test_python_api_refuses_deep_and_cyclic_arguments():
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    cyclic: list = []
    cyclic.append(cyclic)
    for value in (deep, cyclic):
        with pytest.raises(OutcropError) as caught:
            outcrop.completion(
                "bedrock/agentcore/" + RUNTIME_ARN,
                [{"role": "user", "content": "hi"}],
                config=outcrop.Config(),
                payload=value,
            )
        assert caught.value.status == 400 and caught.value.code == "json_too_deep"
    with pytest.raises(OutcropError) as caught:
        outcrop.completion(
            "bedrock/agentcore/" + RUNTIME_ARN,
            [{"role": "user", "content": deep}],
            config=outcrop.Config(),
        )
    assert caught.value.status == 400


def test_decode_json_helper():
    assert decode_json('{"a": [1]}') == {"a": [1]}
    for text in (nested(MAX_JSON_DEPTH + 1), nested(100_000)):
        with pytest.raises(JSONTooDeep):
            decode_json(text)
    with pytest.raises(msgspec.DecodeError):
        decode_json("{not json")


def test_agent_tool_result_nested_too_deep_is_plain_content(gateway, bedrock_simulator):
    """A tool answer the agent plugin would read as a JSON envelope stays plain text."""
    from outcrop.testing import AgentReply

    control = {
        "invocationId": "inv-1",
        "invocationInputs": [
            {
                "functionInvocationInput": {
                    "actionGroup": "weather",
                    "function": "get_weather",
                    "parameters": [],
                }
            }
        ],
    }
    bedrock_simulator.reply(AgentReply(return_control=control), operation="InvokeAgent", times=1)
    first = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers=AUTH,
        timeout=10,
        json={"model": "agent", "messages": [{"role": "user", "content": "weather?"}]},
    ).json()
    call = first["choices"][0]["message"]["tool_calls"][0]
    deep = '{"body": ' + nested(2000) + ', "responseState": "REPROMPT"}'
    r = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers=AUTH,
        timeout=10,
        json={
            "model": "agent",
            "messages": [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "tool_calls": [call]},
                {"role": "tool", "tool_call_id": call["id"], "content": deep},
            ],
        },
    )
    assert r.status_code == 200, r.text
    sent = bedrock_simulator.last("InvokeAgent").json()
    result = sent["sessionState"]["returnControlInvocationResults"][0]
    assert result["functionResult"]["responseBody"]["TEXT"]["body"] == deep
    assert_still_serves(gateway)
