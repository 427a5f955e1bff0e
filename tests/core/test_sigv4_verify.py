"""Server-side SigV4 verification against requests signed by botocore and by outcrop.sigv4."""

from __future__ import annotations

import datetime as dt
import hashlib
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from starlette.datastructures import Headers

from outcrop import sigv4
from outcrop.sigv4_verify import SigV4Error, SigV4Identity, verify_sigv4

AK, SK = "AKIDVERIFYTEST000001", "verify/secret/key/00000000000000000000000"
SECRETS = {AK: SK}
ENGINES = ["fast", "botocore"]

CASES = [
    pytest.param(
        "POST",
        "http://bedrock-agent-runtime.us-west-2.amazonaws.com/agents/AGENT12345/agentAliases/ALIAS12345/sessions/sess%3A1/text",
        {"Content-Type": "application/json"},
        b'{"inputText": "hi"}',
        "bedrock",
        None,
        id="agent",
    ),
    pytest.param(
        "POST",
        "http://127.0.0.1:8765/runtimes/arn%3Aaws%3Abedrock-agentcore%3Aus-west-2%3A123456789012%3Aruntime%2Fmy_agent-AbCdEf1234/invocations?qualifier=DEFAULT",
        {
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
            "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id": "87535355-7280-43c0-bf2d-9edb30ac3026",
        },
        b'{"prompt":"hi"}',
        "bedrock-agentcore",
        "session/token==",
        id="agentcore-arn",
    ),
    pytest.param(
        "GET",
        "http://localhost:9000/async-invoke?sortOrder=Descending&maxResults=10&nextToken=a%2Fb",
        {"X-Custom": "  spaced    value  ", "User-Agent": "botocore-never-signs-this"},
        b"",
        "bedrock",
        None,
        id="query-spaces",
    ),
    pytest.param(
        "POST",
        "http://localhost/model/us.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse",
        {"Content-Type": "application/json"},
        "é unicode body".encode(),
        "bedrock",
        None,
        id="model-id",
    ),
]


