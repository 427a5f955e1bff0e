"""Bedrock's InvokeModelWithResponseStream -> Anthropic's server-sent events.

Each ``chunk`` event carries one of Claude's own stream events (base64 JSON): it goes to the
client as ``event: {type}`` / ``data: {json}`` the moment its frame is decoded, bytes unchanged
(only the last one loses Bedrock's ``amazon-bedrock-invocationMetrics``). An exception frame,
or an upstream that breaks off, ends the stream with Anthropic's ``error`` event.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import msgspec

from outcrop import CallLifecycle, OutcropError, UpstreamError, UpstreamResponse, aws_status

from .errors import AWS_OVERRIDES, error_body
from .usage import Tally, decode_event

_METRICS = b"amazon-bedrock-invocationMetrics"


class _Chunk(msgspec.Struct):
    bytes: str = ""


class _ExceptionBody(msgspec.Struct):
    message: str = ""


_decode_chunk = msgspec.json.Decoder(_Chunk).decode
_decode_exception = msgspec.json.Decoder(_ExceptionBody).decode
_loads = msgspec.json.Decoder().decode
_dumps = msgspec.json.Encoder().encode


def stream_exception(exception_type: str, payload: bytes) -> UpstreamError:
    """An exception frame (``throttlingException``...) as the error it stands for."""
    code = exception_type[:1].upper() + exception_type[1:]
    try:
        message = _decode_exception(payload).message if payload else ""
    except msgspec.DecodeError:
        message = payload[:500].decode("utf-8", "replace")
    status = aws_status(code, AWS_OVERRIDES) or 500
    return UpstreamError(f"{code}: {message}" if message else code, status, aws_code=code)


def error_event(err: OutcropError, request_id: str) -> bytes:
    return b"event: error\ndata: " + error_body(err.status, err.message, request_id) + b"\n\n"


async def sse_frames(
    response: UpstreamResponse, tally: Tally, life: CallLifecycle
) -> AsyncIterator[bytes]:
    """One SSE frame per Claude event, as each arrives; an ``error`` event ends a failed stream."""
    try:
        async for message in response.aiter_events():
            if message.message_type != "event":
                code = message.exception_type or "InternalServerException"
                err = stream_exception(code, message.payload)
                life.record(err)
                yield error_event(err, life.request_id)
                return
            if message.event_type != "chunk":
                continue
            inner = base64.b64decode(_decode_chunk(message.payload).bytes)
            event = decode_event(inner)
            if event.type == "message_start" and event.message and event.message.usage:
                tally.add(event.message.usage)
            elif event.usage is not None:
                tally.add(event.usage)
            if _METRICS in inner:
                data = _loads(inner)
                data.pop(_METRICS.decode(), None)
                inner = _dumps(data)
            yield b"event: " + event.type.encode() + b"\ndata: " + inner + b"\n\n"
    except OutcropError as exc:  # the upstream broke off, or sent a malformed frame
        life.record(exc)
        yield error_event(exc, life.request_id)
    except (msgspec.DecodeError, ValueError) as exc:  # a chunk that is not Claude's JSON
        err = OutcropError(f"Bedrock sent a malformed stream event: {exc}", 502)
        life.record(err)
        yield error_event(err, life.request_id)
