"""The SigV4 canonical request and signature, shared by the signer and the verifier.

One implementation of botocore's steps for non-S3 services: the already percent-encoded path is
normalised and encoded once more (``%3A`` -> ``%253A``), query pairs are sorted as sent, header
values have their whitespace folded and repeats joined with ``,``. ``outcrop.sigv4`` feeds it the
URL it sends, ``outcrop.sigv4_verify`` the raw path, query and headers it received;
``tests/core/test_sigv4.py`` and ``tests/core/test_sigv4_verify.py`` prove both equal botocore.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import TypeVar
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@lru_cache(maxsize=256)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    k = hmac.new(k, region.encode(), hashlib.sha256).digest()
    k = hmac.new(k, service.encode(), hashlib.sha256).digest()
    return hmac.new(k, b"aws4_request", hashlib.sha256).digest()


def normalize_url_path(path: str) -> str:
    """botocore's ``normalize_url_path``: RFC 3986's dot segments removed and repeated slashes
    collapsed (AWS wants both), ``/`` for an empty path. Here so that signing never imports
    botocore; ``tests/core/test_sigv4.py`` compares the two."""
    if not path:
        return "/"
    kept: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if kept:
                kept.pop()
        elif segment and segment != ".":
            kept.append(segment)
    first = "/" if path[0] == "/" else ""
    last = "/" if path[-1] == "/" and kept else ""
    return first + "/".join(kept) + last


T = TypeVar("T")

#: The string caches below keep at most this many entries, of arguments up to this length:
#: paths and queries come from clients (a request line may be 16 KB), so a longer one is
#: computed every time rather than pinning its size in every worker.
CACHED_STRINGS = 1024
MAX_CACHED_STRING = 512


def short_string_cache(fn: Callable[[str], T]) -> Callable[[str], T]:
    """``fn`` with an LRU cache of ``CACHED_STRINGS`` short arguments (``.cached`` is the cache,
    for tests)."""
    cached = lru_cache(maxsize=CACHED_STRINGS)(fn)

    def call(value: str) -> T:
        return cached(value) if len(value) <= MAX_CACHED_STRING else fn(value)

    call.cached = cached  # type: ignore[attr-defined]
    call.__doc__ = fn.__doc__
    return call


@short_string_cache
def canonical_uri(raw_path: str) -> str:
    """The canonical URI of a raw, still percent-encoded path."""
    return quote(normalize_url_path(raw_path), safe="/~")


@short_string_cache
def canonical_query(raw_query: str) -> str:
    """The canonical query of a raw query string: pairs sorted, encoding kept as sent."""
    if not raw_query:
        return ""
    pairs = sorted(p.partition("=")[::2] for p in raw_query.split("&"))
    return "&".join(f"{k}={v}" for k, v in pairs)


def header_value(values: Iterable[str]) -> str:
    """One canonical header value: each value's whitespace folded, repeats joined with ``,``."""
    return ",".join(" ".join(v.split()) for v in values)


def payload_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256


def canonical_request(
    method: str, uri: str, query: str, headers: Mapping[str, str], payload: str
) -> tuple[str, str]:
    """(canonical request, signed-headers list) from canonical parts; ``headers`` maps lowercase
    names to canonical values."""
    names = sorted(headers)
    signed = ";".join(names)
    lines = "\n".join(f"{n}:{headers[n]}" for n in names)
    return f"{method}\n{uri}\n{query}\n{lines}\n\n{signed}\n{payload}", signed


def credential_scope(date: str, region: str, service: str) -> str:
    return f"{date}/{region}/{service}/aws4_request"


def signature(secret: str, amz_date: str, region: str, service: str, creq: str) -> str:
    """The hex signature of a canonical request signed at ``amz_date`` (``YYYYMMDDTHHMMSSZ``)."""
    scope = credential_scope(amz_date[:8], region, service)
    to_sign = f"{ALGORITHM}\n{amz_date}\n{scope}\n{hashlib.sha256(creq.encode()).hexdigest()}"
    key = signing_key(secret, amz_date[:8], region, service)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
