"""Which headers cross the gateway, in each direction.

Towards AWS only an allow-list of headers Bedrock reads is forwarded (everything else, the
client's ``Authorization``, ``X-Amz-Date``, ``X-Amz-Security-Token``, ``X-Amz-Content-SHA256``,
hop-by-hop and ``x-forwarded-*`` headers and any header the client's ``Connection`` header
names included, is dropped) and the request is re-signed over exactly these. Back to the client
go the headers AWS sets for the caller, not transport ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

_REQUEST_EXACT = frozenset(
    {
        "content-type",
        "content-encoding",
        "accept",
        "x-amz-source-arn",
        "x-amzn-trace-id",
        "mcp-session-id",
        "mcp-protocol-version",
        "traceparent",
        "tracestate",
        "baggage",
    }
)
#: X-Amzn-Bedrock-* covers Trace, GuardrailIdentifier/Version, PerformanceConfig-Latency,
#: Service-Tier, Accept/Content-Type (InvokeModelWithResponseStream) and every AgentCore
#: runtime header (Session-Id, User-Id, Custom-*).
_REQUEST_PREFIXES = ("x-amzn-bedrock-",)

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


def _connection_options(received: Iterable[tuple[bytes, bytes]]) -> frozenset[str]:
    """Header names the client's ``Connection`` header lists: hop-by-hop for this connection
    only (RFC 9110 §7.6.1), so never forwarded, even when the allow-list names them."""
    named: set[str] = set()
    for raw_name, raw_value in received:
        if raw_name.lower() == b"connection":
            named.update(t.strip().lower() for t in raw_value.decode("latin-1").split(","))
    return frozenset(named)


def forward_request_headers(received: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The client's headers AWS needs (lower-cased names; repeated values joined with ``,``)."""
    received = list(received)
    hop_by_hop = _connection_options(received)
    out: dict[str, str] = {}
    for raw_name, raw_value in received:
        name = raw_name.decode("latin-1").lower()
        if name in hop_by_hop:
            continue
        if name in _REQUEST_EXACT or name.startswith(_REQUEST_PREFIXES):
            try:
                value = raw_value.decode("utf-8")
            except UnicodeDecodeError:
                # The upstream client writes UTF-8: another decoding would change the bytes.
                raise ValueError(f"header {name!r} is not valid UTF-8") from None
            out[name] = f"{out[name]},{value}" if name in out else value
    return out


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
            # aiohttp decoded the value as UTF-8 with surrogateescape: this restores the bytes.
            out.append((lname.encode("latin-1"), value.encode("utf-8", "surrogateescape")))
    return out
