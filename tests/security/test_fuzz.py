"""Hypothesis fuzzing of the request decoders: the chat body, the pass-through's path, query and
headers, the SigV4 ``Authorization`` parser and the event-stream decoder. Whatever the input,
the answer is a 2xx/4xx in the caller's dialect (or the decoder's own error type), never a 500,
an unexpected exception or a dead worker.

Deterministic: ``derandomize=True`` derives the examples from each test, so CI cannot flake, and
``max_examples`` keeps the whole file to seconds (about a minute on a busy 2-core machine).
"""

from __future__ import annotations

import datetime as dt
import json
import struct
import zlib
from typing import Any

import httpx
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outcrop import OutcropError, SigV4Error, check_sigv4_headers, verify_sigv4
from outcrop.eventstream import EventStreamDecoder, encode_event, encode_exception
from outcrop.operations import match_operation as match
from outcrop.wire import decode_request
from outcrop_bedrock_passthrough.request import (
    canonical_query,
    check_segments,
    forward_request_headers,
    relative,
)

from .conftest import AUTH, SDK_KEY_ID, SDK_SECRET, assert_still_serves

FUZZ = settings(
    derandomize=True,
    deadline=None,
    database=None,
    max_examples=100,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
HTTP_FUZZ = settings(FUZZ, max_examples=40)

# -- strategies -------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def deep_json(draw: st.DrawFn) -> bytes:
    depth = draw(st.sampled_from([100, 127, 128, 129, 500, 999, 1000, 5000]))
    opener = draw(st.sampled_from(["[", '{"a":']))
    closer = "]" if opener == "[" else "}"
    inner = "1" if draw(st.booleans()) else ""
    return (opener * depth + inner + closer * depth).encode()


content = st.one_of(
    st.text(max_size=30),
    st.none(),
    st.integers(),
    json_values,
    st.lists(
        st.fixed_dictionaries(
            {"type": st.sampled_from(["text", "image_url", "x"])}, optional={"text": json_scalars}
        ),
        max_size=3,
    ),
)
message = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["user", "assistant", "system", "tool", "developer", ""])
        | st.text(max_size=8)
    },
    optional={
        "content": content,
        "tool_call_id": st.text(max_size=12),
        "tool_calls": json_values,
        "name": json_scalars,
    },
)
provider_keys = st.sampled_from(
    [
        "session_id",
        "sessionId",
        "payload",
        "payload_format",
        "runtimeSessionId",
        "qualifier",
        "enableTrace",
        "sessionState",
        "memoryId",
        "temperature",
        "tools",
        "tool_choice",
        "stream",
        "stream_options",
        "drop_params",
        "max_tokens",
        "n",
        "traceId",
        "include_reasoning",
        "x",
    ]
)


@st.composite
def chat_bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["shaped", "shaped", "shaped", "json", "bytes", "deep"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "json":
        return msgspec.json.encode(draw(json_values))
    if kind == "deep":
        return b'{"model": "agent", "messages": [], "x": ' + draw(deep_json()) + b"}"
    body: dict[str, Any] = {
        "model": draw(
            st.sampled_from(["agent", "runtime", "native", "nope", ""]) | st.text(max_size=30)
        ),
        "messages": draw(st.lists(message, max_size=4)),
    }
    body.update(draw(st.dictionaries(provider_keys, json_values, max_size=3)))
    if draw(st.booleans()):
        body.pop(draw(st.sampled_from(["model", "messages"])))
    return msgspec.json.encode(body)


#: What an HTTP client can put in a URL (controls and spaces it refuses to send itself).
url_chars = st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/?#")
segment = st.text(url_chars, max_size=20) | st.sampled_from(
    [
        "..",
        ".",
        "%2E%2E",
        "%2F",
        "%00",
        "model",
        "converse",
        "converse-stream",
        "invoke",
        "agents",
        "runtimes",
        "invocations",
        "arn%3Aaws%3Abedrock-agentcore%3Aus-west-2%3A123456789012%3Aruntime%2Fa-b",
        "native",
        "%ZZ",
        "%",
        "%C3%A9",
        "%FF",
    ]
)
header_names = st.sampled_from(
    [
        "content-type",
        "accept",
        "x-amzn-bedrock-trace",
        "x-amzn-bedrock-guardrailidentifier",
        "connection",
        "traceparent",
        "x-amz-date",
        "x-amz-content-sha256",
        "x-amz-security-token",
        "x-amzn-bedrock-agentcore-runtime-session-id",
        "host",
        "content-encoding",
        "x-forwarded-for",
    ]
) | st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True)
header_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40).map(
    str.strip
)


