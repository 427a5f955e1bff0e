"""What goes to AWS: the raw path and query (what is routed, refused and signed) and the headers.

Towards AWS only an allow-list of headers Bedrock reads is forwarded (everything else, the
client's ``Authorization``, ``X-Amz-Date``, ``X-Amz-Security-Token``, ``X-Amz-Content-SHA256``,
hop-by-hop and ``x-forwarded-*`` headers and any header the client's ``Connection`` header
names included, is dropped) and the request is re-signed over exactly these.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, unquote

from outcrop import OutcropError, clip

from . import PATH_PREFIX

_CANONICAL_QUERY = re.compile(r"[A-Za-z0-9\-_.~%=&]*\Z")
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


def relative(raw_full: str, root_path: str) -> str:
    """The raw path after ``[root_path]/bedrock``."""
    path = raw_full
    encoded_root = quote(root_path, safe="/") if root_path else ""
    if encoded_root and path.startswith(encoded_root):
        path = path[len(encoded_root) :]
    return path[len(PATH_PREFIX) :] if path.startswith(PATH_PREFIX) else path


def check_segments(path: str) -> None:
    """Refuse dot segments: AWS would normalize them to a path other than the one authorized."""
    for segment in path.split("/"):
        if segment and unquote(segment) in (".", ".."):
            raise OutcropError(
                f"the path {clip(path)!r} contains a '.' or '..' segment",
                400,
                aws_type="ValidationException",
            )


def canonical_query(query: str) -> str:
    """The query as AWS canonicalizes it, so the signature AWS recomputes matches ours.

    SDKs already send it that way (then it is forwarded untouched); a hand-written query with
    characters such as ``/`` or ``:`` is re-encoded without changing its values.
    """
    if _CANONICAL_QUERY.match(query):
        return query
    pairs = (p.partition("=") for p in query.split("&") if p)
    return "&".join(
        f"{quote(unquote(k), safe='-_.~')}={quote(unquote(v), safe='-_.~')}" for k, _, v in pairs
    )


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
