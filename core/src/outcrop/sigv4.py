"""SigV4 request signing, signature-identical to botocore's ``SigV4Auth`` and cheaper.

botocore's ``add_auth`` spends most of its time in generic header/URL handling (figures in
docs/performance.md); this signer caches the derived signing key per
(secret, date, region, service) and works on the already-encoded URL the gateway sends.
``tests/core/test_sigv4.py`` proves equality with botocore for paths with ``%3A``/``%2F``,
query strings, session tokens and repeated whitespace.
"""

from __future__ import annotations

import datetime as _dt
import re
import time
from collections.abc import MutableMapping
from urllib.parse import urlsplit

from . import sigv4_canonical as canonical
from .sigv4_canonical import (
    ALGORITHM,
    canonical_query,
    canonical_uri,
    credential_scope,
    header_value,
    payload_hash,
    short_string_cache,
    signature,
)

#: Headers botocore never signs (``botocore.auth.SIGNED_HEADERS_BLACKLIST``).
UNSIGNED_HEADERS = frozenset(
    {
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "x-amzn-trace-id",
        "content-length",  # set by the HTTP client; botocore signs it only when present beforehand
    }
)


#: A path whose canonical URI is itself: segments of unreserved characters (none starting with
#: a dot, so no ``.``/``..``), no empty segment, an optional trailing ``/``.
_PLAIN_PATH = re.compile(r"(?:/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)+/?")


@short_string_cache
def _host(origin: str) -> str:
    """The ``host`` header value of ``scheme://netloc``."""
    parts = urlsplit(origin)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(parts.scheme)
    if parts.port is not None and parts.port != default:
        host = f"{host}:{parts.port}"
    return host


@short_string_cache
def _split(url: str) -> tuple[str, str, str]:
    """(host header value, canonical URI, canonical query) for an already-encoded URL.

    A URL seen before is one cache hit. A new one (an agent's URL names a new session each
    time) is cut at the origin's end, and only its parts not seen before are worked out: the
    origin and the query repeat, and a path of unreserved characters is its own canonical URI.
    """
    begin = url.find("//")
    end = url.find("/", begin + 2) if begin > 0 else -1
    if end < 0 or "#" in url or "?" in url[:end] or not url.isprintable():
        # urlsplit's own rules (fragments, removed control characters...)
        parts = urlsplit(url)
        return (
            _host(f"{parts.scheme}://{parts.netloc}"),
            canonical_uri(parts.path),
            canonical_query(parts.query),
        )
    path, _, query = url[end:].partition("?")
    uri = path if _PLAIN_PATH.fullmatch(path) else canonical_uri(path)
    return _host(url[:end]), uri, canonical_query(query)


#: The last second formatted by ``amz_date`` and its text: every request signed within one
#: second shares it (formatting a datetime cost about a sixth of the signing).
_stamp: tuple[int, str] = (-1, "")


def amz_date(now: _dt.datetime | None = None) -> str:
    if now is not None:
        return now.strftime("%Y%m%dT%H%M%SZ")
    global _stamp
    second = int(time.time())
    if _stamp[0] != second:
        _stamp = (second, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second)))
    return _stamp[1]


def canonical_request(
    method: str, url: str, headers: MutableMapping[str, str], body: bytes
) -> tuple[str, str]:
    """Return (canonical request, signed-headers list) the way botocore builds them."""
    host, uri, query = _split(url)
    values: dict[str, list[str]] = {}
    for name, value in headers.items():
        lname = name.lower()
        if lname not in UNSIGNED_HEADERS:
            values.setdefault(lname, []).append(value)
    canon = {name: header_value(vs) for name, vs in values.items()}
    canon.setdefault("host", host)
    payload = canon.get("x-amz-content-sha256") or payload_hash(body)
    return canonical.canonical_request(method, uri, query, canon, payload)


def sign(
    method: str,
    url: str,
    headers: MutableMapping[str, str],
    body: bytes,
    *,
    access_key: str,
    secret_key: str,
    token: str | None,
    region: str,
    service: str,
    timestamp: str | None = None,
) -> None:
    """Add ``X-Amz-Date``, ``X-Amz-Security-Token`` and ``Authorization`` to ``headers``."""
    for stale in ("authorization", "x-amz-date", "x-amz-security-token"):
        for key in [k for k in headers if k.lower() == stale]:
            del headers[key]
    ts = timestamp or amz_date()
    headers["X-Amz-Date"] = ts
    if token:
        headers["X-Amz-Security-Token"] = token
    creq, signed = canonical_request(method, url, headers, body)
    headers["Authorization"] = (
        f"{ALGORITHM} Credential={access_key}/{credential_scope(ts[:8], region, service)}, "
        f"SignedHeaders={signed}, Signature={signature(secret_key, ts, region, service, creq)}"
    )
