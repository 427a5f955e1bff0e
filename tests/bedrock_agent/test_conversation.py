"""Sessions, multi-turn history, provider parameters and input checks, through the OpenAI SDK."""

from __future__ import annotations

import base64

import httpx
import openai
import pytest

from outcrop.testing import AgentReply

from .common import AGENT, MASTER_KEY, SOURCE_ARN

USER = {"role": "user", "content": "hello"}


def _sent(sim) -> dict:
    return sim.last("InvokeAgent").json()


def test_multi_turn_with_the_returned_session_id(client, bedrock_simulator):
    first = client.chat.completions.with_raw_response.create(
        model="bedrock-agent-1", messages=[USER]
    )
    session = first.parse().model_extra["session_id"]
    assert first.headers["x-outcrop-session-id"] == session
    assert bedrock_simulator.last("InvokeAgent").params["sessionId"] == session
    # The client resends the whole conversation with the session id: only the new turn goes up,
    # the agent's session already holds the rest.
    messages = [
        USER,
        {"role": "assistant", "content": first.parse().choices[0].message.content},
        {"role": "user", "content": "and then?"},
    ]
    second = client.chat.completions.create(
        model="bedrock-agent-1", messages=messages, extra_body={"session_id": session}
    )
    assert second.model_extra["session_id"] == session
    sent = bedrock_simulator.last("InvokeAgent")
    assert sent.params["sessionId"] == session
    assert sent.json() == {"inputText": "and then?", "enableTrace": True}
    # The header works too, and the AWS spelling of the body field.
    client.chat.completions.create(
        model="bedrock-agent-1", messages=[USER], extra_headers={"x-outcrop-session-id": session}
    )
    assert bedrock_simulator.last("InvokeAgent").params["sessionId"] == session
    client.chat.completions.create(
        model="bedrock-agent-1", messages=[USER], extra_body={"sessionId": "other:session.1"}
    )
    recorded = bedrock_simulator.last("InvokeAgent")
    assert recorded.params["sessionId"] == "other:session.1"
    assert recorded.raw_path.endswith("/sessions/other%3Asession.1/text")  # as botocore encodes it


def test_new_session_gets_earlier_turns_as_conversation_history(client, bedrock_simulator):
    messages = [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Nice to meet you, Ada."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "I like"}, {"type": "text", "text": "maths."}],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "Noted."}]},
        {"role": "user", "content": "What is my name?"},
    ]
    client.chat.completions.create(model="bedrock-agent-1", messages=messages)
    sent = _sent(bedrock_simulator)
    assert sent["inputText"] == "What is my name?"
    assert sent["sessionState"]["conversationHistory"] == {
        "messages": [
            {"role": "user", "content": [{"text": "My name is Ada."}]},
            {"role": "assistant", "content": [{"text": "Nice to meet you, Ada."}]},
            {"role": "user", "content": [{"text": "I like\nmaths."}]},
            {"role": "assistant", "content": [{"text": "Noted."}]},
        ]
    }
    # send_history forces or suppresses it.
    client.chat.completions.create(
        model="bedrock-agent-1", messages=messages, extra_body={"send_history": False}
    )
    assert "sessionState" not in _sent(bedrock_simulator)
    client.chat.completions.create(
        model="bedrock-agent-1",
        messages=messages,
        extra_body={"send_history": True, "session_id": "s-123"},
    )
    assert len(_sent(bedrock_simulator)["sessionState"]["conversationHistory"]["messages"]) == 4
    # A history given explicitly replaces the one built from the messages.
    own = {"messages": [{"role": "user", "content": [{"text": "I am Grace."}]}]}
    client.chat.completions.create(
        model="bedrock-agent-1", messages=messages, extra_body={"conversationHistory": own}
    )
    assert _sent(bedrock_simulator)["sessionState"]["conversationHistory"] == own


@pytest.mark.parametrize("bad", ["x", "a" * 101, "has space", "semi;colon", "ünï"])
def test_invalid_session_ids_are_400(client, gateway, bedrock_simulator, bad):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="bedrock-agent-1", messages=[USER], extra_body={"session_id": bad}
        )
    assert info.value.body["param"] == "session_id"
    assert "2-100 characters" in info.value.message
    if bad.isascii():  # httpx refuses non-ASCII header values itself
        r = httpx.post(
            gateway.url + "/v1/chat/completions",
            headers={"Authorization": f"Bearer {MASTER_KEY}", "x-outcrop-session-id": bad},
            json={"model": "bedrock-agent-1", "messages": [USER]},
        )
        assert r.status_code == 400 and r.json()["error"]["param"] == "x-outcrop-session-id"
    assert bedrock_simulator.requests == []