# -- the chat body ----------------------------------------------------------------------------


@FUZZ
@given(body=chat_bodies())
def test_decode_request_raises_only_decode_errors(body):
    try:
        request, extra = decode_request(body)
    except msgspec.DecodeError:  # ValidationError and JSONTooDeep included: the route's 400
        return
    assert isinstance(extra, dict) and isinstance(request.model, str)


@HTTP_FUZZ
@given(body=chat_bodies())
def test_chat_route_never_answers_500(gateway, bedrock_simulator, body):
    r = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        content=body,
        timeout=10,
        headers={**AUTH, "content-type": "application/json"},
    )
    assert r.status_code < 500, (body, r.status_code, r.text)
    if r.status_code >= 400:
        error = r.json()["error"]
        assert isinstance(error["message"], str) and isinstance(error["type"], str)
    elif r.headers["content-type"].startswith("text/event-stream"):
        for block in r.content.split(b"\n\n"):
            if block and block != b"data: [DONE]":
                assert "error" not in json.loads(block[len(b"data: ") :]), block


def test_chat_route_still_serves_after_the_fuzz(gateway):
    assert_still_serves(gateway)


# -- the pass-through's path, query and headers --------------------------------------------------


@FUZZ
@given(
    path=st.lists(segment, max_size=6).map("/".join),
    query=st.text(max_size=30),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
)
def test_passthrough_path_helpers_raise_only_outcrop_errors(path, query, method):
    raw = "/bedrock/" + path
    rel = relative(raw, "")
    try:
        check_segments(rel)
    except OutcropError as exc:
        assert exc.status == 400
    assert isinstance(canonical_query(query), str)
    found = match(method, rel)
    assert found is None or found.operation.name


@FUZZ
@given(
    headers=st.lists(st.tuples(header_names.map(str.encode), st.binary(max_size=30)), max_size=8)
)
def test_forwarded_headers_raise_only_value_errors(headers):
    try:
        out = forward_request_headers(headers)
    except ValueError:  # not UTF-8: the handler's 400
        return
    named = {
        t.strip().lower()
        for k, v in headers
        if k == b"connection"
        for t in v.decode("latin-1").split(",")
    }
    assert not named & set(out)
    assert "authorization" not in out and "x-amz-security-token" not in out


@HTTP_FUZZ
@given(
    path=st.lists(segment, max_size=5).map("/".join),
    query=st.text(
        st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="#"), max_size=20
    ),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    headers=st.lists(st.tuples(header_names, header_values), max_size=5),
    body=st.binary(max_size=64),
)
def test_passthrough_never_answers_500(
    gateway, bedrock_simulator, path, query, method, headers, body
):
    url = httpx.URL(f"{gateway.url}/bedrock/").copy_with(
        raw_path=("/bedrock/" + path + ("?" + query if query else "")).encode("utf-8")
    )
    sent = [(k, v) for k, v in headers if k not in ("host", "content-length", "authorization")]
    r = httpx.request(method, url, headers=[*AUTH.items(), *sent], content=body, timeout=10)
    assert r.status_code != 500, (method, path, query, headers, r.text)
    on_passthrough = r.request.url.raw_path.startswith(b"/bedrock/")  # not normalized away
    if r.status_code >= 400 and on_passthrough and not bedrock_simulator.requests:
        assert r.headers.get("x-amzn-errortype"), r.text
        assert isinstance(r.json()["message"], str)
    bedrock_simulator.requests.clear()


def test_passthrough_still_serves_after_the_fuzz(gateway):
    assert_still_serves(gateway)


# -- the SigV4 Authorization parser --------------------------------------------------------------

_NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
scope_parts = st.sampled_from(
    [SDK_KEY_ID, "20260601", "us-west-2", "bedrock", "aws4_request", "", "/", "=", ",", " "]
) | st.text(max_size=12)


@st.composite
def authorizations(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 4)) == 0:
        return draw(st.text(max_size=120))
    scope = "/".join(draw(st.lists(scope_parts, min_size=0, max_size=7)))
    signed = draw(
        st.sampled_from(["host;x-amz-date", "host", "x-amz-date;host", "", "host;;x"])
        | st.text(max_size=20)
    )
    signature = draw(st.sampled_from(["0" * 64, "", "zz"]) | st.text(max_size=70))
    scheme = draw(
        st.sampled_from(["AWS4-HMAC-SHA256", "aws4-hmac-sha256", "AWS4-ECDSA-P256-SHA256", ""])
    )
    parts = [f"Credential={scope}", f"SignedHeaders={signed}", f"Signature={signature}"]
    parts = draw(st.permutations(parts))[: draw(st.integers(0, 3))]
    extra = draw(st.lists(st.text(max_size=10), max_size=2))
    return f"{scheme} " + draw(st.sampled_from([",", ", ", " ,"])).join(parts + extra)


