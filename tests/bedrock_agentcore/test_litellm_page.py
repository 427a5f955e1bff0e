"""Every example of LiteLLM's AgentCore page, with `outcrop` for `litellm`, against the signature-verifying
simulator: the Python SDK, curl (raw HTTP), the OpenAI SDK and both proxy configs."""

from __future__ import annotations

import httpx
import openai
import pytest

import outcrop
from outcrop import OutcropError
from outcrop.testing import TEST_ACCESS_KEY, TEST_SECRET_KEY

from .common import API_CONFIG, AUTH, KEY, MODEL, PREFIX, SESSION_HEADER

LONG_SESSION = "session-abc-123-" + "0123456789abcdef0123456789"  # 42 characters


def _sdk_kwargs(sim):
    # the page's SDK examples rely on ambient AWS settings; here they point at the simulator
    return {
        "api_base": sim.url,
        "aws_access_key_id": TEST_ACCESS_KEY,
        "aws_secret_access_key": TEST_SECRET_KEY,
        "config": API_CONFIG,
    }


def _invocation(sim):
    recorded = sim.last("InvokeAgentRuntime")
    assert recorded.auth == "sigv4" and recorded.signing_service == "bedrock-agentcore"
    return recorded


# --- LiteLLM Python SDK section ----------------------------------------------------------------


def test_sdk_basic_completion(sim):
    response = outcrop.completion(
        model=MODEL,
        messages=[{"role": "user", "content": "Explain machine learning in simple terms"}],
        **_sdk_kwargs(sim),
    )
    assert (
        response.choices[0].message.content == "You said: Explain machine learning in simple terms"
    )
    assert (
        f"Usage: {response.usage}"
    )  # printable; the JSON agent reported none, so none is invented
    assert response.usage is None
    recorded = _invocation(sim)
    assert recorded.json() == {"prompt": "Explain machine learning in simple terms"}
    assert recorded.region == "us-west-2"  # from the ARN: the example sets no region
    assert recorded.params["agentRuntimeArn"] == MODEL.removeprefix(PREFIX)
    assert len(response.session_id) == 36
    assert (
        response._hidden_params["additional_headers"]["x-outcrop-session-id"] == response.session_id
    )


def test_sdk_streaming(sim):
    response = outcrop.completion(
        model=MODEL,
        messages=[
            {"role": "user", "content": "What are the key principles of software architecture?"}
        ],
        stream=True,
        **_sdk_kwargs(sim),
    )
    text = ""
    for chunk in response:
        if chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
    assert text == "You said: What are the key principles of software architecture?"
    assert _invocation(sim).headers["accept"] == "text/event-stream"


def test_sdk_provider_specific_parameters(sim):
    response = outcrop.completion(
        model=MODEL,
        messages=[{"role": "user", "content": "Analyze this data and provide insights"}],
        qualifier="production",
        runtimeSessionId=LONG_SESSION,
        **_sdk_kwargs(sim),
    )
    assert response.choices[0].message.content == "You said: Analyze this data and provide insights"
    recorded = _invocation(sim)
    assert recorded.query == {"qualifier": "production"}
    assert recorded.headers[SESSION_HEADER] == LONG_SESSION
    assert response.session_id == LONG_SESSION


def test_sdk_page_session_id_is_too_short_for_agentcore(sim):
    # The page's literal "session-abc-123" has 15 characters; AgentCore requires 33-256 (the
    # page's own table says "must be 33+ characters"), so the gateway answers a clear 400 before
    # calling AWS instead of a ValidationException from it.
    with pytest.raises(OutcropError) as info:
        outcrop.completion(
            model=MODEL,
            messages=[{"role": "user", "content": "Analyze this data and provide insights"}],
            qualifier="production",
            runtimeSessionId="session-abc-123",
            **_sdk_kwargs(sim),
        )
    assert info.value.status == 400 and info.value.param == "runtimeSessionId"
    assert "33 to 256 characters" in info.value.message and "got 15" in info.value.message
    assert sim.requests == []


# --- LiteLLM Proxy section ---------------------------------------------------------------------


