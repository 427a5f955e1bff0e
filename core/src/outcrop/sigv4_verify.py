"""Server-side SigV4 verification: authenticate a request signed by an AWS SDK.

The request is rebuilt from what was received, never from a decoded or re-serialized form: the
raw (still percent-encoded) path and query, only the headers named in ``SignedHeaders`` with
their received values, and the body bytes. Two engines compute the expected signature:

* ``"fast"`` (default, the gateway hot path): a stdlib canonical request plus the signing key
  cached per (secret, date, region, service), both from ``outcrop.sigv4_canonical`` (shared
  with the signer);
* ``"botocore"``: botocore's own ``SigV4Auth`` steps, so a check made with it (the simulator)
  does not depend on Outcrop's signer. ``tests/core/test_sigv4_verify.py`` proves both agree.

Error codes, statuses and messages follow what AWS JSON services answer.
"""

from __future__ import annotations

import datetime as _dt
import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from functools import cache
from typing import Any, Literal

from . import sigv4_canonical as canonical
from .errors import OutcropError, clip
from .sigv4_canonical import ALGORITHM

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)

HeadersLike = Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]]
Engine = Literal["fast", "botocore"]


@dataclass(frozen=True, slots=True)
class SigV4Identity:
    """Who signed the request, read from the verified credential scope.

    ``date`` is the scope's ``YYYYMMDD``; ``amz_date`` the full signed timestamp.
    """

    access_key: str
    region: str
    service: str
    date: str
    amz_date: str
    session_token: str | None = None


class SigV4Error(OutcropError):
    """The request failed authentication; ``code`` is the AWS error code (``x-amzn-ErrorType``)."""

    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(message, status, code=code, aws_type=code)
        self.code: str = code


@dataclass(frozen=True, slots=True)
class _Authorization:
    access_key: str
    date: str
    region: str
    service: str
    signed_headers: str
    signature: str


@dataclass(frozen=True, slots=True)
class SigV4Precheck:
    """What ``check_sigv4_headers`` established from the headers alone: the signature itself is
    still to be checked (it covers the body), by ``verify_sigv4``."""

    auth: _Authorization
    received: dict[str, list[str]]
    signed: list[str]
    amz_date: str
    secret: str = field(repr=False)  # never in a log line or traceback


def check_sigv4_headers(
    headers: HeadersLike,
    lookup_secret: Callable[[str], str | None],
    *,
    expected_service: str | Iterable[str] | None = None,
    now: _dt.datetime | None = None,
    max_skew_s: int = 900,
) -> SigV4Precheck:
    """Every check a SigV4 request allows before its body is read: the ``Authorization`` header's
    form, the credential scope (service, terminator), the signed headers, the date against the
    clock window and the access key id (``lookup_secret`` returns ``None`` for an unknown one).

    Raises ``SigV4Error``. A server calls it before reading any body byte, so a caller without
    a valid key id and a current date cannot make it buffer anything.
    """
    received = _collect_headers(headers)
    auth = _parse_authorization(received.get("authorization"))
    if expected_service is not None:
        allowed = {expected_service} if isinstance(expected_service, str) else set(expected_service)
        if auth.service not in allowed:
            wanted = ", ".join(f"'{s}'" for s in sorted(allowed))
            raise SigV4Error(
                "InvalidSignatureException",
                f"Credential should be scoped to correct service: {wanted}.",
            )
    signed = auth.signed_headers.split(";")
    if "host" not in signed:
        raise SigV4Error(
            "IncompleteSignatureException",
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        )
    if signed != sorted(set(signed)) or auth.signed_headers != auth.signed_headers.lower():
        raise SigV4Error(
            "IncompleteSignatureException",
            "SignedHeaders must be lowercase, sorted and without duplicates.",
        )
    amz_date = _signed_timestamp(received, signed, auth.date)
    for name in signed:
        if name not in received:
            raise SigV4Error(
                "InvalidSignatureException",
                f"Signed header '{clip(name)}' is missing from the request.",
            )
    _check_clock(amz_date, now or _dt.datetime.now(_dt.UTC), max_skew_s)

    secret = lookup_secret(auth.access_key)
    if secret is None:
        raise SigV4Error(
            "UnrecognizedClientException", "The security token included in the request is invalid."
        )
    return SigV4Precheck(auth, received, signed, amz_date, secret)


