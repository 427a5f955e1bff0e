"""What goes back to the client: the headers AWS sets for the caller, not transport ones."""

from __future__ import annotations

from collections.abc import Mapping

_RESPONSE_EXACT = frozenset(
    {
        "content-type",
        "content-length",
        "content-encoding",
        "cache-control",
        "retry-after",
        "etag",
        "location",
        "mcp-session-id",
        "mcp-protocol-version",
        "traceparent",
        "tracestate",
        "baggage",
    }
)
_RESPONSE_PREFIXES = ("x-amzn-", "x-amz-")


def relay_response_headers(
    upstream: Mapping[str, str], *, keep_length: bool = True
) -> list[tuple[bytes, bytes]]:
    """AWS's response headers the client gets, as ASGI header pairs."""
    out: list[tuple[bytes, bytes]] = []
    for name, value in upstream.items():
        lname = name.lower()
        if lname == "content-length" and not keep_length:
            continue
        if lname in _RESPONSE_EXACT or lname.startswith(_RESPONSE_PREFIXES):
            # ResponseHeaders decoded the value as UTF-8 with surrogateescape: this restores the bytes.
            out.append((lname.encode("latin-1"), value.encode("utf-8", "surrogateescape")))
    return out
