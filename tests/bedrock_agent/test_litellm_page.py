"""LiteLLM's Bedrock Agents page as written: the proxy's curl and OpenAI SDK calls, and the Python SDK calls with
``outcrop`` in place of ``litellm`` (credentials and endpoint from the environment, as there)."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

import outcrop
from outcrop.testing import TEST_ACCESS_KEY, TEST_SECRET_KEY, AgentReply

from .common import AGENT, MASTER_KEY


def _sse_payloads(response: httpx.Response) -> list[str]:
    return [line[6:] for line in response.iter_lines() if line.startswith("data: ")]


def test_curl_basic_agent_request(gateway, bedrock_simulator):
    body = """{
    "model": "bedrock-agent-1",
    "messages": [
      {
        "role": "user",
        "content": "Analyze our customer data and suggest retention strategies"
      }
    ]
  }"""
    r = httpx.post(
        gateway.url + "/v1/chat/completions",
        content=body,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {MASTER_KEY}"},
    )
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["object"] == "chat.completion"
    assert data["choices"][0]["message"]["content"] == (
        "You said: Analyze our customer data and suggest retention strategies"
    )
    assert data["choices"][0]["finish_reason"] == "stop"
    assert data["usage"]["total_tokens"] > 0
    assert data["model"] == "anthropic.claude-3-5-sonnet-20240620-v1:0"
    assert data["session_id"] == r.headers["x-outcrop-session-id"]
    sent = bedrock_simulator.last("InvokeAgent")
    assert sent.auth == "sigv4" and sent.signing_service == "bedrock" and sent.region == "us-west-2"
    assert sent.params == {
        "agentId": "L1RT58GYRW",
        "agentAliasId": "MFPSBCXYTW",
        "sessionId": data["session_id"],
    }
    assert sent.json()["inputText"] == "Analyze our customer data and suggest retention strategies"


def test_curl_streaming_agent_request(gateway, bedrock_simulator):
    body = """{
    "model": "bedrock-agent-2",
    "messages": [
      {
        "role": "user",
        "content": "Create a comprehensive social media strategy for our new product"
      }
    ],
    "stream": true
  }"""
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        content=body,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {MASTER_KEY}"},
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        session = r.headers["x-outcrop-session-id"]
        payloads = _sse_payloads(r)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == "You said: Create a comprehensive social media strategy for our new product"
    assert chunks[0]["session_id"] == session
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    sent = bedrock_simulator.last("InvokeAgent")
    assert sent.params["agentId"] == "AGENT456" and sent.params["agentAliasId"] == "ALIAS789"
    assert sent.region == "us-east-1"
    assert sent.json()["streamingConfigurations"] == {"streamFinalResponse": True}


def test_openai_sdk_examples(gateway, bedrock_simulator):
    # The proxy docs point the SDK at the bare base URL (no /v1); both routes serve chat.
    client = openai.OpenAI(api_key=MASTER_KEY, base_url=gateway.url, max_retries=0)
    response = client.chat.completions.create(
        model="bedrock-agent-1",
        messages=[
            {
                "role": "user",
                "content": "Analyze our customer data and suggest retention strategies",
            }
        ],
    )
    assert response.choices[0].message.content.startswith("You said: Analyze")
    assert response.model_extra["session_id"]
    stream = client.chat.completions.create(
        model="bedrock-agent-2",
        messages=[
            {
                "role": "user",
                "content": "Create a comprehensive social media strategy for our new product",
            }
        ],
        stream=True,
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "You said: Create a comprehensive social media strategy for our new product"


def test_provider_specific_parameter_in_proxy_request(gateway, client, bedrock_simulator):
    response = client.chat.completions.create(
        model="bedrock-agent-1",
        messages=[
            {
                "role": "user",
                "content": "Hi who is ishaan cto of litellm, tell me 10 things about him",
            }
        ],
        extra_body={"invocationId": "my-test-invocation-id"},
    )
    assert response.choices[0].message.content
    sent = bedrock_simulator.last("InvokeAgent").json()
    assert sent["sessionState"] == {"invocationId": "my-test-invocation-id"}
    assert "invocationId" not in {k for k in sent if k != "sessionState"}


def test_provider_specific_parameter_in_proxy_config(
    events, gateway_factory, simulator_params, bedrock_simulator
):
    running = gateway_factory(
        {
            "model_list": [
                {
                    "model_name": "bedrock-agent-1",
                    "litellm_params": simulator_params(AGENT, invocationId="my-test-invocation-id"),
                }
            ]
        }
    )
    client = openai.OpenAI(base_url=running.url + "/v1", api_key="unused", max_retries=0)
    client.chat.completions.create(
        model="bedrock-agent-1", messages=[{"role": "user", "content": "hi"}]
    )
    assert bedrock_simulator.last("InvokeAgent").json()["sessionState"] == {
        "invocationId": "my-test-invocation-id"
    }


@pytest.fixture
def aws_env(bedrock_simulator, monkeypatch, tmp_path):
    """AWS settings from the environment, as the page's Python snippets expect (each test has
    its own in-process gateway, see conftest, so no cached settings of another test apply)."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME", bedrock_simulator.url)


def test_python_sdk_basic_agent_completion(aws_env, bedrock_simulator):
    bedrock_simulator.reply(
        AgentReply(["Here is ", "your Q3 summary."], usage_steps=[(100, 20), (50, 10)]),
        operation="InvokeAgent",
    )
    # Make a completion request to your Bedrock Agent
    response = outcrop.completion(
        model="bedrock/agent/L1RT58GYRW/MFPSBCXYTW",  # agent/{AGENT_ID}/{ALIAS_ID}
        messages=[
            {
                "role": "user",
                "content": "Hi, I need help with analyzing our Q3 sales data and generating a summary report",
            }
        ],
    )
    print(response.choices[0].message.content)
    print(f"Response cost: ${response._hidden_params['response_cost']}")
    assert response.choices[0].message.content == "Here is your Q3 summary."
    assert response.usage.prompt_tokens == 150 and response.usage.completion_tokens == 30
    # claude-3-5-sonnet: $3 / $15 per million tokens
    assert response._hidden_params["response_cost"] == pytest.approx(150 * 3e-6 + 30 * 15e-6)
    assert bedrock_simulator.last("InvokeAgent").access_key == TEST_ACCESS_KEY


def test_python_sdk_streaming_agent_responses(aws_env, bedrock_simulator):
    response = outcrop.completion(
        model="bedrock/agent/L1RT58GYRW/MFPSBCXYTW",
        messages=[
            {
                "role": "user",
                "content": "Can you help me plan a marketing campaign and provide step-by-step execution details?",
            }
        ],
        stream=True,
    )
    printed = []
    for chunk in response:
        if chunk.choices[0].delta.content:
            printed.append(chunk.choices[0].delta.content)
    assert "".join(printed) == (
        "You said: Can you help me plan a marketing campaign and provide "
        "step-by-step execution details?"
    )
    assert len(printed) > 1


def test_python_sdk_custom_parameters(aws_env, bedrock_simulator):
    response = outcrop.completion(
        model="bedrock/agent/L1RT58GYRW/MFPSBCXYTW",
        messages=[
            {
                "role": "user",
                "content": "Hi who is ishaan cto of litellm, tell me 10 things about him",
            }
        ],
        invocationId="my-test-invocation-id",  # PROVIDER-SPECIFIC VALUE
    )
    assert response.choices[0].message.content.startswith("You said: Hi who is ishaan")
    sent = bedrock_simulator.last("InvokeAgent").json()
    assert sent["sessionState"]["invocationId"] == "my-test-invocation-id"