def botocore_signed(method, url, headers, body, service, token, region="us-west-2"):
    """Sign with botocore's own add_auth; return what a server would receive."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    SigV4Auth(Credentials(AK, SK, token).get_frozen_credentials(), service, region).add_auth(
        request
    )
    parts = urlsplit(url)
    received = {"Host": parts.netloc, **dict(request.headers.items())}
    return parts.path, parts.query, received


def verify(method, path, query, headers, body, **kwargs) -> SigV4Identity:
    return verify_sigv4(method, path, query, headers, body, SECRETS.get, **kwargs)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("method,url,headers,body,service,token", CASES)
def test_accepts_botocore_signature(engine, method, url, headers, body, service, token):
    path, query, received = botocore_signed(method, url, headers, body, service, token)
    identity = verify(method, path, query, received, body, expected_service=service, engine=engine)
    assert (identity.access_key, identity.region, identity.service) == (AK, "us-west-2", service)
    assert identity.session_token == token
    assert identity.amz_date.startswith(identity.date)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("method,url,headers,body,service,token", CASES)
def test_accepts_outcrop_signer(engine, method, url, headers, body, service, token):
    signed = dict(headers)
    sigv4.sign(
        method,
        url,
        signed,
        body,
        access_key=AK,
        secret_key=SK,
        token=token,
        region="eu-central-1",
        service=service,
    )
    parts = urlsplit(url)
    identity = verify(
        method, parts.path, parts.query, {"host": parts.netloc, **signed}, body, engine=engine
    )
    assert identity.region == "eu-central-1"


@pytest.mark.parametrize("method,url,headers,body,service,token", CASES)
def test_engines_compute_botocore_signature(method, url, headers, body, service, token):
    """Both engines agree with the Signature botocore put in the header (and with each other)."""
    path, query, received = botocore_signed(method, url, headers, body, service, token)
    for engine in ENGINES:
        verify(method, path, query, received, body, engine=engine)
    tampered = {**received, "Authorization": received["Authorization"][:-4] + "0000"}
    for engine in ENGINES:
        with pytest.raises(SigV4Error) as err:
            verify(method, path, query, tampered, body, engine=engine)
        assert err.value.code == "InvalidSignatureException"


@pytest.mark.parametrize("engine", ENGINES)
def test_repeated_headers_are_joined_as_botocore_does(engine):
    request = AWSRequest(method="POST", url="http://h/model/m/invoke", data=b"{}")
    request.headers.add_header("X-Multi", "one")
    request.headers.add_header("X-Multi", "  two   words ")
    SigV4Auth(Credentials(AK, SK).get_frozen_credentials(), "bedrock", "us-west-2").add_auth(
        request
    )
    pairs = [("Host", "h"), *request.headers.items()]
    assert [v for k, v in pairs if k == "X-Multi"] == ["one", "  two   words "]
    verify("POST", "/model/m/invoke", "", pairs, b"{}", engine=engine)
    as_bytes = [(k.lower().encode(), v.encode()) for k, v in pairs]
    verify("POST", "/model/m/invoke", "", as_bytes, b"{}", engine=engine)
    starlette = Headers(raw=as_bytes)
    verify("POST", "/model/m/invoke", "", starlette, b"{}", engine=engine)
    with pytest.raises(SigV4Error):  # dropping one of the values breaks the signature
        verify(
            "POST",
            "/model/m/invoke",
            "",
            [p for p in pairs if p != ("X-Multi", "one")],
            b"{}",
            engine=engine,
        )


def _signed(
    body=b'{"a":1}',
    *,
    path="/model/m/converse",
    query="",
    service="bedrock",
    timestamp=None,
    extra=None,
):
    headers = {"Host": "localhost:1234", "Content-Type": "application/json", **(extra or {})}
    sigv4.sign(
        "POST",
        f"http://localhost:1234{path}" + (f"?{query}" if query else ""),
        headers,
        body,
        access_key=AK,
        secret_key=SK,
        token=None,
        region="us-west-2",
        service=service,
        timestamp=timestamp,
    )
    return headers


def _code(headers, body=b'{"a":1}', *, path="/model/m/converse", query="", **kwargs):
    with pytest.raises(SigV4Error) as err:
        verify("POST", path, query, headers, body, **kwargs)
    assert err.value.status == 403
    return err.value.code, err.value.message


@pytest.mark.parametrize("engine", ENGINES)
def test_rejects_tampering(engine):
    headers = _signed(query="b=2&a=1")
    verify("POST", "/model/m/converse", "b=2&a=1", headers, b'{"a":1}', engine=engine)
    assert (
        _code(headers, b'{"a":2}', query="b=2&a=1", engine=engine)[0] == "InvalidSignatureException"
    )
    assert (
        _code(headers, path="/model/x/converse", query="b=2&a=1", engine=engine)[0]
        == "InvalidSignatureException"
    )
    assert _code(headers, query="b=3&a=1", engine=engine)[0] == "InvalidSignatureException"
    changed = {**headers, "Content-Type": "text/plain"}
    assert _code(changed, query="b=2&a=1", engine=engine)[0] == "InvalidSignatureException"


def test_decoded_path_does_not_verify():
    raw = (
        "/model/arn%3Aaws%3Abedrock%3Aus-west-2%3A123456789012%3Ainference-profile%2Fus.x/converse"
    )
    headers = _signed(path=raw)
    verify("POST", raw, "", headers, b'{"a":1}')
    decoded = "/model/arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.x/converse"
    assert _code(headers, path=decoded)[0] == "InvalidSignatureException"


def test_missing_and_incomplete_authorization():
    headers = _signed()
    no_auth = {k: v for k, v in headers.items() if k != "Authorization"}
    assert _code(no_auth) == ("MissingAuthenticationTokenException", "Missing Authentication Token")
    code, message = _code({**no_auth, "Authorization": "Bearer secret-token-value"})
    assert code == "IncompleteSignatureException" and "secret-token-value" not in message
    auth = headers["Authorization"]
    code, message = _code({**headers, "Authorization": auth.split(", Signature=")[0]})
    assert code == "IncompleteSignatureException" and "'Signature'" in message
    bad_scope = auth.replace("/aws4_request", "/aws5_request")
    assert _code({**headers, "Authorization": bad_scope})[0] == "IncompleteSignatureException"
    host_unsigned = auth.replace(
        "SignedHeaders=content-type;host;x-amz-date", "SignedHeaders=content-type;x-amz-date"
    )
    code, message = _code({**headers, "Authorization": host_unsigned})
    assert code == "IncompleteSignatureException" and "Host" in message
    date_unsigned = auth.replace(";x-amz-date,", ",")
    assert _code({**headers, "Authorization": date_unsigned})[0] == "IncompleteSignatureException"
    no_date = {k: v for k, v in headers.items() if k != "X-Amz-Date"}
    assert _code(no_date)[0] == "IncompleteSignatureException"


def test_unknown_key_and_wrong_service():
    headers = _signed()
    with pytest.raises(SigV4Error) as err:
        verify_sigv4("POST", "/model/m/converse", "", headers, b'{"a":1}', lambda key: None)
    assert err.value.code == "UnrecognizedClientException"
    code, message = _code(headers, expected_service="bedrock-agentcore")
    assert code == "InvalidSignatureException" and "'bedrock-agentcore'" in message
    verify(
        "POST",
        "/model/m/converse",
        "",
        headers,
        b'{"a":1}',
        expected_service={"bedrock", "bedrock-agentcore"},
    )


def test_clock_skew():
    now = dt.datetime(2026, 11, 22, 8, 20, 13, tzinfo=dt.UTC)
    old = _signed(timestamp="20261122T075945Z")  # 20 min 28 s before now
    code, message = _code(old, now=now)
    assert code == "InvalidSignatureException"
    assert message == (
        "Signature expired: 20261122T075945Z is now earlier than 20261122T080513Z "
        "(20261122T082013Z - 15 min.)"
    )
    verify("POST", "/model/m/converse", "", old, b'{"a":1}', now=now, max_skew_s=1800)
    future = _signed(timestamp="20261122T090000Z")
    code, message = _code(future, now=now)
    assert message.startswith("Signature not yet current: 20261122T090000Z is still later than")
    inside = _signed(timestamp="20261122T080600Z")
    verify("POST", "/model/m/converse", "", inside, b'{"a":1}', now=now)


def test_scope_date_must_match_amz_date():
    headers = _signed(timestamp="20261122T075945Z")
    headers["Authorization"] = headers["Authorization"].replace("/20261122/", "/20261121/")
    code, message = _code(headers, now=dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.UTC))
    assert code == "InvalidSignatureException" and "'20261121' != '20261122'" in message


@pytest.mark.parametrize("engine", ENGINES)
def test_content_sha256_header(engine):
    body = b'{"a":1}'
    declared = {"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()}
    headers = _signed(body, extra=declared)
    verify("POST", "/model/m/converse", "", headers, body, engine=engine)
    # The signed hash still matches the signature, but no longer the body.
    code, message = _code(headers, b'{"a":2}', engine=engine)
    assert code == "InvalidSignatureException" and "x-amz-content-sha256" in message
    unsigned = _signed(body, extra={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    assert _code(unsigned, engine=engine)[0] == "InvalidSignatureException"
    verify(
        "POST",
        "/model/m/converse",
        "",
        unsigned,
        b"anything",
        engine=engine,
        allow_unsigned_payload=True,
    )


def test_date_header_instead_of_x_amz_date():
    request = AWSRequest(
        method="POST",
        url="http://h/model/m/converse",
        data=b"{}",
        headers={"Date": "Sun, 22 Nov 2026 07:59:45 GMT"},
    )
    SigV4Auth(Credentials(AK, SK).get_frozen_credentials(), "bedrock", "us-west-2").add_auth(
        request
    )
    headers = {"Host": "h", **dict(request.headers.items())}
    assert "X-Amz-Date" not in headers
    for engine in ENGINES:
        verify("POST", "/model/m/converse", "", headers, b"{}", engine=engine)


def test_error_is_an_outcrop_error_in_aws_shape():
    from outcrop.errors import OutcropError

    with pytest.raises(OutcropError) as err:
        verify("POST", "/", "", {}, b"")
    assert err.value.aws_type == "MissingAuthenticationTokenException"
    assert err.value.aws_body() == b'{"message":"Missing Authentication Token"}'
