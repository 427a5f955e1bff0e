"""Agent frameworks with their default settings against agent, AgentCore and Converse
deployments: what they send by default (system prompts, sampling parameters, `n`, tools) must
not make the gateway refuse the call, and whatever could not be honoured is named in
`x-outcrop-dropped-params`.

LangChain and pydantic-ai are the real clients. Strands Agents and the `llm` CLI could not be
installed beside them (their `openai` requirements conflict), so the OpenAI SDK sends exactly
what they send by default (Strands: its tool list with `tool_choice: auto`; `llm -s ... -o
temperature 0.5`: a system message and a temperature).
"""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from outcrop.testing import CallEvents

KEY = "sk-frameworks"
AGENT = "bedrock/agent/AGENT12345/ALIAS12345"
RUNTIME = (
    "bedrock/agentcore/arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/fw_agent-AbCdEf1234"
)
CONVERSE = "bedrock/converse/amazon.nova-lite-v1:0"
TARGETS = ["agent", "agentcore", "converse"]


@pytest.fixture
def events(outcrop_plugin: Any) -> CallEvents:
    recorder = CallEvents()
    outcrop_plugin(recorder, "frameworks-events")
    return recorder


@pytest.fixture
def gateway(gateway_factory: Any, simulator_params: Any, events: CallEvents) -> Any:
    return gateway_factory(
        {
            "model_list": [
                {"model_name": "agent", "litellm_params": simulator_params(AGENT)},
                {"model_name": "agentcore", "litellm_params": simulator_params(RUNTIME)},
                {"model_name": "converse", "litellm_params": simulator_params(CONVERSE)},
            ],
            "general_settings": {"master_key": KEY},
        }
    )


def _answer_ok(text: str | None) -> None:
    assert text, "empty answer"


@pytest.mark.parametrize("model", TARGETS)
def test_langchain_with_a_system_message_and_temperature(gateway, model, events):
    from langchain_core.messages import HumanMessage, SystemMessage
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(
        model=model, base_url=gateway.url + "/v1", api_key=KEY, temperature=0.3, max_retries=0
    )
    reply = chat.invoke([SystemMessage("Be brief."), HumanMessage("hello")])
    _answer_ok(reply.content)
    dropped = events.last().extra.get("dropped_params") or []
    if model == "converse":
        assert dropped == []  # Converse honours both
    elif model == "agent":
        assert dropped == ["temperature", "system message"]
    else:
        assert dropped == ["temperature", "system message"]


@pytest.mark.parametrize("model", TARGETS)
def test_pydantic_ai_with_instructions(gateway, model, events):
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    provider = OpenAIProvider(base_url=gateway.url + "/v1", api_key=KEY)
    agent = Agent(OpenAIChatModel(model, provider=provider), instructions="Answer in one line.")
    result = agent.run_sync("hello")
    _answer_ok(result.output)
    if model == "agent":
        assert "system message" in (events.last().extra.get("dropped_params") or [])


@pytest.mark.parametrize("model", TARGETS)
def test_strands_style_request_always_sends_tools(gateway, model, events):
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=KEY, max_retries=0)
    tool = {
        "type": "function",
        "function": {
            "name": "current_time",
            "description": "The current time",
            "parameters": {"type": "object", "properties": {}},
        },
    }
    raw = client.chat.completions.with_raw_response.create(
        model=model,
        messages=[
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "hi"},
        ],
        tools=[tool],
        tool_choice="auto",
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(raw.parse())
    assert any(
        c.choices and (c.choices[0].delta.content or c.choices[0].delta.tool_calls) for c in chunks
    )
    if model == "agentcore":
        assert "tools" in raw.headers["x-outcrop-dropped-params"].split(",")


@pytest.mark.parametrize("model", TARGETS)
def test_llm_cli_style_system_and_temperature(gateway, model):
    r = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {KEY}"},
        json={
            "model": model,
            "messages": [
                {"role": "system", "content": "Speak like a pirate"},
                {"role": "user", "content": "hello"},
            ],
            "temperature": 0.5,
            "stream": False,
        },
    )
    assert r.status_code == 200, r.text
    if model != "converse":
        assert "temperature" in r.headers["x-outcrop-dropped-params"]


def test_strict_drop_params_false_still_refuses(gateway):
    r = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {KEY}"},
        json={
            "model": "agent",
            "messages": [{"role": "user", "content": "hello"}],
            "temperature": 0.5,
            "drop_params": False,
        },
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "temperature"
