"""Tools: definitions and tool_choice, the full tool loop (streamed and not), parallel calls,
streamed argument deltas, and the forced tool behind response_format."""

from __future__ import annotations

import json

import openai
import pytest

from outcrop.testing import ConverseReply, ToolUse

from .common import ALIAS, USER

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}
ASK = [{"role": "user", "content": "Weather in Paris and Lyon?"}]


def _tool_config(simulator):
    return simulator.last().json().get("toolConfig")


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, {"auto": {}}),
        ("auto", {"auto": {}}),
        ("required", {"any": {}}),
        ({"type": "function", "function": {"name": "get_time"}}, {"tool": {"name": "get_time"}}),
    ],
)
def test_tool_definitions_and_choice(client, bedrock_simulator, choice, expected):
    extra = {} if choice is None else {"tool_choice": choice}
    client.chat.completions.create(model=ALIAS, messages=USER, tools=[WEATHER, TIME], **extra)
    config = _tool_config(bedrock_simulator)
    assert config["toolChoice"] == expected
    assert config["tools"][0] == {
        "toolSpec": {
            "name": "get_weather",
            "description": "Current weather in a city",
            "inputSchema": {"json": WEATHER["function"]["parameters"]},
        }
    }
    assert config["tools"][1] == {
        "toolSpec": {
            "name": "get_time",
            "inputSchema": {"json": {"type": "object", "properties": {}}},
        }
    }


def test_tool_choice_none_sends_no_tool_config(client, bedrock_simulator):
    client.chat.completions.create(model=ALIAS, messages=USER, tools=[WEATHER], tool_choice="none")
    assert _tool_config(bedrock_simulator) is None


def test_full_loop_with_parallel_calls(client, bedrock_simulator):
    bedrock_simulator.reply(
        ConverseReply(
            "Let me check.",
            tool_calls=[
                ToolUse("get_weather", {"city": "Paris"}, id="tooluse_1"),
                ToolUse("get_weather", {"city": "Lyon"}, id="tooluse_2"),
            ],
        ),
        times=1,
    )
    first = client.chat.completions.create(model=ALIAS, messages=ASK, tools=[WEATHER])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Let me check."
    calls = choice.message.tool_calls
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("tooluse_1", "get_weather", {"city": "Paris"}),
        ("tooluse_2", "get_weather", {"city": "Lyon"}),
    ]
    bedrock_simulator.reply(ConverseReply("Sunny in both."))
    history = [
        *ASK,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": "tooluse_1", "content": "22C sunny"},
        {
            "role": "tool",
            "tool_call_id": "tooluse_2",
            "content": [{"type": "text", "text": "25C sunny"}],
        },
    ]
    second = client.chat.completions.create(model=ALIAS, messages=history, tools=[WEATHER])
    assert second.choices[0].message.content == "Sunny in both."
    assert bedrock_simulator.last().json()["messages"] == [
        {"role": "user", "content": [{"text": "Weather in Paris and Lyon?"}]},
        {
            "role": "assistant",
            "content": [
                {"text": "Let me check."},
                {
                    "toolUse": {
                        "toolUseId": "tooluse_1",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    }
                },
                {
                    "toolUse": {
                        "toolUseId": "tooluse_2",
                        "name": "get_weather",
                        "input": {"city": "Lyon"},
                    }
                },
            ],
        },
        {
            "role": "user",
            "content": [  # consecutive results folded into one user turn
                {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "22C sunny"}]}},
                {"toolResult": {"toolUseId": "tooluse_2", "content": [{"text": "25C sunny"}]}},
            ],
        },
    ]


