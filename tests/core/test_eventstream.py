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

# An InvokeAgent `chunk` frame carrying {"bytes": "SGVsbG8="}, 112 bytes.
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
    assert [m.headers.get(":message-type") for m in messages] == [
        "event",
        "event",
        "exception",
        "error",
    ]
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
    assert message.headers == {
        "t": True,
        "f": False,
        "n": -42,
        "raw": b"\x00\x01",
        "id": value_uuid.bytes,
        "s": "ünï",
    }
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
            "bedrock-agent-runtime",
            endpoint_url=sim.url,
            region_name="us-west-2",
            aws_access_key_id=TEST_ACCESS_KEY,
            aws_secret_access_key=TEST_SECRET_KEY,
            config=Config(retries={"total_max_attempts": 1}),
        )
        yield sim.app, client


def invoke(client, **extra):
    response = client.invoke_agent(
        agentId="AGENT12345", agentAliasId="TSTALIASID", sessionId="s-1", inputText="hi", **extra
    )
    return response["completion"]


def test_hand_built_frames_parse_in_boto3(agent_client):
    sim, client = agent_client
    trace = {
        "agentId": "A",
        "agentAliasId": "B",
        "sessionId": "s1",
        "trace": {
            "orchestrationTrace": {
                "modelInvocationOutput": {
                    "traceId": "t1",
                    "metadata": {"usage": {"inputTokens": 12, "outputTokens": 34}},
                },
            }
        },
    }
    sim.reply(
        EventStreamReply(
            [
                encode_event("chunk", {"bytes": "SGVsbG8g"}),
                encode_event("trace", trace),
                encode_event("chunk", {"bytes": "d29ybGQ=", "attribution": {"citations": []}}),
            ]
        ),
        times=1,
    )
    events = list(invoke(client))
    assert events[0] == {"chunk": {"bytes": b"Hello "}}
    usage = events[1]["trace"]["trace"]["orchestrationTrace"]["modelInvocationOutput"]["metadata"][
        "usage"
    ]
    assert usage == {"inputTokens": 12, "outputTokens": 34}
    assert events[2] == {"chunk": {"bytes": b"world", "attribution": {"citations": []}}}


@pytest.mark.parametrize(
    "frame,code",
    [
        (encode_exception("throttlingException", "slow down"), "throttlingException"),
        (encode_error("InternalFailure", "boom"), "InternalFailure"),
    ],
)
def test_exception_and_error_frames_raise(agent_client, frame, code):
    sim, client = agent_client
    sim.reply(EventStreamReply([encode_event("chunk", {"bytes": "SGk="}), frame]), times=1)
    stream = iter(invoke(client))
    assert next(stream) == {"chunk": {"bytes": b"Hi"}}
    with pytest.raises(EventStreamError) as err:
        next(stream)
    assert err.value.response["Error"]["Code"] == code


# -- the stdlib decoder against botocore's EventStreamBuffer ---------------------------------


def _botocore_decode(chunks):
    from botocore.eventstream import EventStreamBuffer

    buf = EventStreamBuffer()
    out = []
    for chunk in chunks:
        buf.add_data(chunk)
        out.extend((dict(m.headers), m.payload) for m in buf)
    return out


def _ours_decode(chunks):
    from outcrop.eventstream import EventStreamDecoder

    dec = EventStreamDecoder()
    return [(m.headers, m.payload) for chunk in chunks for m in dec.feed(chunk)]


def _every_header_type_frames():
    import struct as _struct
    import uuid as _uuid

    from outcrop.eventstream import encode_event, encode_exception, encode_message

    def raw_header(name, kind, value):
        return bytes([len(name)]) + name.encode() + bytes([kind]) + value

    extra = b"".join(
        [
            raw_header("b", 2, _struct.pack(">b", -5)),
            raw_header("s", 3, _struct.pack(">h", -300)),
            raw_header("i", 4, _struct.pack(">i", 70000)),
            raw_header("l", 5, _struct.pack(">q", -(2**40))),
            raw_header("ts", 8, _struct.pack(">q", 1_795_595_646_000)),
            raw_header("u", 9, _uuid.UUID(int=12345).bytes),
            raw_header("t", 0, b""),
            raw_header("f", 1, b""),
            raw_header("ba", 6, _struct.pack(">H", 3) + b"\x00\x01\x02"),
            raw_header("str", 7, _struct.pack(">H", 5) + "héll".encode()),
        ]
    )
    total = 12 + len(extra) + 4 + 4
    import zlib as _zlib

    prelude = _struct.pack(">II", total, len(extra))
    prelude += _struct.pack(">I", _zlib.crc32(prelude))
    typed = prelude + extra + b"data"
    typed += _struct.pack(">I", _zlib.crc32(typed))
    return [
        encode_event("chunk", {"bytes": "SGVsbG8="}),
        typed,
        encode_message({":message-type": "error", ":error-code": "E", ":error-message": "m"}),
        encode_exception("throttlingException", "slow down"),
        encode_event("contentBlockDelta", {"delta": {"text": "x" * 70000}}),
        encode_message({}, b""),
    ]


@pytest.mark.parametrize("split", [1, 7, 13, 64, 1000, 10**9])
def test_decoder_matches_botocore_for_every_split(split):
    stream = b"".join(_every_header_type_frames())
    chunks = [stream[i : i + split] for i in range(0, len(stream), split)]
    ours = _ours_decode(chunks)
    assert ours == _botocore_decode(chunks)
    assert len(ours) == 6
    assert (
        ours[1][0]["u"] == __import__("uuid").UUID(int=12345).bytes and ours[1][0]["str"] == "héll"
    )


@pytest.mark.parametrize("where", ["prelude", "payload", "message_crc"])
def test_decoder_rejects_corruption_like_botocore(where):
    from botocore.eventstream import ChecksumMismatch

    from outcrop.errors import OutcropError

    frame = bytearray(_every_header_type_frames()[0])
    frame[{"prelude": 2, "payload": len(frame) - 8, "message_crc": len(frame) - 1}[where]] ^= 0xFF
    with pytest.raises(ChecksumMismatch):
        _botocore_decode([bytes(frame)])
    with pytest.raises(OutcropError) as info:
        _ours_decode([bytes(frame)])
    assert info.value.status == 502 and "malformed event stream" in info.value.message


def test_header_cache_is_bounded_and_each_message_owns_its_headers():
    from outcrop import eventstream

    eventstream._header_cache.clear()
    frames = b"".join(
        encode_event(f"event{i:05d}", {"n": i}) for i in range(eventstream._HEADER_CACHE_SIZE * 3)
    )
    messages = EventStreamDecoder().feed(frames)
    assert [m.event_type for m in messages] == [
        f"event{i:05d}" for i in range(eventstream._HEADER_CACHE_SIZE * 3)
    ]
    assert 0 < len(eventstream._header_cache) <= eventstream._HEADER_CACHE_SIZE
    # a long header block is parsed, never kept
    eventstream._header_cache.clear()
    long_name = "x" * eventstream._HEADER_CACHE_BLOCK
    (message,) = EventStreamDecoder().feed(encode_message({":event-type": long_name}, b"{}"))
    assert message.event_type == long_name and not eventstream._header_cache
    # the same block twice: two dicts, so one message's change never reaches another
    first, second = EventStreamDecoder().feed(encode_event("chunk", {}) * 2)
    first.headers[":event-type"] = "changed"
    assert second.headers[":event-type"] == "chunk"
    (third,) = EventStreamDecoder().feed(encode_event("chunk", {}))
    assert third.headers[":event-type"] == "chunk"
