"""Return of control as OpenAI tool calls: the whole loop through the OpenAI SDK, stateless."""

from __future__ import annotations

import json

import openai
import pytest

from outcrop.testing import AgentReply
from outcrop_bedrock_agent.tools import (
    Invocation,
    decode_id,
    encode_id,
    function_name,
    split_function_name,
)

WEATHER_CONTROL = {
    "invocationId": "79e0feaa-c6f7-49bf-814d-b7c498505172",
    "invocationInputs": [
        {
            "functionInvocationInput": {
                "actionGroup": "WeatherTools",
                "function": "get_weather",
                "actionInvocationType": "RESULT",
                "parameters": [
                    {"name": "city", "type": "string", "value": "Paris"},
                    {"name": "days", "type": "integer", "value": "3"},
                    {"name": "metric", "type": "boolean", "value": "true"},
                ],
            }
        },
        {
            "apiInvocationInput": {
                "actionGroup": "Bookings",
                "apiPath": "/hotels/{hotelId}/book",
                "httpMethod": "POST",
                "parameters": [{"name": "hotelId", "type": "string", "value": "H-7"}],
                "requestBody": {
                    "content": {
                        "application/json": {
                            "properties": [
                                {"name": "nights", "type": "number", "value": "2"},
                                {"name": "guests", "type": "array", "value": '["Ada", "Bob"]'},
                            ]
                        }
                    }
                },
            }
        },
    ],
}
TOOLS = [{"type": "function", "function": {"name": "WeatherTools__get_weather", "parameters": {}}}]


def _answer_from_results(request):
    state = request.json()["sessionState"]
    bodies = [
        next(iter(r.values()))["responseBody"] for r in state["returnControlInvocationResults"]
    ]
    texts = [next(iter(b.values()))["body"] for b in bodies]
    return AgentReply([f"Done: {' / '.join(texts)}"], usage_steps=[(30, 8)])


def test_tool_calling_loop_through_the_openai_sdk(client, bedrock_simulator):
    bedrock_simulator.reply(
        AgentReply(return_control=WEATHER_CONTROL, usage_steps=[(40, 12)]),
        operation="InvokeAgent",
        times=1,
    )
    messages = [{"role": "user", "content": "Weather in Paris, and book hotel H-7"}]
    first = client.chat.completions.create(model="bedrock-agent-1", messages=messages, tools=TOOLS)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    weather, booking = choice.message.tool_calls
    assert weather.function.name == "WeatherTools__get_weather"
    assert json.loads(weather.function.arguments) == {"city": "Paris", "days": 3, "metric": True}
    assert booking.function.name == "Bookings__post_hotels_hotelId_book"
    assert json.loads(booking.function.arguments) == {
        "hotelId": "H-7",
        "requestBody": {"nights": 2.0, "guests": ["Ada", "Bob"]},
    }
    assert first.usage.prompt_tokens == 40
    session = first.model_extra["session_id"]

    # A stateless client: it sends the history back, with no session id.
    bedrock_simulator.reply(_answer_from_results, operation="InvokeAgent", times=1)
    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": weather.id, "content": "sunny, 24C"})
    messages.append(
        {
            "role": "tool",
            "tool_call_id": booking.id,
            "content": json.dumps({"body": {"confirmation": "B-1"}, "httpStatusCode": 201}),
        }
    )
    second = client.chat.completions.create(model="bedrock-agent-1", messages=messages, tools=TOOLS)
    assert second.choices[0].message.content == 'Done: sunny, 24C / {"confirmation":"B-1"}'
    assert second.choices[0].finish_reason == "stop"
    assert second.model_extra["session_id"] == session
    sent = bedrock_simulator.last("InvokeAgent")
    assert sent.params["sessionId"] == session
    assert sent.json() == {
        "enableTrace": True,
        "sessionState": {
            "invocationId": WEATHER_CONTROL["invocationId"],
            "returnControlInvocationResults": [
                {
                    "functionResult": {
                        "actionGroup": "WeatherTools",
                        "function": "get_weather",
                        "responseBody": {"TEXT": {"body": "sunny, 24C"}},
                    }
                },
                {
                    "apiResult": {
                        "actionGroup": "Bookings",
                        "apiPath": "/hotels/{hotelId}/book",
                        "httpMethod": "POST",
                        "httpStatusCode": 201,
                        "responseBody": {"application/json": {"body": '{"confirmation":"B-1"}'}},
                    }
                },
            ],
        },
    }


def test_streamed_tool_calls(client, bedrock_simulator):
    bedrock_simulator.reply(AgentReply(return_control=WEATHER_CONTROL), operation="InvokeAgent")
    stream = client.chat.completions.create(
        model="bedrock-agent-1",
        stream=True,
        tools=TOOLS,
        messages=[{"role": "user", "content": "Weather?"}],
    )
    chunks = [c for c in stream if c.choices]
    calls = [tc for c in chunks for tc in c.choices[0].delta.tool_calls or ()]
    assert [(tc.index, tc.type, tc.function.name) for tc in calls] == [
        (0, "function", "WeatherTools__get_weather"),
        (1, "function", "Bookings__post_hotels_hotelId_book"),
    ]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert decode_id(calls[0].id).session_id == chunks[0].model_extra["session_id"]


