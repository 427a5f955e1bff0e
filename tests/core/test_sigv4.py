"""The fast signer must produce exactly botocore's signature."""

import datetime
from urllib.parse import quote, urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from outcrop import sigv4
from outcrop.sigv4_canonical import canonical_query, canonical_uri

TS = "20261122T075945Z"
CASES = [
    (  # a new session's URL: the path is its own canonical URI, the origin has a port
        "POST",
        "http://127.0.0.1:8443/agents/AGENT12345/agentAliases/ALIAS12345/sessions/0f3a9c2e6b1d4e8fa0b1c2d3e4f5a6b7/text",
        {"Content-Type": "application/json"},
        b'{"inputText": "hi"}',
        "bedrock",
        "us-west-2",
        None,
    ),
    (  # a trailing slash, a dot inside a segment, a query
        "POST",
        "https://bedrock-runtime.us-west-2.amazonaws.com:443/model/amazon.nova-lite-v1/x.y/?b=2&a=1",
        {"Content-Type": "application/json"},
        b"{}",
        "bedrock",
        "us-west-2",
        None,
    ),
    (
        "POST",
        "https://bedrock-agent-runtime.us-west-2.amazonaws.com/agents/AGENT12345/agentAliases/ALIAS12345/sessions/sess%3A1/text",
        {"Content-Type": "application/json"},
        b'{"inputText": "hi"}',
        "bedrock",
        "us-west-2",
        None,
    ),
    (
        "POST",
        "https://bedrock-agentcore.us-west-2.amazonaws.com/runtimes/arn%3Aaws%3Abedrock-agentcore%3Aus-west-2%3A123456789012%3Aruntime%2Fmy_agent-AbCdEf1234/invocations?qualifier=DEFAULT",
        {
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
            "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id": "87535355-7280-43c0-bf2d-9edb30ac3026",
        },
        b'{"prompt":"hi"}',
        "bedrock-agentcore",
        "us-west-2",
        "session-token/xyz==",
    ),
    (
        "GET",
        "http://127.0.0.1:9000/async-invoke?maxResults=10&sortOrder=Descending&nextToken=a%2Fb",
        {"X-Custom": "  spaced   value  "},
        b"",
        "bedrock",
        "eu-central-1",
        None,
    ),
    (
        "POST",
        "http://localhost/model/arn%3Aaws%3Abedrock%3Aus-west-2%3A123456789012%3Ainference-profile%2Fus.anthropic.claude/invoke-with-response-stream",
        {
            "Content-Type": "application/json",
            "X-Amzn-Bedrock-Accept": "*/*",
            "User-Agent": "not-signed",
        },
        b"{}",
        "bedrock",
        "us-west-2",
        None,
    ),
]


@pytest.mark.parametrize("method,url,headers,body,service,region,token", CASES)
def test_signature_equals_botocore(method, url, headers, body, service, region, token):
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    ref = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    ref.context["timestamp"] = TS
    auth = SigV4Auth(creds.get_frozen_credentials(), service, region)
    ref.headers["X-Amz-Date"] = TS
    if token:
        ref.headers["X-Amz-Security-Token"] = token
    canonical = auth.canonical_request(ref)
    expected = auth.signature(auth.string_to_sign(ref, canonical), ref)

    mine = dict(headers)
    sigv4.sign(
        method,
        url,
        mine,
        body,
        access_key="AKIDEXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        token=token,
        region=region,
        service=service,
        timestamp=TS,
    )
    unsigned = {k: v for k, v in mine.items() if k != "Authorization"}
    got_canonical, _ = sigv4.canonical_request(method, url, unsigned, body)
    assert got_canonical == canonical
    assert mine["Authorization"].endswith(f"Signature={expected}")
    assert (
        f"Credential=AKIDEXAMPLE/20261122/{region}/{service}/aws4_request" in mine["Authorization"]
    )
    assert mine["X-Amz-Date"] == TS
    assert ("X-Amz-Security-Token" in mine) == bool(token)


def test_resigning_replaces_stale_auth_headers():
    headers = {
        "authorization": "AWS4-HMAC-SHA256 old",
        "x-amz-date": "19990101T000000Z",
        "X-Amz-Security-Token": "client-token",
    }
    sigv4.sign(
        "POST",
        "https://h/x",
        headers,
        b"",
        access_key="A",
        secret_key="S",
        token=None,
        region="us-east-1",
        service="bedrock",
        timestamp=TS,
    )
    assert [k for k in headers if k.lower() == "authorization"] == ["Authorization"]
    assert "X-Amz-Security-Token" not in headers and "x-amz-date" not in headers
    assert "client-token" not in str(headers)