def verify_sigv4(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: HeadersLike,
    body: bytes,
    lookup_secret: Callable[[str], str | None],
    *,
    expected_service: str | Iterable[str] | None = None,
    now: _dt.datetime | None = None,
    max_skew_s: int = 900,
    allow_unsigned_payload: bool = False,
    engine: Engine = "fast",
    precheck: SigV4Precheck | None = None,
) -> SigV4Identity:
    """Check the ``Authorization: AWS4-HMAC-SHA256 ...`` header of a received request.

    ``headers`` is any mapping (looked up case-insensitively; a Starlette ``Headers`` keeps
    repeated names) or a list of ``(name, value)`` pairs, as ``str`` or ``bytes``.
    ``lookup_secret`` maps an access key id to its secret, or ``None`` when the key is unknown.
    ``precheck``, when given, is ``check_sigv4_headers``'s answer for these headers (made before
    the body was read); otherwise those checks run here. Returns the signer's identity or raises
    ``SigV4Error``.
    """
    pre = precheck or check_sigv4_headers(
        headers, lookup_secret, expected_service=expected_service, now=now, max_skew_s=max_skew_s
    )
    auth, received = pre.auth, pre.received
    payload_hash = _payload_hash(received, body, allow_unsigned_payload)
    compute = _signature_fast if engine == "fast" else _signature_botocore
    expected = compute(
        method.upper(),
        raw_path,
        raw_query,
        received,
        pre.signed,
        payload_hash,
        body,
        auth,
        pre.amz_date,
        pre.secret,
    )
    if not hmac.compare_digest(expected.encode(), auth.signature.encode("latin-1")):
        raise SigV4Error("InvalidSignatureException", _MISMATCH)
    token = received.get("x-amz-security-token")
    return SigV4Identity(
        auth.access_key,
        auth.region,
        auth.service,
        auth.date,
        pre.amz_date,
        token[0] if token else None,
    )


def _collect_headers(headers: HeadersLike) -> dict[str, list[str]]:
    """Lowercased name -> every received value, in order (SigV4 joins repeats with ``,``)."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        key = (name.decode("latin-1") if isinstance(name, bytes) else name).lower()
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        out.setdefault(key, []).append(text)
    return out


def _parse_authorization(values: list[str] | None) -> _Authorization:
    if not values:
        raise SigV4Error("MissingAuthenticationTokenException", "Missing Authentication Token")
    if len(values) > 1:
        raise SigV4Error(
            "IncompleteSignatureException", "Only one Authorization header is allowed."
        )
    scheme, _, rest = values[0].strip().partition(" ")
    if scheme != ALGORITHM:
        # Never echo the header: it may carry a bearer secret.
        raise SigV4Error(
            "IncompleteSignatureException",
            f"Authorization header must use the '{ALGORITHM}' algorithm.",
        )
    params: dict[str, str] = {}
    for item in rest.split(","):
        key, eq, value = item.strip().partition("=")
        if eq:
            params[key] = value.strip()
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if not params.get(k)]
    if missing:
        raise SigV4Error(
            "IncompleteSignatureException",
            " ".join(f"Authorization header requires '{k}' parameter." for k in missing),
        )
    scope = params["Credential"].split("/")
    if len(scope) != 5 or not all(scope):
        raise SigV4Error(
            "IncompleteSignatureException",
            "Credential must have the form <access key>/<date>/<region>/<service>/aws4_request.",
        )
    if scope[4] != "aws4_request":
        raise SigV4Error(
            "IncompleteSignatureException",
            f"Credential should be scoped with a valid terminator: 'aws4_request', not '{clip(scope[4])}'.",
        )
    return _Authorization(
        scope[0], scope[1], scope[2], scope[3], params["SignedHeaders"], params["Signature"]
    )


def _signed_timestamp(received: dict[str, list[str]], signed: list[str], scope_date: str) -> str:
    """The ISO-8601 basic timestamp that was signed (``X-Amz-Date``, else ``Date``)."""
    if "x-amz-date" in received:
        name, raw = "x-amz-date", received["x-amz-date"][0].strip()
        try:
            _dt.datetime.strptime(raw, _AMZ_DATE_FORMAT)
        except ValueError:
            raise SigV4Error(
                "IncompleteSignatureException",
                f"Date must be in ISO-8601 'basic format'. Got '{clip(raw)}'.",
            ) from None
        amz_date = raw
    elif "date" in received:
        name = "date"
        try:
            parsed = parsedate_to_datetime(received["date"][0])
        except (TypeError, ValueError):
            parsed = None
        if parsed is None:
            raise SigV4Error(
                "IncompleteSignatureException", "The Date header is not a valid HTTP date."
            )
        if parsed.tzinfo is None:  # botocore writes "-0000", which RFC 2822 leaves zoneless
            parsed = parsed.replace(tzinfo=_dt.UTC)
        amz_date = parsed.astimezone(_dt.UTC).strftime(_AMZ_DATE_FORMAT)
    else:
        raise SigV4Error(
            "IncompleteSignatureException",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        )
    if name not in signed:
        raise SigV4Error(
            "IncompleteSignatureException", f"The '{name}' header must be a SignedHeader."
        )
    if amz_date[:8] != scope_date:
        raise SigV4Error(
            "InvalidSignatureException",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{clip(scope_date)}' != '{amz_date[:8]}', from '{amz_date}'.",
        )
    return amz_date


def _check_clock(amz_date: str, now: _dt.datetime, max_skew_s: int) -> None:
    signed_at = _dt.datetime.strptime(amz_date, _AMZ_DATE_FORMAT).replace(tzinfo=_dt.UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=_dt.UTC)
    skew = _dt.timedelta(seconds=max_skew_s)
    window = f"{max_skew_s // 60} min." if max_skew_s % 60 == 0 else f"{max_skew_s} s."
    stamp = now.strftime(_AMZ_DATE_FORMAT)
    if signed_at < now - skew:
        raise SigV4Error(
            "InvalidSignatureException",
            f"Signature expired: {amz_date} is now earlier than "
            f"{(now - skew).strftime(_AMZ_DATE_FORMAT)} ({stamp} - {window})",
        )
    if signed_at > now + skew:
        raise SigV4Error(
            "InvalidSignatureException",
            f"Signature not yet current: {amz_date} is still later than "
            f"{(now + skew).strftime(_AMZ_DATE_FORMAT)} ({stamp} + {window})",
        )


def _payload_hash(received: dict[str, list[str]], body: bytes, allow_unsigned: bool) -> str:
    """The canonical request's payload line; a declared hash must match the body we got."""
    actual = canonical.payload_hash(body)
    declared = received.get("x-amz-content-sha256")
    if not declared:
        return actual
    value = declared[0].strip()
    if value == UNSIGNED_PAYLOAD:
        if not allow_unsigned:
            raise SigV4Error("InvalidSignatureException", "UNSIGNED-PAYLOAD is not accepted here.")
        return value
    if value.lower() != actual:
        # The payload line is signed, not the body: without this check a body could be swapped.
        raise SigV4Error(
            "InvalidSignatureException",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        )
    return value


