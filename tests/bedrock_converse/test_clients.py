"""Other clients: LangChain's ChatOpenAI and the in-process ``outcrop.completion``."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

import outcrop
from outcrop.testing import TEST_ACCESS_KEY, TEST_SECRET_KEY, ConverseReply, ToolUse

from .common import ALIAS, CLAUDE, MASTER_KEY, PNG_B64, USER


@pytest.fixture
def llm(gateway) -> ChatOpenAI:
    return ChatOpenAI(
        model=ALIAS,
        base_url=gateway.url + "/v1",
        api_key=MASTER_KEY,
        max_retries=0,
        stream_usage=True,
    )


@tool
def get_weather(city: str) -> str:
    """Current weather in a city."""
    return f"Sunny in {city}"


def test_langchain_invoke_and_stream(llm, bedrock_simulator):
    bedrock_simulator.reply(ConverseReply("Bonjour !", usage=(9, 2)))
    answer = llm.invoke([SystemMessage("Answer in French."), HumanMessage("Hello")])
    assert answer.content == "Bonjour !"
    assert (
        answer.usage_metadata["input_tokens"] == 9 and answer.usage_metadata["output_tokens"] == 2
    )
    assert bedrock_simulator.last().json()["system"] == [{"text": "Answer in French."}]
    pieces = list(llm.stream([HumanMessage("Hello")]))
    assert "".join(p.content for p in pieces) == "Bonjour !"
    assert sum(p.usage_metadata["output_tokens"] for p in pieces if p.usage_metadata) == 2


def test_langchain_image(llm, bedrock_simulator):
    llm.invoke(
        [
            HumanMessage(
                content=[
                    {"type": "text", "text": "Describe"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
                ]
            )
        ]
    )
    content = bedrock_simulator.last().json()["messages"][0]["content"]
    assert content[1]["image"]["format"] == "png"


@pytest.mark.parametrize("stream", [False, True])
def test_langchain_tool_loop(llm, bedrock_simulator, stream):
    bedrock_simulator.reply(
        ConverseReply(
            tool_calls=[
                ToolUse("get_weather", {"city": "Paris"}, id="tu1"),
                ToolUse("get_weather", {"city": "Rome"}, id="tu2"),
            ]
        ),
        times=1,
    )
    bedrock_simulator.reply(ConverseReply("Sunny in both."), times=1)
    with_tools = llm.bind_tools([get_weather])
    history = [HumanMessage("Weather in Paris and Rome?")]
    if stream:
        ai = None
        for piece in with_tools.stream(history):
            ai = piece if ai is None else ai + piece
    else:
        ai = with_tools.invoke(history)
    assert [(c["id"], c["args"]) for c in ai.tool_calls] == [
        ("tu1", {"city": "Paris"}),
        ("tu2", {"city": "Rome"}),
    ]
    history += [
        AIMessage(content=ai.content, tool_calls=ai.tool_calls),
        *(ToolMessage(get_weather.invoke(c["args"]), tool_call_id=c["id"]) for c in ai.tool_calls),
    ]
    final = with_tools.invoke(history)
    assert final.content == "Sunny in both."
    results = bedrock_simulator.last().json()["messages"][-1]["content"]
    assert [r["toolResult"]["content"][0]["text"] for r in results] == [
        "Sunny in Paris",
        "Sunny in Rome",
    ]


def test_langchain_structured_output(llm, bedrock_simulator):
    bedrock_simulator.reply(
        ConverseReply(tool_calls=[ToolUse("Person", {"name": "Ada", "age": 36})])
    )
    schema = {
        "title": "Person",
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    result = llm.with_structured_output(schema, method="json_schema").invoke("Who?")
    assert result == {"name": "Ada", "age": 36}


def _kwargs(simulator) -> dict:
    return {
        "aws_region_name": "us-west-2",
        "aws_access_key_id": TEST_ACCESS_KEY,
        "aws_secret_access_key": TEST_SECRET_KEY,
        "api_base": simulator.url,
    }


def test_python_api(bedrock_simulator):
    bedrock_simulator.reply(ConverseReply("Hi!", usage=(4, 1)))
    r = outcrop.completion(
        model=f"bedrock/{CLAUDE}",
        messages=USER,
        temperature=0.1,
        guardrailConfig={"guardrailIdentifier": "g", "guardrailVersion": "1"},
        **_kwargs(bedrock_simulator),
    )
    assert r.choices[0].message.content == "Hi!" and r.usage.prompt_tokens == 4
    assert r._hidden_params["response_cost"] == pytest.approx(4 * 3e-6 + 1 * 15e-6)
    body = bedrock_simulator.last().json()
    assert (
        body["inferenceConfig"] == {"temperature": 0.1}
        and body["guardrailConfig"]["guardrailIdentifier"] == "g"
    )


def test_python_api_stream_and_tools(bedrock_simulator):
    bedrock_simulator.reply(
        ConverseReply(tool_calls=[ToolUse("get_weather", {"city": "Oslo"}, id="x")])
    )
    chunks = list(
        outcrop.completion(
            model=f"bedrock/converse/{CLAUDE}",
            messages=USER,
            stream=True,
            tools=[{"type": "function", "function": {"name": "get_weather"}}],
            **_kwargs(bedrock_simulator),
        )
    )
    arguments = "".join(
        tc.function.arguments or ""
        for c in chunks
        if c.choices
        for tc in c.choices[0].delta.tool_calls or ()
    )
    assert json.loads(arguments) == {"city": "Oslo"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_python_api_async_errors(bedrock_simulator):
    from outcrop.testing import HttpError

    bedrock_simulator.reply(HttpError(429, "ThrottlingException", "slow down"))
    with pytest.raises(outcrop.OutcropError) as caught:
        await outcrop.acompletion(
            model=f"bedrock/{CLAUDE}", messages=USER, **_kwargs(bedrock_simulator)
        )
    assert caught.value.status == 429
    with pytest.raises(outcrop.OutcropError) as caught:
        await outcrop.acompletion(
            model=f"bedrock/{CLAUDE}", messages=USER, n=3, **_kwargs(bedrock_simulator)
        )
    assert caught.value.status == 400 and caught.value.param == "n"
