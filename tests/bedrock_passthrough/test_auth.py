"""Client authentication on /bedrock/*: SigV4 with gateway-issued keys (verified over the raw
request), the master key as a bearer token, and the headers that never reach AWS."""

from __future__ import annotations

import datetime as dt

import botocore.auth
import httpx
import pytest
from botocore.exceptions import ClientError

from outcrop.testing import TEST_ACCESS_KEY

from .common import ALIAS, MASTER_KEY, SDK_KEY_ID, sigv4_client

MESSAGES = [{"role": "user", "content": [{"text": "hi"}]}]


def _error(caught: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    response = caught.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


def test_tampered_body_is_rejected(gateway, bedrock_simulator, recorder):
    client = sigv4_client("bedrock-runtime", gateway.url)

    def tamper(request, **_):  # after signing, before sending
        request.body = request.body.replace(b'"hi"', b'"HI"')

    client.meta.events.register("before-send.bedrock-runtime.Converse", tamper)
    with pytest.raises(ClientError) as caught:
        client.converse(modelId=ALIAS, messages=MESSAGES)
    status, code, message = _error(caught)
    assert (status, code) == (403, "InvalidSignatureException")
    assert message.startswith("The request signature we calculated does not match")
    assert bedrock_simulator.requests == []  # nothing reached AWS
    assert recorder.last().status == 403 and recorder.last().error.startswith(
        "InvalidSignatureException"
    )


def test_tampered_path_is_rejected(gateway, bedrock_simulator):
    client = sigv4_client("bedrock-runtime", gateway.url)

    def retarget(request, **_):
        request.url = request.url.replace("my-bedrock-model", "cohere.command-r-v1%3A0")

    client.meta.events.register("before-send.bedrock-runtime.Converse", retarget)
    with pytest.raises(ClientError) as caught:
        client.converse(modelId=ALIAS, messages=MESSAGES)
    assert _error(caught)[1] == "InvalidSignatureException"
    assert bedrock_simulator.requests == []


def test_expired_signature_is_rejected(gateway, monkeypatch, bedrock_simulator):
    client = sigv4_client("bedrock-runtime", gateway.url)
    then = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=16)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: then)
    with pytest.raises(ClientError) as caught:
        client.converse(modelId=ALIAS, messages=MESSAGES)
    status, code, message = _error(caught)
    assert (status, code) == (403, "InvalidSignatureException")
    assert message.startswith("Signature expired")
    assert bedrock_simulator.requests == []


def test_signature_within_the_clock_window_is_accepted(gateway, monkeypatch, bedrock_simulator):
    client = sigv4_client("bedrock-runtime", gateway.url)
    then = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=10)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: then)
    client.converse(modelId=ALIAS, messages=MESSAGES)
    assert bedrock_simulator.last("Converse").error is None


def test_unknown_key_and_wrong_secret(gateway, bedrock_simulator):
    with pytest.raises(ClientError) as caught:
        sigv4_client("bedrock-runtime", gateway.url, key_id="AKIDNOBODYKNOWS00001").converse(
            modelId=ALIAS, messages=MESSAGES
        )
    assert _error(caught)[:2] == (403, "UnrecognizedClientException")
    with pytest.raises(ClientError) as caught:
        sigv4_client(
            "bedrock-runtime", gateway.url, secret="not-the-secret-at-all-000000"
        ).converse(modelId=ALIAS, messages=MESSAGES)
    assert _error(caught)[:2] == (403, "InvalidSignatureException")


def test_agentcore_signature_must_be_scoped_to_its_service(gateway, bedrock_simulator):
    client = sigv4_client("bedrock-agentcore", gateway.url)

    def rescope(request, **_):  # a bedrock-scoped signature replayed on an AgentCore path
        request.headers["Authorization"] = request.headers["Authorization"].replace(
            b"/bedrock-agentcore/", b"/bedrock/"
        )

    client.meta.events.register("before-send.bedrock-agentcore.InvokeAgentRuntime", rescope)
    with pytest.raises(ClientError) as caught:
        client.invoke_agent_runtime(
            agentRuntimeArn="arn:aws:bedrock-agentcore:us-east-1:123456789012:"
            "runtime/my_agent-AbCdEf1234",
            runtimeSessionId="s" * 40,
            payload=b"{}",
        )
    assert _error(caught)[1] == "InvalidSignatureException"
    assert "bedrock-agentcore" in _error(caught)[2]


def test_bearer_and_api_key_headers(gateway, bedrock_simulator):
    url = f"{gateway.url}/bedrock/model/{ALIAS}/count-tokens"
    body = b'{"input": {"converse": {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}}}'
    assert (
        httpx.post(url, content=body, headers={"Authorization": f"Bearer {MASTER_KEY}"}).status_code
        == 200
    )
    assert httpx.post(url, content=body, headers={"x-api-key": MASTER_KEY}).status_code == 200
    r = httpx.post(url, content=body, headers={"Authorization": "Bearer wrong"})
    assert (r.status_code, r.headers["x-amzn-errortype"]) == (403, "UnrecognizedClientException")
    r = httpx.post(url, content=body)
    assert (r.status_code, r.headers["x-amzn-errortype"]) == (
        403,
        "MissingAuthenticationTokenException",
    )
    assert r.headers["x-amzn-requestid"] == r.headers["x-request-id"]
    assert MASTER_KEY not in r.text


