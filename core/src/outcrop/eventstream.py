"""AWS event-stream framing (``application/vnd.amazon.eventstream``).

Decoding uses botocore's ``EventStreamBuffer``; botocore has no encoder, so ``encode_message``
is a small stdlib one (used by the simulator and the benchmark's canned bodies), verified by
round trip through botocore's decoder and real boto3 clients in the tests.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from botocore.eventstream import EventStreamBuffer, ParserError


@dataclass(slots=True)
class EventStreamMessage:
    """One decoded frame: its headers (``:message-type``, ``:event-type``...) and raw payload."""

    headers: dict[str, Any]
    payload: bytes

    @property
    def message_type(self) -> str:
        return self.headers.get(":message-type", "event")

    @property
    def event_type(self) -> str | None:
        return self.headers.get(":event-type")

    @property
    def exception_type(self) -> str | None:
        return self.headers.get(":exception-type") or self.headers.get(":error-code")

    def json(self) -> Any:
        return msgspec.json.decode(self.payload) if self.payload else {}


class EventStreamDecoder:
    """Incremental decoder: ``feed(bytes)`` yields every message completed by those bytes."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = EventStreamBuffer()

    def feed(self, data: bytes) -> Iterator[EventStreamMessage]:
        self._buffer.add_data(data)
        try:
            for message in self._buffer:
                yield EventStreamMessage(dict(message.headers), message.payload)
        except ParserError as exc:
            from .errors import OutcropError

            raise OutcropError(f"malformed event stream from upstream: {exc}", 502) from exc


def _encode_header(name: str, value: Any) -> bytes:
    raw_name = name.encode()
    out = struct.pack("B", len(raw_name)) + raw_name
    if value is True:
        return out + b"\x00"
    if value is False:
        return out + b"\x01"
    if isinstance(value, int):
        return out + b"\x05" + struct.pack(">q", value)
    if isinstance(value, bytes):
        return out + b"\x06" + struct.pack(">H", len(value)) + value
    if isinstance(value, uuid.UUID):
        return out + b"\x09" + value.bytes
    raw = str(value).encode()
    return out + b"\x07" + struct.pack(">H", len(raw)) + raw


def encode_message(headers: Mapping[str, Any], payload: bytes = b"") -> bytes:
    """Encode one event-stream message (prelude, headers, payload, CRCs)."""
    raw_headers = b"".join(_encode_header(k, v) for k, v in headers.items())
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + raw_headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


def encode_event(event_type: str, payload: Any) -> bytes:
    """An ``event`` frame with a JSON payload (blobs must already be base64 strings)."""
    return encode_message(
        {
            ":event-type": event_type,
            ":content-type": "application/json",
            ":message-type": "event",
        },
        payload if isinstance(payload, bytes) else msgspec.json.encode(payload),
    )


def encode_exception(exception_type: str, message: str, **members: Any) -> bytes:
    """An ``exception`` frame (``:exception-type`` is the lower-camel member name)."""
    return encode_message(
        {
            ":exception-type": exception_type,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        msgspec.json.encode({"message": message, **members}),
    )


def encode_error(code: str, message: str) -> bytes:
    """An ``error`` frame (``:error-code``/``:error-message``, empty payload)."""
    return encode_message(
        {":error-code": code, ":error-message": message, ":message-type": "error"}
    )