def test_user_confirmation_and_failure_states(client, bedrock_simulator):
    inv = Invocation("inv-9", "sess-9", "Payments", function="refund", agent_id="COLLAB0001")
    tool_id = encode_id(inv)
    client.chat.completions.create(
        model="bedrock-agent-1",
        messages=[
            {"role": "user", "content": "Refund me"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": tool_id,
                        "type": "function",
                        "function": {"name": "Payments__refund", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": tool_id, "content": '{"confirmationState": "DENY"}'},
        ],
    )
    sent = bedrock_simulator.last("InvokeAgent")
    assert sent.params["sessionId"] == "sess-9"
    assert sent.json()["sessionState"]["returnControlInvocationResults"] == [
        {
            "functionResult": {
                "actionGroup": "Payments",
                "agentId": "COLLAB0001",
                "function": "refund",
                "confirmationState": "DENY",
            }
        }
    ]
    client.chat.completions.create(
        model="bedrock-agent-1",
        messages=[
            {
                "role": "tool",
                "tool_call_id": tool_id,
                "content": '{"responseState": "REPROMPT", "body": "amount missing"}',
            }
        ],
    )
    assert bedrock_simulator.last("InvokeAgent").json()["sessionState"][
        "returnControlInvocationResults"
    ] == [
        {
            "functionResult": {
                "actionGroup": "Payments",
                "agentId": "COLLAB0001",
                "function": "refund",
                "responseState": "REPROMPT",
                "responseBody": {"TEXT": {"body": "amount missing"}},
            }
        }
    ]


def test_foreign_tool_call_id_is_reversed_from_the_function_name(client, bedrock_simulator):
    messages = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "my-own-id",
                    "type": "function",
                    "function": {"name": "WeatherTools__get_weather", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "my-own-id", "content": "rain"},
    ]
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="bedrock-agent-1", messages=messages)
    assert (
        "invocationId" in info.value.message
        and info.value.body["param"] == "messages[2].tool_call_id"
    )
    client.chat.completions.create(
        model="bedrock-agent-1",
        messages=messages,
        extra_body={"invocationId": "inv-1", "session_id": "sess-1"},
    )
    sent = bedrock_simulator.last("InvokeAgent")
    assert sent.params["sessionId"] == "sess-1"
    assert sent.json()["sessionState"] == {
        "invocationId": "inv-1",
        "returnControlInvocationResults": [
            {
                "functionResult": {
                    "actionGroup": "WeatherTools",
                    "function": "get_weather",
                    "responseBody": {"TEXT": {"body": "rain"}},
                }
            }
        ],
    }


def test_tool_results_that_contradict_the_request_are_400(client, bedrock_simulator):
    a = encode_id(Invocation("inv-1", "sess-1", "G", function="f"))
    b = encode_id(Invocation("inv-2", "sess-1", "G", function="f"))
    tool = {"role": "tool", "tool_call_id": a, "content": "x"}
    cases = [
        ([tool, {"role": "tool", "tool_call_id": b, "content": "y"}], {}, "same return of control"),
        ([tool], {"session_id": "sess-2"}, "another session"),
        (
            [tool],
            {"returnControlInvocationResults": [{"functionResult": {"actionGroup": "G"}}]},
            "not both",
        ),
        (
            [
                {
                    "role": "tool",
                    "tool_call_id": encode_id(Invocation("inv-1", "bad session!", "G")),
                    "content": "x",
                }
            ],
            {},
            "valid agent session",
        ),
    ]
    for messages, extra, words in cases:
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(
                model="bedrock-agent-1", messages=messages, extra_body=extra
            )
        assert words in info.value.message
    assert bedrock_simulator.requests == []
    # An invocationId parameter (say, from the deployment) gives way to the answered one.
    client.chat.completions.create(
        model="bedrock-agent-1", messages=[tool], extra_body={"invocationId": "inv-9"}
    )
    assert bedrock_simulator.last("InvokeAgent").json()["sessionState"]["invocationId"] == "inv-1"


def test_function_names_are_valid_and_reversible():
    assert function_name("WeatherTools", "get_weather") == "WeatherTools__get_weather"
    assert split_function_name("WeatherTools__get_weather") == ("WeatherTools", "get_weather")
    assert function_name("Pets", "get", "/pets/{petId}") == "Pets__get_pets_petId"
    long = function_name("G" * 100, "f" * 100)
    other = function_name("G" * 100, "f" * 99 + "x")
    assert len(long) == 64 and long != other
    assert all(c.isalnum() or c in "_-" for c in long + function_name("a.b", "c d/é"))
    assert decode_id("call_somebody_else") is None and decode_id("call_ba1!!!") is None
    inv = Invocation("i", "s", "g", api_path="/p", http_method="GET", agent_id="A")
    assert decode_id(encode_id(inv)) == inv
