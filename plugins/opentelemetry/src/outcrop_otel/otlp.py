"""OTLP trace protobuf, written directly from the call's figures.

The OpenTelemetry SDK's encoder builds one protobuf object per attribute; writing the few
fields a gateway span has straight to the wire format costs a fraction of that, which keeps
tracing within the gateway's per-call budget (docs/performance.md has the figure). The bytes
are standard ``opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest`` (the tests
decode them with ``opentelemetry-proto``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping
from typing import Any

# Span.SpanKind, Status.StatusCode
KIND_SERVER, KIND_CLIENT = 2, 3
STATUS_UNSET, STATUS_ERROR = 0, 2

_fixed64 = struct.Struct("<Q").pack
_double = struct.Struct("<d").pack
_fixed32 = struct.Struct("<I").pack


def varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_TAGS = {n: varint(n << 3 | 2) for n in range(1, 17)}
_SMALL = [bytes((n,)) for n in range(128)]


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (strings, bytes, nested messages)."""
    n = len(payload)
    return _TAGS[number] + (_SMALL[n] if n < 128 else varint(n)) + payload


def _any(value: Any) -> bytes:
    """An ``AnyValue`` message's bytes."""
    if isinstance(value, str):
        return _field(1, value.encode("utf-8", "replace"))
    if isinstance(value, bool):
        return b"\x10" + (b"\x01" if value else b"\x00")
    if isinstance(value, int):
        return b"\x18" + varint(value & 0xFFFFFFFFFFFFFFFF)
    if isinstance(value, float):
        return b"\x21" + _double(value)
    if isinstance(value, tuple | list):  # ArrayValue
        return _field(5, b"".join(_field(1, _any(v)) for v in value))
    return _field(1, str(value).encode("utf-8", "replace"))


#: Encoded ``KeyValue`` fields whose value is a string (model names, deployments, surfaces and
#: routes repeat call after call), and encoded keys; bounded so odd values cannot grow them.
_TEXT: dict[tuple[int, str, str], bytes] = {}
_KEYS: dict[str, bytes] = {}
_MAX_CACHED = 4096


def attributes(number: int, values: Mapping[str, Any]) -> bytes:
    """Repeated ``KeyValue`` fields under field ``number``."""
    out = []
    for key, v in values.items():
        if type(v) is str:
            cached = _TEXT.get((number, key, v))
            if cached is None:
                cached = _field(number, _field(1, key.encode()) + _field(2, _any(v)))
                if len(_TEXT) < _MAX_CACHED and len(v) < 256:
                    _TEXT[(number, key, v)] = cached
            out.append(cached)
            continue
        name = _KEYS.get(key)
        if name is None:
            name = _field(1, key.encode())
            if len(_KEYS) < _MAX_CACHED:
                _KEYS[key] = name
        out.append(_field(number, name + _field(2, _any(v))))
    return b"".join(out)


#: Encoded attribute blocks by what they are built from (``attribute_block``): the part of a
#: call's attributes that repeats call after call (model, deployment, surface, route, status)
#: is encoded once.
_BLOCKS: dict[tuple[Any, ...], bytes] = {}


def attribute_block(
    number: int, key: tuple[Any, ...], build: Callable[..., Mapping[str, Any]], *args: Any
) -> bytes:
    """``attributes(number, build(*args))``, remembered by ``key`` (which must determine
    ``build``'s result); bounded like the other caches."""
    cached = _BLOCKS.get(key)
    if cached is None:
        cached = attributes(number, build(*args))
        if len(_BLOCKS) < _MAX_CACHED:
            _BLOCKS[key] = cached
    return cached


_KINDS = {k: b"\x30" + varint(k) for k in range(6)}
_NAMES: dict[str, bytes] = {}


def span(
    *,
    trace_id: int,
    span_id: int,
    parent_id: int | None,
    name: str,
    kind: int,
    start: int,
    end: int,
    attrs: Mapping[str, Any] | bytes,
    events: Iterable[tuple[str, int, Mapping[str, Any]]] = (),
    status: int = STATUS_UNSET,
    message: str = "",
    flags: int = 1,
    parent_remote: bool = False,
) -> bytes:
    """One ``Span`` message's bytes (times in ns since the epoch). ``attrs`` is a mapping, or
    its fields already encoded (``attributes(9, ...)``, ``attribute_block(9, ...)``)."""
    encoded_name = _NAMES.get(name)
    if encoded_name is None:
        encoded_name = _field(5, name.encode("utf-8", "replace"))
        if len(_NAMES) < _MAX_CACHED:
            _NAMES[name] = encoded_name
    out = [  # ids: fixed-length bytes fields, tag and length written out (0x0a 0x10: 1, 16)
        b"\x0a\x10" + trace_id.to_bytes(16, "big") + b"\x12\x08" + span_id.to_bytes(8, "big"),
    ]
    if parent_id:
        out.append(b"\x22\x08" + parent_id.to_bytes(8, "big"))
    out += [
        encoded_name,
        _KINDS.get(kind) or b"\x30" + varint(kind),
        b"\x39" + _fixed64(start) + b"\x41" + _fixed64(end),
        attrs if isinstance(attrs, bytes) else attributes(9, attrs),
    ]
    for event_name, at, event_attrs in events:
        body = b"\x09" + _fixed64(at) + _field(2, event_name.encode()) + attributes(3, event_attrs)
        out.append(_field(11, body))
    if status:
        body = (_field(2, message.encode("utf-8", "replace")) if message else b"") + (
            b"\x18" + varint(status)
        )
        out.append(_field(15, body))
    # SpanFlags: the W3C trace flags, "the parent's remoteness is known", and whether it is
    out.append(b"\x85\x01" + _fixed32((flags & 0xFF) | 0x100 | (0x200 if parent_remote else 0)))
    return b"".join(out)


def request(resource: Mapping[str, Any], scope: tuple[str, str], spans: Iterable[bytes]) -> bytes:
    """An ``ExportTraceServiceRequest`` holding ``spans`` (each ``span()``'s bytes)."""
    scope_msg = _field(1, scope[0].encode()) + _field(2, scope[1].encode())
    scope_spans = _field(1, scope_msg) + b"".join(_field(2, s) for s in spans)
    resource_spans = _field(1, attributes(1, resource)) + _field(2, scope_spans)
    return _field(1, resource_spans)