def _signature_fast(
    method: str,
    raw_path: str,
    raw_query: str,
    received: dict[str, list[str]],
    signed: list[str],
    payload_hash: str,
    body: bytes,
    auth: _Authorization,
    amz_date: str,
    secret: str,
) -> str:
    headers = {name: canonical.header_value(received[name]) for name in signed}
    creq, _ = canonical.canonical_request(
        method,
        canonical.canonical_uri(raw_path),
        canonical.canonical_query(raw_query),
        headers,
        payload_hash,
    )
    return canonical.signature(secret, amz_date, auth.region, auth.service, creq)


@cache
def _received_request_auth() -> Any:
    """A ``SigV4Auth`` over exactly the headers the client says it signed (botocore would
    otherwise pick headers itself, and skip names such as ``user-agent``). Made on first use:
    only the ``"botocore"`` engine (the simulator) imports botocore."""
    from botocore.auth import SigV4Auth

    class ReceivedRequestAuth(SigV4Auth):  # type: ignore[misc]  # botocore is untyped
        def __init__(self, credentials: Any, service: str, region: str, signed: Any) -> None:
            super().__init__(credentials, service, region)
            self._signed = signed

        def headers_to_sign(self, request: Any) -> Any:
            return self._signed

    return ReceivedRequestAuth


def _signature_botocore(
    method: str,
    raw_path: str,
    raw_query: str,
    received: dict[str, list[str]],
    signed: list[str],
    payload_hash: str,
    body: bytes,
    auth: _Authorization,
    amz_date: str,
    secret: str,
) -> str:
    from botocore.awsrequest import AWSRequest, HTTPHeaders
    from botocore.credentials import ReadOnlyCredentials

    to_sign = HTTPHeaders()
    for name in signed:
        for value in received[name]:
            to_sign[name] = value  # email.message appends, so repeated values are kept
    url = f"http://{received['host'][0]}{raw_path}" + (f"?{raw_query}" if raw_query else "")
    request = AWSRequest(method=method, url=url, data=body)
    if payload_hash != canonical.payload_hash(body):
        request.headers["X-Amz-Content-SHA256"] = payload_hash
    request.context["timestamp"] = amz_date
    signer = _received_request_auth()(
        ReadOnlyCredentials(auth.access_key, secret, None), auth.service, auth.region, to_sign
    )
    creq = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, creq), request))