def test_client_credentials_and_transport_headers_never_reach_aws(gateway, bedrock_simulator):
    headers = {
        "Authorization": f"Bearer {MASTER_KEY}",
        "Content-Type": "application/json",
        "X-Amz-Date": "20200101T000000Z",
        "X-Amz-Security-Token": "client-session-token",
        "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD",
        "X-Forwarded-For": "10.0.0.1",
        "X-Forwarded-Proto": "https",
        "Cookie": "session=secret",
        "Proxy-Authorization": "Basic c2VjcmV0",
        "X-Amzn-Bedrock-Trace": "ENABLED",
        "X-Amzn-Bedrock-GuardrailIdentifier": "gr1",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "baggage": "team=search",
        "X-Custom-Thing": "dropped",
    }
    r = httpx.post(
        f"{gateway.url}/bedrock/model/{ALIAS}/invoke", content=b'{"prompt": "x"}', headers=headers
    )
    assert r.status_code == 200, r.text
    seen = bedrock_simulator.last("InvokeModel")
    assert seen.error is None and seen.access_key == TEST_ACCESS_KEY
    for dropped in (
        "x-amz-security-token",
        "x-amz-content-sha256",
        "x-forwarded-for",
        "x-forwarded-proto",
        "cookie",
        "proxy-authorization",
        "x-custom-thing",
    ):
        assert dropped not in seen.headers, dropped
    assert seen.headers["authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential={TEST_ACCESS_KEY}/"
    )
    assert seen.headers["x-amz-date"] != "20200101T000000Z"
    assert seen.headers["x-amzn-bedrock-trace"] == "ENABLED"
    assert seen.headers["x-amzn-bedrock-guardrailidentifier"] == "gr1"
    assert (
        seen.headers["traceparent"].startswith("00-0af7")
        and seen.headers["baggage"] == "team=search"
    )


def test_open_gateway_accepts_any_caller(gateway_factory, make_config, bedrock_simulator):
    gw = gateway_factory(make_config(master_key=None, keys=[]))
    url = f"{gw.url}/bedrock/model/{ALIAS}/converse"
    body = b'{"messages": [{"role": "user", "content": [{"text": "hi"}]}]}'
    assert httpx.post(url, content=body).status_code == 200
    assert (
        httpx.post(url, content=body, headers={"Authorization": "Bearer anything"}).status_code
        == 200
    )
    client = sigv4_client(
        "bedrock-runtime", gw.url, key_id="AKIDANYKEY0000000001", secret="whatever-secret-0000"
    )
    client.converse(modelId=ALIAS, messages=MESSAGES)


def test_sigv4_needs_configured_keys_when_a_master_key_is_set(
    gateway_factory, make_config, bedrock_simulator, monkeypatch
):
    monkeypatch.setenv("OUTCROP_DISABLE_PLUGINS", "keys")  # no plugin issues key pairs either
    gw = gateway_factory(make_config(keys=[]))
    with pytest.raises(ClientError) as caught:
        sigv4_client("bedrock-runtime", gw.url).converse(modelId=ALIAS, messages=MESSAGES)
    status, code, message = _error(caught)
    assert (status, code) == (403, "UnrecognizedClientException")
    assert "bedrock_passthrough.keys" in message and SDK_KEY_ID not in message


def test_without_a_master_key_configured_key_pairs_close_the_gateway(
    gateway_factory, make_config, bedrock_simulator
):
    gw = gateway_factory(make_config(master_key=None))
    sigv4_client("bedrock-runtime", gw.url).converse(modelId=ALIAS, messages=MESSAGES)
    with pytest.raises(ClientError) as caught:
        sigv4_client("bedrock-runtime", gw.url, secret="not-the-secret-at-all-000000").converse(
            modelId=ALIAS, messages=MESSAGES
        )
    assert _error(caught)[:2] == (403, "InvalidSignatureException")
    body = b'{"messages": [{"role": "user", "content": [{"text": "hi"}]}]}'
    r = httpx.post(f"{gw.url}/bedrock/model/{ALIAS}/converse", content=body)
    # key pairs are a client credential: unsigned callers are refused, here and on /v1/*
    assert (
        r.status_code == 403
        and r.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    )
    r = httpx.post(
        f"{gw.url}/bedrock/model/{ALIAS}/converse",
        content=body,
        headers={"Authorization": "Bearer anything"},
    )
    assert r.status_code == 403 and r.headers["x-amzn-errortype"] == "UnrecognizedClientException"
    assert httpx.get(f"{gw.url}/v1/models").status_code == 401