def test_curl_basic_request(gateway, sim):
    r = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={**AUTH, "Content-Type": "application/json"},
        json={
            "model": "agentcore-runtime-1",
            "messages": [
                {"role": "user", "content": "Summarize the main benefits of cloud computing"}
            ],
        },
    )
    assert r.status_code == 200
    body = r.json()
    assert (
        body["choices"][0]["message"]["content"]
        == "You said: Summarize the main benefits of cloud computing"
    )
    assert body["session_id"] == r.headers["x-outcrop-session-id"] == r.headers[SESSION_HEADER]
    recorded = _invocation(sim)
    assert recorded.region == "us-west-2" and recorded.query == {}


def test_curl_streaming_request(gateway, sim):
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        headers=AUTH,
        json={
            "model": "agentcore-runtime-2",
            "messages": [
                {
                    "role": "user",
                    "content": "Explain the differences between SQL and NoSQL databases",
                }
            ],
            "stream": True,
        },
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert all(line.startswith("data: ") for line in lines)
    recorded = _invocation(sim)
    assert recorded.region == "us-east-1"
    assert recorded.params["agentRuntimeArn"].startswith(
        "arn:aws:bedrock-agentcore:us-east-1:987654321098:"
    )
    assert "Explain the differences" in "".join(lines)


def test_openai_sdk_completion(client, sim):
    response = client.chat.completions.create(
        model="agentcore-runtime-1",
        messages=[{"role": "user", "content": "What are best practices for API design?"}],
    )
    assert (
        response.choices[0].message.content == "You said: What are best practices for API design?"
    )
    assert response.choices[0].finish_reason == "stop"
    assert len(response.session_id) == 36


def test_openai_sdk_streaming(client, sim):
    stream = client.chat.completions.create(
        model="agentcore-runtime-2",
        messages=[{"role": "user", "content": "Describe the microservices architecture pattern"}],
        stream=True,
    )
    pieces = [
        chunk.choices[0].delta.content
        for chunk in stream
        if chunk.choices[0].delta.content is not None
    ]
    assert pieces == ["You said: ", "Describe the microservices architecture pattern"]


def test_proxy_config_with_qualifier(client, sim):
    response = client.chat.completions.create(
        model="agentcore-runtime-prod",
        messages=[{"role": "user", "content": "Analyze this data and provide insights"}],
        extra_body={"runtimeSessionId": LONG_SESSION},
    )
    assert response.choices[0].message.content == "You said: Analyze this data and provide insights"
    recorded = _invocation(sim)
    assert recorded.raw_query == "qualifier=production"
    assert recorded.headers[SESSION_HEADER] == LONG_SESSION
    assert response.session_id == LONG_SESSION


def test_request_qualifier_overrides_the_deployment(client, sim):
    client.chat.completions.create(
        model="agentcore-runtime-prod",
        messages=[{"role": "user", "content": "x"}],
        extra_body={"qualifier": "canary"},
    )
    assert _invocation(sim).query == {"qualifier": "canary"}


def test_proxy_page_session_id_gets_a_clear_400(client, sim):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="agentcore-runtime-prod",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"runtimeSessionId": "session-abc-123"},
        )
    assert info.value.body["param"] == "runtimeSessionId"
    assert info.value.body["code"] == "invalid_session_id"
    assert sim.requests == []


def test_page_placeholder_arn_is_valid_config_and_aws_judges_it(
    gateway_factory, simulator_params, sim
):
    # `runtime/my-agent-runtime` parses (the config of LiteLLM's AgentCore page starts as written); the runtime id
    # is AWS's to judge, and its ValidationException reaches the client as a 400.
    page_model = (
        PREFIX + "arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/my-agent-runtime"
    )
    gw = gateway_factory(
        {
            "model_list": [
                {
                    "model_name": "agentcore-runtime-1",
                    "litellm_params": simulator_params(page_model),
                }
            ]
        }
    )
    r = httpx.post(
        gw.url + "/v1/chat/completions",
        json={"model": "agentcore-runtime-1", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "ValidationException"
    assert "agentRuntimeArn" in r.json()["error"]["message"]
    assert sim.last().error == "ValidationException"
    assert KEY not in r.text