@pytest.mark.parametrize(
    "model",
    [
        "bedrock/agent/L1RT58GYRW",
        "bedrock/agent/L1RT58GYRW/",
        "bedrock/agent/TOOLONGAGENTID/ALIAS",
        "bedrock/agent/AGENT-1/ALIAS",
        "bedrock/agent/AGENT/ALIAS/extra",
    ],
)
def test_invalid_model_ids_are_400(gateway_factory, simulator_params, bedrock_simulator, model):
    # raw model strings reach the agent plugin's parser only where they are allowed
    gw = gateway_factory(
        {
            "model_list": [
                {"model_name": "bedrock-agent-1", "litellm_params": simulator_params(AGENT)}
            ],
            "general_settings": {"master_key": MASTER_KEY, "allow_raw_models": True},
        }
    )
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=MASTER_KEY, max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=model, messages=[USER])
    assert "bedrock/agent/{AGENT_ID}/{ALIAS_ID}" in info.value.message
    assert info.value.body["param"] == "model"
    assert bedrock_simulator.requests == []


def test_invalid_model_or_parameter_in_config_refuses_to_start(simulator_params):
    from outcrop import ConfigError, Gateway, parse_config

    with pytest.raises(ConfigError) as info:
        Gateway(
            parse_config(
                {
                    "model_list": [
                        {
                            "model_name": "a",
                            "litellm_params": simulator_params("bedrock/agent/NOPE!/X"),
                        },
                        {
                            "model_name": "b",
                            "litellm_params": simulator_params(AGENT, enableTrace="yes"),
                        },
                        {
                            "model_name": "c",
                            "litellm_params": simulator_params(AGENT, temprature=0.2),
                        },
                        {
                            "model_name": "d",
                            "litellm_params": simulator_params(AGENT, session_id="everyone"),
                        },
                    ]
                }
            )
        )
    errors = info.value.errors
    assert len(errors) == 4
    assert errors[3].startswith("model_list[3]") and "session_id" in errors[3]
    assert errors[0].startswith("model_list[0]") and "{AGENT_ID}/{ALIAS_ID}" in errors[0]
    assert errors[1].startswith("model_list[1]") and "enableTrace" in errors[1]
    assert errors[2].startswith("model_list[2]") and "temprature" in errors[2]


def test_provider_parameters_are_placed_where_aws_expects_them(client, bedrock_simulator):
    client.chat.completions.create(
        model="bedrock-agent-1",
        messages=[USER],
        extra_body={
            "sessionState": {
                "sessionAttributes": {"a": "1"},
                "knowledgeBaseConfigurations": [
                    {
                        "knowledgeBaseId": "KB12345678",
                        "retrievalConfiguration": {
                            "vectorSearchConfiguration": {"numberOfResults": 3}
                        },
                    }
                ],
            },
            "promptSessionAttributes": {"today": "Monday"},
            "endSession": False,
            "memoryId": "mem-1",
            "streamingConfigurations": {"applyGuardrailInterval": 20},
            "promptCreationConfigurations": {
                "excludePreviousThinkingSteps": True,
                "previousConversationTurnsToInclude": 2,
            },
            "bedrockModelConfigurations": {"performanceConfig": {"latency": "standard"}},
            "sourceArn": SOURCE_ARN,
        },
    )
    recorded = bedrock_simulator.last("InvokeAgent")
    assert recorded.json() == {
        "inputText": "hello",
        "enableTrace": True,
        "endSession": False,
        "memoryId": "mem-1",
        "streamingConfigurations": {"applyGuardrailInterval": 20},
        "promptCreationConfigurations": {
            "excludePreviousThinkingSteps": True,
            "previousConversationTurnsToInclude": 2,
        },
        "bedrockModelConfigurations": {"performanceConfig": {"latency": "standard"}},
        "sessionState": {
            "sessionAttributes": {"a": "1"},
            "promptSessionAttributes": {"today": "Monday"},
            "knowledgeBaseConfigurations": [
                {
                    "knowledgeBaseId": "KB12345678",
                    "retrievalConfiguration": {"vectorSearchConfiguration": {"numberOfResults": 3}},
                }
            ],
        },
    }
    assert recorded.headers["x-amz-source-arn"] == SOURCE_ARN
    assert "x-amz-source-arn" in recorded.headers["authorization"]  # signed like botocore does