dates = st.sampled_from(
    [
        "20260601T120000Z",
        "20260601T115000Z",
        "2026-06-01T12:00:00Z",
        "",
        "99999999T999999Z",
        "20260601",
    ]
) | st.text(max_size=20)


@FUZZ
@given(
    authorization=authorizations(),
    amz_date=st.none() | dates,
    http_date=st.none() | st.sampled_from(["Mon, 01 Jun 2026 12:00:00 GMT", "garbage", ""]),
    path=st.text(max_size=30),
    query=st.text(max_size=30),
    body=st.binary(max_size=20),
    content_sha=st.none() | st.sampled_from(["UNSIGNED-PAYLOAD", "abc", "0" * 64]),
    repeat=st.booleans(),
)
def test_sigv4_parser_raises_only_sigv4_errors(
    authorization, amz_date, http_date, path, query, body, content_sha, repeat
):
    headers: list[tuple[str, str]] = [("authorization", authorization), ("host", "gw.test")]
    if repeat:
        headers.append(("authorization", authorization))
    if amz_date is not None:
        headers.append(("x-amz-date", amz_date))
    if http_date is not None:
        headers.append(("date", http_date))
    if content_sha is not None:
        headers.append(("x-amz-content-sha256", content_sha))
    secrets = {SDK_KEY_ID: SDK_SECRET}.get
    for check in (
        lambda: check_sigv4_headers(headers, secrets, expected_service="bedrock", now=_NOW),
        lambda: verify_sigv4(
            "POST", "/" + path, query, headers, body, secrets, expected_service="bedrock", now=_NOW
        ),
        lambda: verify_sigv4(
            "POST",
            "/" + path,
            query,
            headers,
            body,
            secrets,
            now=_NOW,
            engine="botocore",
            allow_unsigned_payload=True,
        ),
    ):
        try:
            check()
        except SigV4Error as exc:
            assert exc.status == 403 and exc.code and exc.message
            assert len(exc.message) < 1000  # echoed values are clipped


# -- the event-stream decoder --------------------------------------------------------------------


def _frame(block: bytes, payload: bytes) -> bytes:
    """A frame with correct checksums around any header block and payload."""
    total = 12 + len(block) + len(payload) + 4
    prelude = struct.pack(">II", total, len(block))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + block + payload
    return message + struct.pack(">I", zlib.crc32(message))


valid_frames = st.sampled_from(
    [
        encode_event("chunk", {"bytes": "SGk="}),
        encode_event("trace", {"trace": {}}),
        encode_exception("throttlingException", "slow down"),
    ]
)


@st.composite
def event_streams(draw: st.DrawFn) -> bytes:
    pieces = draw(
        st.lists(
            st.one_of(
                valid_frames,
                st.builds(
                    _frame, st.binary(max_size=40), st.binary(max_size=20)
                ),  # any header block
                st.binary(max_size=40),  # noise (checksums almost never match)
            ),
            max_size=5,
        )
    )
    data = bytearray(b"".join(pieces))
    for _ in range(draw(st.integers(0, 3))):  # flip a few bits
        if data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut])


@FUZZ
@given(stream=event_streams(), splits=st.lists(st.integers(1, 64), max_size=8))
def test_event_stream_decoder_raises_only_502s(stream, splits):
    decoder = EventStreamDecoder()
    pos = 0
    try:
        for size in [*splits, len(stream)]:
            for message in decoder.feed(stream[pos : pos + size]):
                assert isinstance(message.headers, dict) and isinstance(message.payload, bytes)
                assert isinstance(message.message_type, str)
            pos += size
        decoder.finish()
    except OutcropError as exc:
        assert exc.status == 502 and exc.code == "malformed_upstream_event"


@FUZZ
@given(frames=st.lists(valid_frames, min_size=1, max_size=4), data=st.data())
def test_event_stream_cut_anywhere_is_reported(frames, data):
    stream = b"".join(frames)
    cut = data.draw(st.integers(1, len(stream) - 1))
    decoder = EventStreamDecoder()
    decoded = decoder.feed(stream[:cut])
    boundaries = {sum(len(f) for f in frames[:i]) for i in range(len(frames) + 1)}
    if cut in boundaries:
        decoder.finish()
        assert len(decoded) == sorted(boundaries).index(cut)
    else:
        with pytest.raises(OutcropError):
            decoder.finish()
