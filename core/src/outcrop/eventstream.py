"""AWS event-stream framing (``application/vnd.amazon.eventstream``).

Both directions are small stdlib code: botocore has no encoder (``encode_message`` serves the
simulator and the benchmark's canned bodies), and its decoder was too slow for the hot path. The
tests check both against botocore: encoder output through botocore's decoder and real boto3
clients, and ``EventStreamDecoder`` message for message against ``EventStreamBuffer``.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from .errors import OutcropError


@dataclass(slots=True)
class EventStreamMessage:
    """One decoded frame: its headers (``:message-type``, ``:event-type``...) and raw payload."""

    headers: dict[str, Any]
    payload: bytes

    @property
    def message_type(self) -> str:
        return str(self.headers.get(":message-type", "event"))

    @property
    def event_type(self) -> str | None:
        return self.headers.get(":event-type")

    @property
    def exception_type(self) -> str | None:
        return self.headers.get(":exception-type") or self.headers.get(":error-code")

    def json(self) -> Any:
        return msgspec.json.decode(self.payload) if self.payload else {}


_PRELUDE = struct.Struct(">III")
_U32 = struct.Struct(">I")
_MAX_HEADERS_LENGTH = 128 * 1024  # botocore.eventstream's limits
_MAX_PAYLOAD_LENGTH = 24 * 1024 * 1024
#: type id -> (struct, size) for the fixed-size header values
_FIXED = {
    2: struct.Struct(">b"),
    3: struct.Struct(">h"),
    4: struct.Struct(">i"),
    5: struct.Struct(">q"),
    8: struct.Struct(">q"),
}


class EventStreamDecoder:
    """Incremental decoder: ``feed(bytes)`` returns every message completed by those bytes;
    ``finish()`` at the end of the body reports a stream that stopped mid-frame.

    A stdlib port of botocore's ``EventStreamBuffer`` (same checks: prelude and message CRC32,
    header and payload limits, duplicate headers; same header values), written because
    botocore's took a large share of a worker's CPU on agent streams (docs/performance.md).
    ``tests/core/test_eventstream.py`` proves it decodes like botocore, byte split by byte split.
    botocore silently drops bytes left over at the end; here they are an error (502), so a
    truncated answer is never taken for a complete one.
    """

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[EventStreamMessage]:
        buf = self._buf
        if buf:  # the start of a frame is waiting: parse the joined bytes
            buf += data
            data = bytes(buf)
            buf.clear()
        elif type(data) is not bytes:
            data = bytes(data)
        out: list[EventStreamMessage] = []
        offset, size = 0, len(data)
        view = memoryview(data)  # over immutable bytes: slices copy nothing and pin nothing
        try:
            while size - offset >= 12:
                total, headers_len, prelude_crc = _PRELUDE.unpack_from(data, offset)
                if zlib.crc32(view[offset : offset + 8]) != prelude_crc:
                    raise ValueError("prelude checksum mismatch")
                if headers_len > _MAX_HEADERS_LENGTH:
                    raise ValueError(f"header length {headers_len} over the limit")
                payload_len = total - headers_len - 16
                if payload_len < 0 or payload_len > _MAX_PAYLOAD_LENGTH:
                    raise ValueError(f"invalid payload length {payload_len}")
                if size - offset < total:
                    break
                end = offset + total
                if zlib.crc32(view[offset : end - 4]) != _U32.unpack_from(data, end - 4)[0]:
                    raise ValueError("message checksum mismatch")
                start = offset + 12
                out.append(
                    EventStreamMessage(
                        _headers(data[start : start + headers_len]),
                        data[start + headers_len : end - 4],
                    )
                )
                offset = end
        except (ValueError, struct.error, UnicodeDecodeError) as exc:
            raise _malformed(str(exc)) from exc
        finally:
            view.release()
            if offset < size:
                buf += data[offset:]
        return out

    @property
    def at_boundary(self) -> bool:
        """True when every byte fed so far belongs to a complete frame."""
        return not self._buf

    def finish(self) -> None:
        """The body ended: raise a 502 if it stopped in the middle of a frame."""
        if self._buf:
            raise _malformed(
                f"the stream ended in the middle of a frame ({len(self._buf)} bytes "
                "left over): the answer was cut short"
            )


def _malformed(problem: str) -> OutcropError:
    return OutcropError(
        f"malformed event stream from upstream: {problem}", 502, code="malformed_upstream_event"
    )


#: Header blocks already parsed (a stream repeats a handful: one per event type): block bytes
#: -> headers. Bounded: past ``_HEADER_CACHE_SIZE`` blocks it is cleared; blocks longer than
#: ``_HEADER_CACHE_BLOCK`` are never kept.
_header_cache: dict[bytes, dict[str, Any]] = {}
_HEADER_CACHE_SIZE = 256
_HEADER_CACHE_BLOCK = 256


def _headers(block: bytes) -> dict[str, Any]:
    """The headers of one frame (a fresh dict: a message's own)."""
    known = _header_cache.get(block)
    if known is not None:
        return known.copy()
    headers = _parse_headers(block)
    if len(block) <= _HEADER_CACHE_BLOCK:
        if len(_header_cache) >= _HEADER_CACHE_SIZE:
            _header_cache.clear()
        _header_cache[block] = headers.copy()
    return headers


def _parse_headers(data: bytes | memoryview) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    pos, end = 0, len(data)
    while pos < end:
        name_len = data[pos]
        if pos + 2 + name_len > end:  # the name and the type byte must fit in the block
            raise ValueError("header block cut short")
        name = bytes(data[pos + 1 : pos + 1 + name_len]).decode()
        pos += 1 + name_len
        kind = data[pos]
        pos += 1
        value: Any
        if kind == 0:
            value = True
        elif kind == 1:
            value = False
        elif kind in (6, 7):
            (length,) = struct.unpack_from(">H", data, pos)
            raw = bytes(data[pos + 2 : pos + 2 + length])
            if len(raw) != length:
                raise ValueError("truncated header value")
            value = raw.decode() if kind == 7 else raw
            pos += 2 + length
        elif kind == 9:
            value = bytes(data[pos : pos + 16])
            if len(value) != 16:
                raise ValueError("truncated uuid header")
            pos += 16
        elif kind in _FIXED:
            fmt = _FIXED[kind]
            (value,) = fmt.unpack_from(data, pos)
            pos += fmt.size
        else:
            raise ValueError(f"unknown header type {kind}")
        if name in headers:
            raise ValueError(f"duplicate header {name!r}")
        headers[name] = value
    return headers


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
