"""/bedrock/* with SigV4 key pairs: an unknown key id, a stale or future date or a wrong scope is
refused from the headers alone, before a body byte is read; a body that does not come is a 408;
the signature itself (which covers the body) is checked once the body is in."""

from __future__ import annotations

import datetime as dt

import pytest

from outcrop import SigV4Error, check_sigv4_headers

from .conftest import SDK_KEY_ID, SDK_SECRET
from .rawhttp import (
    CONVERSE_BODY,
    CONVERSE_PATH,
    LIMIT,
    assert_aws_error,
    connect,
    read_response,
    request_head,
    still_serves,
)

_FMT = "%Y%m%dT%H%M%SZ"


def _auth(
    key: str = SDK_KEY_ID,
    *,
    date: str | None = None,
    region: str = "us-west-2",
    service: str = "bedrock",
    terminator: str = "aws4_request",
    signed: str = "host;x-amz-date",
    signature: str = "0" * 64,
) -> str:
    date = date or dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    return (
        f"AWS4-HMAC-SHA256 Credential={key}/{date}/{region}/{service}/{terminator}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )


def _now(delta_minutes: float = 0) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(minutes=delta_minutes)


def _case(authorization: str, amz: dt.datetime | None = None, **extra: str) -> dict[str, str]:
    headers = {"authorization": authorization, "content-type": "application/json", **extra}
    if amz is not None:
        headers["x-amz-date"] = amz.strftime(_FMT)
    return headers


#: (case id, headers made at test time, AWS error type, message start): refused with no body
#: byte sent. Made when the test runs, not when it is collected: the clock window is 15 minutes.
def _stale() -> dt.datetime:
    return _now(-20)


def _future() -> dt.datetime:
    return _now(20)


HEADER_ONLY_REFUSALS = [
    (
        "unknown-key",
        lambda: _case(_auth("AKIDNOBODYKNOWS00001"), _now()),
        "UnrecognizedClientException",
        "The security token included in the request is invalid",
    ),
    (
        "unknown-key-long",
        lambda: _case(_auth("K" * 120), _now()),
        "UnrecognizedClientException",
        "The security token",
    ),
    (
        "stale-date",
        lambda: _case(_auth(date=_stale().strftime("%Y%m%d")), _stale()),
        "InvalidSignatureException",
        "Signature expired",
    ),
    (
        "future-date",
        lambda: _case(_auth(date=_future().strftime("%Y%m%d")), _future()),
        "InvalidSignatureException",
        "Signature not yet current",
    ),
    (
        "year-old-date",
        lambda: _case(_auth(date=_now(-525600).strftime("%Y%m%d")), _now(-525600)),
        "InvalidSignatureException",
        "Signature expired",
    ),
    (
        "wrong-service",
        lambda: _case(_auth(service="s3"), _now()),
        "InvalidSignatureException",
        "Credential should be scoped to correct service",
    ),
    (
        "agent-service-on-runtime-path",
        lambda: _case(_auth(service="bedrock-agent-runtime"), _now()),
        "InvalidSignatureException",
        "Credential should be scoped to correct service",
    ),
    (
        "wrong-terminator",
        lambda: _case(_auth(terminator="aws4_requestX"), _now()),
        "IncompleteSignatureException",
        "Credential should be scoped with a valid terminator",
    ),
    (
        "short-credential",
        lambda: _case(
            "AWS4-HMAC-SHA256 Credential=OUTCROPSECKEY00001/20260101, "
            "SignedHeaders=host;x-amz-date, Signature=00",
            _now(),
        ),
        "IncompleteSignatureException",
        "Credential must have the form",
    ),
    (
        "empty-scope-part",
        lambda: _case(_auth(region=""), _now()),
        "IncompleteSignatureException",
        "Credential must have the form",
    ),
    (
        "no-signature",
        lambda: _case(
            f"AWS4-HMAC-SHA256 Credential={SDK_KEY_ID}/20260101/us-west-2/bedrock/aws4_request, "
            "SignedHeaders=host;x-amz-date",
            _now(),
        ),
        "IncompleteSignatureException",
        "Authorization header requires 'Signature'",
    ),
    (
        "no-date",
        lambda: _case(_auth()),
        "IncompleteSignatureException",
        "Authorization header requires existence",
    ),
    (
        "date-not-signed",
        lambda: _case(_auth(signed="host"), _now()),
        "IncompleteSignatureException",
        "The 'x-amz-date' header must be a SignedHeader",
    ),
    (
        "host-not-signed",
        lambda: _case(_auth(signed="x-amz-date"), _now()),
        "IncompleteSignatureException",
        "'Host' or ':authority' must be a 'SignedHeader'",
    ),
    (
        "unsorted-signed-headers",
        lambda: _case(_auth(signed="x-amz-date;host"), _now()),
        "IncompleteSignatureException",
        "SignedHeaders must be lowercase",
    ),
    (
        "signed-header-missing",
        lambda: _case(_auth(signed="host;x-amz-date;x-custom"), _now()),
        "InvalidSignatureException",
        "Signed header 'x-custom' is missing",
    ),
    (
        "scope-date-mismatch",
        lambda: _case(_auth(date="20200101"), _now()),
        "InvalidSignatureException",
        "Date in Credential scope does not match",
    ),
    (
        "bad-amz-date",
        lambda: {**_case(_auth()), "x-amz-date": "yesterday"},
        "IncompleteSignatureException",
        "Date must be in ISO-8601",
    ),
]


@pytest.mark.parametrize(
    ("make_headers", "error_type", "message"),
    [c[1:] for c in HEADER_ONLY_REFUSALS],
    ids=[c[0] for c in HEADER_ONLY_REFUSALS],
)
def test_refused_from_headers_before_any_body_byte(
    bounded_gateway, bedrock_simulator, make_headers, error_type, message
):
    """The body is declared but never sent: the 403 can only come from the headers (reading the
    body first would end in a 408 after `body_timeout`)."""
    headers = make_headers()
    with connect(bounded_gateway.url) as sock:
        sock.sendall(
            request_head(
                "POST",
                CONVERSE_PATH,
                bounded_gateway.url,
                {**headers, "content-length": str(LIMIT)},
            )
        )
        r = read_response(sock)
    assert_aws_error(r, 403, error_type)
    assert r.json()["message"].startswith(message), r.json()
    assert bedrock_simulator.requests == []
    still_serves(bounded_gateway)


def test_valid_key_and_date_wait_for_the_body_then_check_the_signature(
    bounded_gateway, bedrock_simulator
):
    headers = _case(_auth(), _now())
    with connect(bounded_gateway.url) as sock:
        sock.sendall(
            request_head(
                "POST",
                CONVERSE_PATH,
                bounded_gateway.url,
                {**headers, "content-length": str(len(CONVERSE_BODY))},
            )
        )
        sock.sendall(CONVERSE_BODY)
        r = read_response(sock)
    assert_aws_error(r, 403, "InvalidSignatureException")
    assert r.json()["message"].startswith("The request signature we calculated does not match")
    assert bedrock_simulator.requests == []
    still_serves(bounded_gateway)


def test_valid_key_and_date_with_a_body_that_never_comes_gets_408(
    bounded_gateway, bedrock_simulator
):
    headers = _case(_auth(), _now())
    with connect(bounded_gateway.url) as sock:
        sock.sendall(
            request_head(
                "POST", CONVERSE_PATH, bounded_gateway.url, {**headers, "content-length": "1000"}
            )
        )
        sock.sendall(b"{")
        r = read_response(sock)
    assert_aws_error(r, 408, "RequestTimeoutException")
    assert bedrock_simulator.requests == []
    still_serves(bounded_gateway)


def test_precheck_uses_any_secret_lookup_once():
    """The header check is written against a "secret for this key id" callable, so keys issued
    elsewhere (looked up after the static ones) work the same."""
    asked: list[str] = []

    def lookup(key_id: str) -> str | None:
        asked.append(key_id)
        return "s" * 32 if key_id == "ISSUEDKEY0001" else None

    headers = _case(_auth("ISSUEDKEY0001", date=_now().strftime("%Y%m%d")), _now(), host="gw.test")
    pre = check_sigv4_headers(headers, lookup, expected_service="bedrock")
    assert (pre.auth.access_key, asked) == ("ISSUEDKEY0001", ["ISSUEDKEY0001"])
    assert "s" * 32 not in repr(pre)  # the secret never shows in a log line or traceback
    with pytest.raises(SigV4Error) as caught:
        check_sigv4_headers(_case(_auth("OTHERKEY00001"), _now(), host="gw.test"), lookup)
    assert caught.value.code == "UnrecognizedClientException" and asked[-1] == "OTHERKEY00001"


def test_precheck_refuses_before_looking_up_a_key_for_a_stale_date():
    asked: list[str] = []
    stale = _stale()
    headers = _case(_auth(date=stale.strftime("%Y%m%d")), stale, host="gw.test")
    with pytest.raises(SigV4Error) as caught:
        check_sigv4_headers(headers, lambda k: asked.append(k) or SDK_SECRET)
    assert caught.value.code == "InvalidSignatureException" and asked == []