def test_add_auth_roundtrip_with_botocore():
    """A request signed by botocore's add_auth and one signed by us verify the same way."""
    creds = Credentials("AKID", "SECRET")
    url = "https://bedrock-runtime.us-east-1.amazonaws.com/model/m%3A0/converse"
    req = AWSRequest(
        method="POST", url=url, data=b"{}", headers={"Content-Type": "application/json"}
    )
    SigV4Auth(creds, "bedrock", "us-east-1").add_auth(req)
    ts = req.headers["X-Amz-Date"]
    mine = {"Content-Type": "application/json"}
    sigv4.sign(
        "POST",
        url,
        mine,
        b"{}",
        access_key="AKID",
        secret_key="SECRET",
        token=None,
        region="us-east-1",
        service="bedrock",
        timestamp=ts,
    )
    assert mine["Authorization"] == req.headers["Authorization"]


@pytest.mark.parametrize("method,url,headers,body,service,region,token", CASES)
def test_shared_canonical_uri_and_query_equal_botocore(
    method, url, headers, body, service, region, token
):
    # The signer and the verifier both build these two lines with outcrop.sigv4_canonical.
    ref = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    ref.context["timestamp"] = TS
    auth = SigV4Auth(Credentials("A", "S").get_frozen_credentials(), service, region)
    _, uri, query = auth.canonical_request(ref).split("\n")[:3]
    parts = urlsplit(url)
    assert (canonical_uri(parts.path), canonical_query(parts.query)) == (uri, query)


def test_amz_date_follows_the_clock_second_by_second(monkeypatch):
    """The formatted second is reused within a second, never across one."""
    clock = [1_796_083_199.9]  # 2026-11-30T23:59:59.9Z
    monkeypatch.setattr(sigv4.time, "time", lambda: clock[0])
    assert sigv4.amz_date() == "20261130T235959Z"
    clock[0] = 1_796_083_199.99
    assert sigv4.amz_date() == "20261130T235959Z"
    clock[0] = 1_796_083_200.0  # the next day begins: the credential scope's date changes with it
    assert sigv4.amz_date() == "20261201T000000Z"
    when = datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    assert sigv4.amz_date(when) == "20250102T030405Z"


_SEGMENT = st.one_of(
    st.sampled_from(["", ".", "..", "%2E", "%2e%2E", "model", "~x", "a b", "%", "%zz", "%2F"]),
    # a label as the gateway writes it (botocore's escaping: ':' and '/' of an ARN encoded)
    st.text(min_size=1, max_size=12).map(lambda t: quote(t, safe="-._~")),
    st.sampled_from(
        ["arn:aws:bedrock:us-west-2:1:inference-profile/us.x", "é", "\u2028", "日本"]
    ).map(lambda t: quote(t, safe="-._~")),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=6),  # raw, unescaped
)


@settings(derandomize=True, max_examples=400, deadline=None)
@given(
    segments=st.lists(_SEGMENT, max_size=8),
    leading=st.booleans(),
    trailing=st.booleans(),
    query=st.sampled_from(["", "?qualifier=DEFAULT", "?a=%2F&b=1&a=0", "?x"]),
    token=st.sampled_from([None, "tok/en=="]),
)
def test_any_path_signs_as_botocore_signs_it(segments, leading, trailing, query, token):
    """Whatever the path (double slashes, dot segments, percent-escapes valid or not, ARNs,
    unicode, a trailing slash), the canonical request and the signature equal botocore's."""
    path = ("/" if leading else "") + "/".join(segments) + ("/" if trailing else "")
    url = "https://bedrock-runtime.us-west-2.amazonaws.com" + (path if leading else "/" + path)
    url += query
    headers = {"Content-Type": "application/json"}
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    ref = AWSRequest(method="POST", url=url, data=b"{}", headers=dict(headers))
    ref.context["timestamp"] = TS
    ref.headers["X-Amz-Date"] = TS
    if token:
        ref.headers["X-Amz-Security-Token"] = token
    auth = SigV4Auth(creds.get_frozen_credentials(), "bedrock", "us-west-2")
    expected = auth.signature(auth.string_to_sign(ref, auth.canonical_request(ref)), ref)
    mine = dict(headers)
    sigv4.sign(
        "POST",
        url,
        mine,
        b"{}",
        access_key="AKIDEXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        token=token,
        region="us-west-2",
        service="bedrock",
        timestamp=TS,
    )
    assert mine["Authorization"].endswith(f"Signature={expected}")
    assert canonical_uri(urlsplit(url).path) == auth.canonical_request(ref).split("\n")[1]