def test_memory_id_is_returned(client, bedrock_simulator):
    response = client.chat.completions.create(
        model="bedrock-agent-1", messages=[USER], extra_body={"memoryId": "mem-42"}
    )
    assert response.model_extra["memory_id"] == "mem-42"


def test_deployment_config_parameters_merge_with_the_request(client, bedrock_simulator):
    client.chat.completions.create(
        model="configured-agent",
        messages=[USER],
        extra_body={"promptSessionAttributes": {"x": "y"}},
    )
    recorded = bedrock_simulator.last("InvokeAgent")
    assert recorded.json()["sessionState"] == {
        "sessionAttributes": {"tenant": "acme"},
        "promptSessionAttributes": {"x": "y"},
    }
    assert recorded.json()["bedrockModelConfigurations"] == {
        "performanceConfig": {"latency": "optimized"}
    }
    assert recorded.headers["x-amz-source-arn"] == SOURCE_ARN
    # The request overrides the deployment key by key.
    client.chat.completions.create(
        model="configured-agent",
        messages=[USER],
        extra_body={"sessionAttributes": {"tenant": "globex"}},
    )
    assert bedrock_simulator.last("InvokeAgent").json()["sessionState"] == {
        "sessionAttributes": {"tenant": "globex"}
    }


@pytest.mark.parametrize(
    ("extra", "param", "words"),
    [
        ({"temprature": 0.1}, "temprature", "unknown Bedrock agent parameter"),
        (
            {"aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG"},
            "aws_secret_access_key",
            "gateway setting",
        ),
        ({"api_base": "http://evil.example"}, "api_base", "gateway setting"),
        ({"enableTrace": "yes"}, "enableTrace", "Expected `bool`"),
        ({"sessionAttributes": {"a": 1}}, "sessionAttributes[...]", "Expected `str`"),
        ({"sessionState": {"bogus": 1}}, "sessionState", "unknown field `bogus`"),
        (
            {"streamingConfigurations": {"applyGuardrailInterval": 0}},
            "streamingConfigurations.applyGuardrailInterval",
            ">= 1",
        ),
        (
            {"bedrockModelConfigurations": {"performanceConfig": {"latency": "fast"}}},
            "bedrockModelConfigurations.performanceConfig.latency",
            "Invalid enum value",
        ),
        ({"memoryId": "m"}, "memoryId", "2-100"),
        ({"sourceArn": "arn:aws:s3:::bucket"}, "sourceArn", "agent/{AGENT_ID}"),
        ({"file_use_case": "OTHER"}, "file_use_case", "Invalid enum value"),
    ],
)
def test_bad_provider_parameters_are_400_without_echoing_values(
    client, bedrock_simulator, extra, param, words
):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="bedrock-agent-1", messages=[USER], extra_body=extra)
    assert info.value.body["param"] == param
    assert words in info.value.message
    for value in ("wJalrXUtnFEMI", "evil", "fast", "OTHER", "yes"):
        assert value not in info.value.message
    assert bedrock_simulator.requests == []


def test_unsupported_openai_parameters(client, bedrock_simulator):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="bedrock-agent-1",
            messages=[USER],
            temperature=0.3,
            extra_body={"drop_params": False},
        )
    assert "temperature" in info.value.message and "drop_params" in info.value.message
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="bedrock-agent-1",
            messages=[USER],
            tool_choice="required",
            tools=[{"type": "function", "function": {"name": "f"}}],
        )
    assert info.value.body["param"] == "tool_choice"
    response = client.chat.completions.with_raw_response.create(
        model="bedrock-agent-1", messages=[USER], temperature=0.3, max_tokens=50
    )
    assert response.parse().choices[0].message.content == "You said: hello"
    assert response.headers["x-outcrop-dropped-params"] == "max_tokens,temperature"