def test_streamed_tool_calls_arrive_as_argument_deltas(client, bedrock_simulator):
    bedrock_simulator.reply(
        ConverseReply(
            tool_calls=[
                ToolUse("get_weather", {"city": "Paris"}, id="t1"),
                ToolUse("get_time", {}, id="t2"),
            ],
            tool_input_pieces=3,
        )
    )
    chunks = list(
        client.chat.completions.create(
            model=ALIAS, messages=ASK, tools=[WEATHER, TIME], stream=True
        )
    )
    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or ())]
    starts = [d for d in deltas if d.id]
    assert [(d.index, d.id, d.function.name) for d in starts] == [
        (0, "t1", "get_weather"),
        (1, "t2", "get_time"),
    ]
    pieces = [d.function.arguments for d in deltas if d.index == 0 and not d.id]
    assert len(pieces) == 3 and json.loads("".join(pieces)) == {"city": "Paris"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_streamed_loop_with_the_async_client(aclient, bedrock_simulator):
    bedrock_simulator.reply(ConverseReply(tool_calls=[ToolUse("get_time", {}, id="t9")]), times=1)
    stream = await aclient.chat.completions.create(
        model=ALIAS, messages=USER, tools=[TIME], stream=True
    )
    calls: dict[int, dict] = {}
    async for chunk in stream:
        for d in chunk.choices[0].delta.tool_calls or () if chunk.choices else ():
            call = calls.setdefault(d.index, {"id": d.id, "name": "", "arguments": ""})
            call["name"] += d.function.name or ""
            call["arguments"] += d.function.arguments or ""
    assert calls == {0: {"id": "t9", "name": "get_time", "arguments": "{}"}}
    history = [
        *USER,
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "t9",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "t9", "content": "noon"},
    ]
    stream = await aclient.chat.completions.create(
        model=ALIAS, messages=history, tools=[TIME], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "You said: noon"  # the simulator's echo of the tool result


def test_bad_tool_arguments_and_tools_are_400(client, bedrock_simulator):
    bad_args = [
        *USER,
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "t", "type": "function", "function": {"name": "f", "arguments": "[1, 2]"}}
            ],
        },
    ]
    with pytest.raises(openai.BadRequestError, match="must be a JSON object"):
        client.chat.completions.create(model=ALIAS, messages=bad_args)
    with pytest.raises(openai.BadRequestError, match="only function tools"):
        client.chat.completions.create(model=ALIAS, messages=USER, tools=[{"type": "web_search"}])
    with pytest.raises(openai.BadRequestError, match="1-64 letters"):
        client.chat.completions.create(
            model=ALIAS,
            messages=USER,
            tools=[{"type": "function", "function": {"name": "has space"}}],
        )
    with pytest.raises(openai.BadRequestError, match="tool_call_id"):
        client.chat.completions.create(
            model=ALIAS, messages=[*USER, {"role": "tool", "content": "x"}]
        )
    assert bedrock_simulator.requests == []


SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}
FORMAT = {"type": "json_schema", "json_schema": {"name": "person", "schema": SCHEMA}}


@pytest.mark.parametrize("stream", [False, True])
def test_json_schema_output_comes_back_as_content(client, bedrock_simulator, stream):
    bedrock_simulator.reply(
        ConverseReply(tool_calls=[ToolUse("person", {"name": "Ada", "age": 36})])
    )
    r = client.chat.completions.create(
        model=ALIAS, messages=USER, response_format=FORMAT, stream=stream
    )
    if stream:
        chunks = list(r)
        content = "".join(c.choices[0].delta.content or "" for c in chunks)
        finish = chunks[-1].choices[0].finish_reason
        assert not any(c.choices[0].delta.tool_calls for c in chunks)
    else:
        content, finish = r.choices[0].message.content, r.choices[0].finish_reason
        assert r.choices[0].message.tool_calls is None
    assert json.loads(content) == {"name": "Ada", "age": 36} and finish == "stop"
    config = _tool_config(bedrock_simulator)
    assert config == {
        "tools": [
            {
                "toolSpec": {
                    "name": "person",
                    "description": "Respond with a JSON object that follows this schema.",
                    "inputSchema": {"json": SCHEMA},
                }
            }
        ],
        "toolChoice": {"tool": {"name": "person"}},
    }


def test_json_object_with_the_sdk_parse_helper(client, bedrock_simulator):
    bedrock_simulator.reply(ConverseReply(tool_calls=[ToolUse("json_tool_call", {"ok": True})]))
    r = client.chat.completions.create(
        model=ALIAS, messages=USER, response_format={"type": "json_object"}
    )
    assert json.loads(r.choices[0].message.content) == {"ok": True}
    assert _tool_config(bedrock_simulator)["toolChoice"] == {"tool": {"name": "json_tool_call"}}


def test_response_format_beside_own_tools_lets_the_model_choose(client, bedrock_simulator):
    bedrock_simulator.reply(ConverseReply(tool_calls=[ToolUse("get_time", {}, id="t1")]))
    r = client.chat.completions.create(
        model=ALIAS, messages=USER, tools=[TIME], response_format=FORMAT
    )
    assert r.choices[0].message.tool_calls[0].function.name == "get_time"
    config = _tool_config(bedrock_simulator)
    assert [t["toolSpec"]["name"] for t in config["tools"]] == ["get_time", "person"]
    assert config["toolChoice"] == {"auto": {}}
