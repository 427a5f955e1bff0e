"""The event-stream encoder, checked with botocore's decoder and with real boto3 clients."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.eventstream import EventStreamBuffer
from botocore.exceptions import EventStreamError

from outcrop.errors import OutcropError
from outcrop.eventstream import (
    EventStreamDecoder,
    encode_error,
    encode_event,
    encode_exception,
    encode_message,
)
from outcrop.testing import (
    TEST_ACCESS_KEY,
    TEST_SECRET_KEY,
    EventStreamReply,
    running_simulator,
)

# bedrock-wire.md §5: a `chunk` carrying {"bytes": "SGVsbG8="}, 112 bytes.
DOC_FRAME = bytes.fromhex(
    "000000700000004b7dfea7be0b3a6576656e742d747970650700056368756e6b0d3a636f6e74656e742d74797065"
    "0700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d747970650700056576656e747b22627974"
    "6573223a2022534756736247383d227d536208b2"
)


def decode_all(data: bytes) -> list:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return list(buffer)


def test_matches_documented_bytes():
    frame = encode_message(
        {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"},
        b'{"bytes": "SGVsbG8="}',
    )
    assert frame == DOC_FRAME


def test_round_trip_through_botocore():
    frames = [
        encode_event("chunk", {"bytes": "SGVsbG8g"}),
        encode_event("trace", {"agentId": "A", "trace": {"orchestrationTrace": {}}}),
        encode_exception("throttlingException", "slow down", reason="busy"),
        encode_error("InternalFailure", "boom"),
    ]
    messages = decode_all(b"".join(frames))
    assert [m.headers.get(":message-type") for m in messages] == ["event", "event", "exception", "error"]
    assert messages[0].headers[":event-type"] == "chunk"
    assert json.loads(messages[0].payload) == {"bytes": "SGVsbG8g"}
    assert messages[2].headers[":exception-type"] == "throttlingException"
    assert json.loads(messages[2].payload) == {"message": "slow down", "reason": "busy"}
    assert messages[3].headers[":error-code"] == "InternalFailure"
    assert messages[3].headers[":error-message"] == "boom"
    assert messages[3].payload == b""
    for message, frame in zip(messages, frames, strict=True):
        assert message.prelude.total_length == len(frame)


def test_header_types_round_trip():
    value_uuid = uuid.uuid4()
    headers = {"t": True, "f": False, "n": -42, "raw": b"\x00\x01", "id": value_uuid, "s": "ünï"}
    (message,) = decode_all(encode_message(headers, b"payload"))
    assert message.headers == {"t": True, "f": False, "n": -42, "raw": b"\x00\x01",
                               "id": value_uuid.bytes, "s": "ünï"}
    assert message.payload == b"payload"


def test_outcrop_decoder_byte_by_byte():
    data = encode_event("chunk", {"bytes": "AA=="}) + encode_exception("validationException", "no")
    decoder = EventStreamDecoder()
    messages = [m for i in range(len(data)) for m in decoder.feed(data[i : i + 1])]
    assert [(m.message_type, m.event_type, m.exception_type) for m in messages] == [
        ("event", "chunk", None),
        ("exception", None, "validationException"),
    ]
    assert messages[0].json() == {"bytes": "AA=="}
    with pytest.raises(OutcropError):
        list(EventStreamDecoder().feed(b"\x00\x00\x00\x20" + b"\x00" * 28))


@pytest.fixture(scope="module")
def agent_client():
    with running_simulator() as sim:
        client = boto3.client(
            "bedrock-agent-runtime", endpoint_url=sim.url, region_name="us-west-2",
            aws_access_key_id=TEST_ACCESS_KEY, aws_secret_access_key=TEST_SECRET_KEY,
            config=Config(retries={"total_max_attempts": 1}),
        )
        yield sim.app, client


def invoke(client, **extra):
    response = client.invoke_agent(agentId="AGENT12345", agentAliasId="TSTALIASID",
                                   sessionId="s-1", inputText="hi", **extra)
    return response["completion"]


def test_hand_built_frames_parse_in_boto3(agent_client):
    sim, client = agent_client
    trace = {"agentId": "A", "agentAliasId": "B", "sessionId": "s1", "trace": {"orchestrationTrace": {
        "modelInvocationOutput": {"traceId": "t1", "metadata": {"usage": {"inputTokens": 12, "outputTokens": 34}}},
    }}}
    sim.reply(EventStreamReply([
        encode_event("chunk", {"bytes": "SGVsbG8g"}),
        encode_event("trace", trace),
        encode_event("chunk", {"bytes": "d29ybGQ=", "attribution": {"citations": []}}),
    ]), times=1)
    events = list(invoke(client))
    assert events[0] == {"chunk": {"bytes": b"Hello "}}
    usage = events[1]["trace"]["trace"]["orchestrationTrace"]["modelInvocationOutput"]["metadata"]["usage"]
    assert usage == {"inputTokens": 12, "outputTokens": 34}
    assert events[2] == {"chunk": {"bytes": b"world", "attribution": {"citations": []}}}


@pytest.mark.parametrize("frame,code", [
    (encode_exception("throttlingException", "slow down"), "throttlingException"),
    (encode_error("InternalFailure", "boom"), "InternalFailure"),
])
def test_exception_and_error_frames_raise(agent_client, frame, code):
    sim, client = agent_client
    sim.reply(EventStreamReply([encode_event("chunk", {"bytes": "SGk="}), frame]), times=1)
    stream = iter(invoke(client))
    assert next(stream) == {"chunk": {"bytes": b"Hi"}}
    with pytest.raises(EventStreamError) as err:
        next(stream)
    assert err.value.response["Error"]["Code"] == code
