"""The same calls in-process: ``outcrop.completion`` / ``outcrop.acompletion``."""

from __future__ import annotations

import json

import pytest

import outcrop
from outcrop import OutcropError
from outcrop.testing import TEST_ACCESS_KEY, TEST_SECRET_KEY, AgentReply, HttpError

from .common import AGENT

USER = [{"role": "user", "content": "Summarise Q3"}]
STEPS = [("preProcessing", 12, 2), ("orchestration", 200, 40), ("postProcessing", 30, 9)]


@pytest.fixture
def sim_kwargs(bedrock_simulator) -> dict:
    return {
        "api_base": bedrock_simulator.url,
        "aws_region_name": "us-west-2",
        "aws_access_key_id": TEST_ACCESS_KEY,
        "aws_secret_access_key": TEST_SECRET_KEY,
    }


def test_completion_with_usage_cost_and_session(bedrock_simulator, sim_kwargs):
    bedrock_simulator.reply(
        AgentReply(["Q3 ", "was good."], usage_steps=STEPS), operation="InvokeAgent"
    )
    response = outcrop.completion(
        model=AGENT,
        messages=USER,
        invocationId="my-test-invocation-id",
        custom_llm_provider="bedrock",
        **sim_kwargs,
    )  # LiteLLM habit: ignored
    assert response.choices[0].message.content == "Q3 was good."
    assert response.usage.prompt_tokens == 242 and response.usage.completion_tokens == 51
    assert response.model == "anthropic.claude-3-5-sonnet-20240620-v1:0"
    assert response._hidden_params["response_cost"] == pytest.approx(242 * 3e-6 + 51 * 15e-6)
    session = response.session_id
    assert response._hidden_params["additional_headers"]["x-outcrop-session-id"] == session
    sent = bedrock_simulator.last("InvokeAgent")
    assert sent.json()["sessionState"] == {"invocationId": "my-test-invocation-id"}
    assert sent.region == "us-west-2" and sent.auth == "sigv4"
    # Continue the conversation in the same agent session.
    outcrop.completion(
        model=AGENT,
        messages=[
            *USER,
            {"role": "assistant", "content": "Q3 was good."},
            {"role": "user", "content": "And Q4?"},
        ],
        session_id=session,
        **sim_kwargs,
    )
    assert bedrock_simulator.last("InvokeAgent").params["sessionId"] == session
    assert bedrock_simulator.last("InvokeAgent").json() == {
        "inputText": "And Q4?",
        "enableTrace": True,
    }


def test_cost_override_from_keyword_arguments(bedrock_simulator, sim_kwargs):
    bedrock_simulator.reply(AgentReply(["ok"], usage_steps=STEPS), operation="InvokeAgent")
    response = outcrop.completion(
        model=AGENT,
        messages=USER,
        input_cost_per_token=1e-3,
        output_cost_per_token=2e-3,
        **sim_kwargs,
    )
    assert response._hidden_params["response_cost"] == pytest.approx(242 * 1e-3 + 51 * 2e-3)


def test_sync_streaming(bedrock_simulator, sim_kwargs):
    bedrock_simulator.reply(AgentReply(["a", "b", "c"], usage_steps=STEPS), operation="InvokeAgent")
    chunks = list(
        outcrop.completion(
            model=AGENT,
            messages=USER,
            stream=True,
            stream_options={"include_usage": True},
            **sim_kwargs,
        )
    )
    assert [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ] == ["a", "b", "c"]
    assert chunks[0].session_id
    assert chunks[-1].usage.total_tokens == 293
    assert bedrock_simulator.last("InvokeAgent").json()["streamingConfigurations"] == {
        "streamFinalResponse": True
    }


async def test_acompletion_and_async_streaming(bedrock_simulator, sim_kwargs):
    bedrock_simulator.reply(AgentReply(["x", "y"], usage_steps=STEPS), operation="InvokeAgent")
    response = await outcrop.acompletion(model=AGENT, messages=USER, **sim_kwargs)
    assert (
        response.choices[0].message.content == "xy" and response._hidden_params["response_cost"] > 0
    )
    stream = await outcrop.acompletion(model=AGENT, messages=USER, stream=True, **sim_kwargs)
    texts = [
        c.choices[0].delta.content async for c in stream if c.choices and c.choices[0].delta.content
    ]
    assert texts == ["x", "y"]


def test_tool_loop_through_the_python_api(bedrock_simulator, sim_kwargs):
    control = {
        "invocationId": "inv-7",
        "invocationInputs": [
            {
                "functionInvocationInput": {
                    "actionGroup": "Sales",
                    "function": "get_sales",
                    "parameters": [{"name": "quarter", "type": "string", "value": "Q3"}],
                }
            }
        ],
    }
    bedrock_simulator.reply(AgentReply(return_control=control), operation="InvokeAgent", times=1)
    first = outcrop.completion(model=AGENT, messages=USER, **sim_kwargs)
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, json.loads(call.function.arguments)) == (
        "Sales__get_sales",
        {"quarter": "Q3"},
    )
    outcrop.completion(
        model=AGENT,
        messages=[
            *USER,
            first.choices[0].message,
            {"role": "tool", "tool_call_id": call.id, "content": "$1M"},
        ],
        **sim_kwargs,
    )
    sent = bedrock_simulator.last("InvokeAgent")
    assert sent.params["sessionId"] == first.session_id
    assert sent.json()["sessionState"]["returnControlInvocationResults"] == [
        {
            "functionResult": {
                "actionGroup": "Sales",
                "function": "get_sales",
                "responseBody": {"TEXT": {"body": "$1M"}},
            }
        }
    ]


def test_errors_raise_outcrop_error(bedrock_simulator, sim_kwargs):
    bedrock_simulator.reply(
        HttpError(429, "ThrottlingException", "Rate exceeded"), operation="InvokeAgent"
    )
    with pytest.raises(OutcropError) as info:
        outcrop.completion(model=AGENT, messages=USER, **sim_kwargs)
    assert info.value.status == 429 and info.value.code == "ThrottlingException"
    with pytest.raises(OutcropError) as info:
        outcrop.completion(model=AGENT, messages=USER, not_a_param=1, **sim_kwargs)
    assert info.value.status == 400 and info.value.param == "not_a_param"
    with pytest.raises(OutcropError) as info:
        outcrop.completion(model="bedrock/agent/bad-id/x", messages=USER, **sim_kwargs)
    assert info.value.status == 400 and "{AGENT_ID}/{ALIAS_ID}" in info.value.message