def test_system_messages_are_dropped_and_named_unless_drop_params_false(client, bedrock_simulator):
    messages = [{"role": "system", "content": "Be brief."}, USER]
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="bedrock-agent-1", messages=messages, extra_body={"drop_params": False}
        )
    assert info.value.body["param"] == "messages[0]" and "instructions" in info.value.message
    r = client.chat.completions.with_raw_response.create(model="bedrock-agent-1", messages=messages)
    assert r.headers["x-outcrop-dropped-params"] == "system message"
    assert _sent(bedrock_simulator) == {"inputText": "hello", "enableTrace": True}


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}],
                }
            ],
            "messages[0].content[0]",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "read"},
                        {"type": "file", "file": {"file_id": "file-abc"}},
                    ],
                }
            ],
            "messages[0].content[1]",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "read"},
                        {"type": "file", "file": {"file_data": "data:text/csv;base64,@@@"}},
                    ],
                }
            ],
            "messages[0].content[1]",
        ),
        ([{"role": "user", "content": "   "}], "messages[0].content"),
        ([USER, {"role": "assistant", "content": "hi"}], "messages[1]"),
        (
            [USER, {"role": "tool", "tool_call_id": "call_unknown", "content": "x"}],
            "messages[1].tool_call_id",
        ),
    ],
)
def test_messages_that_cannot_be_sent_are_400(client, bedrock_simulator, messages, param):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="bedrock-agent-1", messages=messages)
    assert info.value.body["param"] == param
    assert bedrock_simulator.requests == []


S3_FILE = {
    "name": "history.csv",
    "useCase": "CODE_INTERPRETER",
    "source": {"sourceType": "S3", "s3Location": {"uri": "s3://bucket/history.csv"}},
}


def test_file_parts_become_session_files(client, bedrock_simulator):
    csv = base64.b64encode(b"quarter,sales\nQ3,100\n").decode()
    client.chat.completions.create(
        model="bedrock-agent-1",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Summarise this"},
                    {
                        "type": "file",
                        "file": {"filename": "q3.csv", "file_data": f"data:text/csv;base64,{csv}"},
                    },
                ],
            }
        ],
        extra_body={"file_use_case": "CODE_INTERPRETER", "files": [S3_FILE]},
    )
    sent = _sent(bedrock_simulator)
    assert sent["inputText"] == "Summarise this"
    assert sent["sessionState"]["files"] == [
        S3_FILE,
        {
            "name": "q3.csv",
            "source": {
                "sourceType": "BYTE_CONTENT",
                "byteContent": {"data": csv, "mediaType": "text/csv"},
            },
            "useCase": "CODE_INTERPRETER",
        },
    ]


def test_raw_model_string_and_error_keeps_session_header(
    gateway, auth, bedrock_simulator, monkeypatch
):
    from outcrop.testing import HttpError

    bedrock_simulator.reply(
        HttpError(404, "ResourceNotFoundException", "no such alias"), operation="InvokeAgent"
    )
    r = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={**auth, "x-outcrop-session-id": "keep-me"},
        json={"model": "bedrock-agent-1", "messages": [USER]},
    )
    assert r.status_code == 404
    assert r.headers["x-outcrop-session-id"] == "keep-me"


def test_answer_text_split_inside_a_character(client, bedrock_simulator):
    word = "héllo wörld ✓".encode()
    from outcrop.testing import EventStreamReply, encode_event

    frames = [
        encode_event("chunk", {"bytes": base64.b64encode(word[i : i + 2]).decode()})
        for i in range(0, len(word), 2)
    ]
    bedrock_simulator.reply(EventStreamReply(frames), operation="InvokeAgent")
    response = client.chat.completions.create(model="bedrock-agent-1", messages=[USER])
    assert response.choices[0].message.content == "héllo wörld ✓"


def test_agent_reply_without_traces_still_answers(client, bedrock_simulator):
    bedrock_simulator.reply(AgentReply(["plain"]), operation="InvokeAgent")
    response = client.chat.completions.create(model="bedrock-agent-1", messages=[USER])
    assert response.choices[0].message.content == "plain"
    assert response.usage is None  # no trace: no token count, none invented
    assert response.model == "bedrock-agent-1"  # no foundation model seen: the requested name
