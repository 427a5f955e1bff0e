"""The same calls in-process through ``outcrop.completion``/``acompletion``, and the demo model."""

from __future__ import annotations

import httpx
import pytest

import outcrop
from outcrop import Gateway, parse_config
from outcrop.testing import TEST_ACCESS_KEY, TEST_SECRET_KEY, RuntimeReply

from .common import API_CONFIG, MODEL, MODEL_EU, PREFIX, SESSION_HEADER, USER

SESSION = "python-api-session-0123456789abcdefghij"


@pytest.fixture
def creds(sim):
    return {
        "api_base": sim.url,
        "aws_access_key_id": TEST_ACCESS_KEY,
        "aws_secret_access_key": TEST_SECRET_KEY,
        "config": API_CONFIG,
    }


async def test_acompletion(sim, creds):
    sim.reply(RuntimeReply.strands(["Async ", "answer"], usage=(8, 2)))
    response = await outcrop.acompletion(
        model=MODEL, messages=USER, qualifier="production", runtimeSessionId=SESSION, **creds
    )
    assert response.choices[0].message.content == "Async answer"
    assert response.usage.total_tokens == 10
    assert response.session_id == SESSION
    assert response._hidden_params["additional_headers"][SESSION_HEADER] == SESSION
    assert response._hidden_params["region"] == "us-west-2"
    recorded = sim.last()
    assert (
        recorded.query == {"qualifier": "production"}
        and recorded.headers[SESSION_HEADER] == SESSION
    )


async def test_acompletion_stream(sim, creds):
    sim.reply(RuntimeReply.strands(["one ", "two"], usage=(5, 2)))
    stream = await outcrop.acompletion(
        model=MODEL_EU, messages=USER, stream=True, stream_options={"include_usage": True}, **creds
    )
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "one two"
    assert chunks[0].session_id and chunks[-1].usage.total_tokens == 7
    assert sim.last().region == "eu-central-1"


def test_completion_cost_uses_reported_usage(sim, creds):
    sim.reply(RuntimeReply.strands(["priced"], usage=(1000, 100)))
    response = outcrop.completion(
        model=MODEL, messages=USER, input_cost_per_token=1e-6, output_cost_per_token=2e-6, **creds
    )
    assert response._hidden_params["response_cost"] == pytest.approx(1000 * 1e-6 + 100 * 2e-6)


def test_completion_payload_and_user_kwargs(sim, creds):
    outcrop.completion(
        model=MODEL,
        messages=USER,
        payload={"task": "report", "year": 2026},
        runtimeUserId="user-42",
        traceParent="00-abc-def-01",
        **creds,
    )
    recorded = sim.last()
    assert recorded.json() == {"task": "report", "year": 2026}
    assert recorded.headers["x-amzn-bedrock-agentcore-runtime-user-id"] == "user-42"
    assert recorded.headers["traceparent"] == "00-abc-def-01"


def test_completion_streams_a_mid_stream_error(sim, creds):
    sim.reply(RuntimeReply.sse(["partial"], error=("boom", "RuntimeError")))
    stream = outcrop.completion(model=MODEL, messages=USER, stream=True, **creds)
    first = next(stream)
    assert first.choices[0].delta.content == "partial"
    with pytest.raises(outcrop.OutcropError, match="RuntimeError: boom"):
        next(stream)


def test_bad_arn_through_the_python_api(sim, creds):
    with pytest.raises(outcrop.OutcropError, match="not an AWS region"):
        outcrop.completion(
            model=PREFIX + "arn:aws:bedrock-agentcore:west:123456789012:runtime/a",
            messages=USER,
            **creds,
        )
    assert sim.requests == []


def test_registered_example_serves_the_demo(gateway_factory, sim):
    # `outcrop demo` configures each registered example in us-west-2 with the test keys, against
    # the simulator's default replies; both a plain and a streamed call must work there.
    prefix = next(p for p in Gateway(parse_config({})).model_prefixes if p.prefix == PREFIX)
    assert prefix.distribution == "outcrop-bedrock-agentcore"
    gw = gateway_factory(
        {
            "model_list": [
                {
                    "model_name": "demo-bedrock-agentcore",
                    "litellm_params": {
                        "model": prefix.example,
                        "aws_region_name": "us-west-2",
                        "aws_access_key_id": TEST_ACCESS_KEY,
                        "aws_secret_access_key": TEST_SECRET_KEY,
                        "api_base": sim.url,
                    },
                }
            ],
            "general_settings": {"master_key": "sk-test"},
        }
    )
    body = {"model": "demo-bedrock-agentcore", "messages": [{"role": "user", "content": "Hello"}]}
    r = httpx.post(
        gw.url + "/v1/chat/completions", headers={"Authorization": "Bearer sk-test"}, json=body
    )
    assert (
        r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "You said: Hello"
    )
    r = httpx.post(
        gw.url + "/v1/chat/completions",
        headers={"Authorization": "Bearer sk-test"},
        json={**body, "stream": True},
    )
    assert (
        r.status_code == 200
        and '"content":"Hello"' in r.text
        and r.text.endswith("data: [DONE]\n\n")
    )
