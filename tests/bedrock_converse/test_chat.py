"""Chat completions through the real OpenAI SDK (sync, async, stream): text, system prompts,
multi-turn, parameters, model ids in the URL, usage and cost."""

from __future__ import annotations

import httpx
import openai
import pytest
from botocore.serialize import create_serializer
from botocore.session import get_session

from outcrop.testing import ConverseReply

from .common import ALIAS, CLAUDE, MASTER_KEY, NOVA, PROFILE_ARN, USER


def test_text_sync(client, bedrock_simulator, events):
    bedrock_simulator.reply(ConverseReply("Hello!", usage=(12, 3)))
    r = client.chat.completions.create(model=ALIAS, messages=USER)
    assert r.choices[0].message.content == "Hello!" and r.choices[0].finish_reason == "stop"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (12, 3, 15)
    assert r.model == CLAUDE
    sent = bedrock_simulator.last()
    assert sent.operation == "Converse" and sent.params["modelId"] == CLAUDE
    assert sent.json() == {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    event = events.wait_count(1)[-1]
    assert event.status == 200 and event.provider == "bedrock_converse"
    assert event.cost == pytest.approx(12 * 3e-6 + 3 * 15e-6)


async def test_text_async_and_stream(aclient, bedrock_simulator):
    bedrock_simulator.reply(ConverseReply("one two three", usage=(5, 3)))
    r = await aclient.chat.completions.create(model="nova", messages=USER)
    assert r.choices[0].message.content == "one two three"
    assert bedrock_simulator.last().params["modelId"] == NOVA  # bedrock/converse/{id}
    stream = await aclient.chat.completions.create(
        model="nova", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in stream]
    assert bedrock_simulator.last().operation == "ConverseStream"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "one two three"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].usage.prompt_tokens == 5 and chunks[-1].usage.completion_tokens == 3


def test_stream_without_usage_has_no_usage_chunk(client, bedrock_simulator):
    bedrock_simulator.reply(ConverseReply("a b", chunks=["a ", "b"]))
    chunks = list(client.chat.completions.create(model=ALIAS, messages=USER, stream=True))
    assert [c.choices[0].delta.content for c in chunks] == ["a ", "b", None]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.usage is None for c in chunks)


def test_system_developer_and_multi_turn(client, bedrock_simulator):
    client.chat.completions.create(
        model=ALIAS,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": "Hi"},
            {"role": "user", "content": [{"type": "text", "text": "How are you?"}]},
            {"role": "assistant", "content": "Bien."},
            {"role": "user", "content": "And now?"},
        ],
    )
    body = bedrock_simulator.last().json()
    assert body["system"] == [{"text": "Be brief."}, {"text": "Answer in French."}]
    assert body["messages"] == [
        {"role": "user", "content": [{"text": "Hi"}, {"text": "How are you?"}]},
        {"role": "assistant", "content": [{"text": "Bien."}]},
        {"role": "user", "content": [{"text": "And now?"}]},
    ]


def test_inference_parameters(client, bedrock_simulator):
    client.chat.completions.create(
        model=ALIAS,
        messages=USER,
        temperature=0.2,
        top_p=0.9,
        max_completion_tokens=77,
        stop=["END", "STOP"],
        n=1,
        user="alice@example.com",
    )
    body = bedrock_simulator.last().json()
    assert body["inferenceConfig"] == {
        "maxTokens": 77,
        "temperature": 0.2,
        "topP": 0.9,
        "stopSequences": ["END", "STOP"],
    }
    assert body["requestMetadata"] == {"user": "alice@example.com"}
    client.chat.completions.create(model=ALIAS, messages=USER, max_tokens=5, stop="X")
    assert bedrock_simulator.last().json()["inferenceConfig"] == {
        "maxTokens": 5,
        "stopSequences": ["X"],
    }


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"n": 2}, "n"),
        ({"temperature": 1.5}, "temperature"),
        ({"top_p": 1.1}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"user": "<script>"}, "user"),
        ({"presence_penalty": 0.5, "extra_body": {"drop_params": False}}, "presence_penalty"),
        ({"extra_body": {"notAConverseField": 1, "drop_params": False}}, "notAConverseField"),
        ({"messages": [{"role": "system", "content": "only a system prompt"}]}, "messages"),
        ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role"),
    ],
)
def test_bad_parameters_are_400_before_anything_is_sent(client, bedrock_simulator, kwargs, param):
    kwargs = {"messages": USER, **kwargs}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=ALIAS, **kwargs)
    assert caught.value.body["param"] == param, caught.value.body
    assert bedrock_simulator.requests == []


def test_unhonoured_parameters_are_dropped_and_named_by_default(gateway, bedrock_simulator, events):
    r = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {MASTER_KEY}"},
        json={"model": ALIAS, "messages": USER, "presence_penalty": 0.5, "notAConverseField": 1},
    )
    assert r.status_code == 200, r.text
    assert r.headers["x-outcrop-dropped-params"] == "presence_penalty,notAConverseField"
    sent = bedrock_simulator.last().text()
    assert "presence" not in sent and "notAConverseField" not in sent
    assert events.wait_count(1)[-1].extra["dropped_params"] == [
        "presence_penalty",
        "notAConverseField",
    ]


def test_drop_params_drops_and_reports(gateway, bedrock_simulator):
    r = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {MASTER_KEY}"},
        json={
            "model": ALIAS,
            "messages": USER,
            "drop_params": True,
            "seed": 3,
            "parallel_tool_calls": False,
            "notAConverseField": 1,
        },
    )
    assert r.status_code == 200, r.text
    assert r.headers["x-outcrop-dropped-params"] == "seed,parallel_tool_calls,notAConverseField"
    assert "seed" not in bedrock_simulator.last().text()


def test_bedrock_fields_from_body_and_deployment(make_gateway, events, bedrock_simulator):
    gw = make_gateway(
        performanceConfig={"latency": "optimized"}, requestMetadata={"team": "search"}
    )
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=MASTER_KEY, max_retries=0)
    bedrock_simulator.reply(ConverseReply("ok", additional_fields={"stop_sequence": None}))
    r = client.chat.completions.create(
        model=ALIAS,
        messages=USER,
        user="bob",
        extra_body={
            "guardrailConfig": {
                "guardrailIdentifier": "gr-1",
                "guardrailVersion": "1",
                "trace": "enabled",
            },
            "additionalModelRequestFields": {"top_k": 40},
            "additionalModelResponseFieldPaths": ["/stop_sequence"],
            "promptVariables": {"city": {"text": "Paris"}},
        },
    )
    body = bedrock_simulator.last().json()
    assert body["guardrailConfig"]["guardrailIdentifier"] == "gr-1"
    assert body["additionalModelRequestFields"] == {"top_k": 40}
    assert body["additionalModelResponseFieldPaths"] == ["/stop_sequence"]
    assert body["promptVariables"] == {"city": {"text": "Paris"}}
    assert body["performanceConfig"] == {"latency": "optimized"}
    assert body["requestMetadata"] == {"user": "bob", "team": "search"}
    assert r.model_extra["additional_model_response_fields"] == {"stop_sequence": None}


def test_bedrock_field_of_the_wrong_type_is_400(client, bedrock_simulator):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=ALIAS, messages=USER, extra_body={"guardrailConfig": "gr-1"}
        )
    assert caught.value.body["param"] == "guardrailConfig"


def test_deployment_field_of_the_wrong_type_is_a_config_error(gateway_factory, simulator_params):
    with pytest.raises(Exception, match=r"model_list\[0\]\.litellm_params\.promptVariables"):
        gateway_factory(
            {
                "model_list": [
                    {
                        "model_name": "x",
                        "litellm_params": simulator_params(
                            f"bedrock/{NOVA}", promptVariables=["not", "an", "object"]
                        ),
                    }
                ]
            }
        )


def _botocore_path(model_id: str) -> str:
    model = get_session().get_service_model("bedrock-runtime")
    request = create_serializer("rest-json").serialize_to_request(
        {"modelId": model_id, "messages": []}, model.operation_model("Converse")
    )
    return request["url_path"]


@pytest.mark.parametrize(
    "model_id",
    [
        CLAUDE,
        NOVA,
        "global.anthropic.claude-sonnet-4-20250514-v1:0",
        "apac.amazon.nova-pro-v1:0",
        PROFILE_ARN,
        "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc123xyz",
    ],
)
def test_model_ids_are_encoded_in_the_path_as_botocore_does(
    gateway_factory, simulator_params, bedrock_simulator, model_id
):
    gw = gateway_factory(
        {
            "model_list": [
                {"model_name": "m", "litellm_params": simulator_params(f"bedrock/{model_id}")}
            ]
        }
    )
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="none", max_retries=0)
    client.chat.completions.create(model="m", messages=USER)
    sent = bedrock_simulator.last()
    assert sent.raw_path == _botocore_path(model_id) and sent.params["modelId"] == model_id


def test_an_arn_fixes_the_region(gateway_factory, simulator_params, bedrock_simulator):
    params = simulator_params(f"bedrock/{PROFILE_ARN}")
    del params["aws_region_name"]
    gw = gateway_factory({"model_list": [{"model_name": "m", "litellm_params": params}]})
    openai.OpenAI(base_url=gw.url + "/v1", api_key="none", max_retries=0).chat.completions.create(
        model="m", messages=USER
    )
    assert bedrock_simulator.last().region == "eu-west-1"


def test_raw_model_strings_and_bad_ones(gateway_factory, simulator_params, bedrock_simulator):
    gw = gateway_factory({})
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="none", max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="bedrock/converse/", messages=USER)
    assert "names no model id" in caught.value.body["message"]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="bedrock/bad model", messages=USER)
    assert "is not a Bedrock model id" in caught.value.body["message"]


def test_stream_frames_of_one_read_go_out_before_the_next_read(gateway, bedrock_simulator):
    """Events that came in one upstream read may share a send, but none waits for the next read:
    the text before a contentBlockStop reaches the client while Bedrock still pauses."""
    import json
    import time

    from outcrop.testing import EventStreamReply, encode_event

    def delta(text: str) -> bytes:
        return encode_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": text}})

    first_read = (
        encode_event("messageStart", {"role": "assistant"})
        + delta("one ")
        + delta("two ")
        + encode_event("contentBlockStop", {"contentBlockIndex": 0})
    )
    second_read = delta("three") + encode_event("messageStop", {"stopReason": "end_turn"})
    pause = 1.5
    bedrock_simulator.reply(EventStreamReply([first_read, second_read], delay=pause))
    seen: list[tuple[float, str]] = []
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {MASTER_KEY}"},
        json={"model": ALIAS, "messages": USER, "stream": True},
        timeout=10,
    ) as r:
        started = time.monotonic()
        for line in r.iter_lines():
            if line.startswith("data: {"):
                chunk = json.loads(line[6:])
                text = chunk["choices"][0]["delta"].get("content") if chunk["choices"] else None
                if text:
                    seen.append((time.monotonic() - started, text))
    assert [text for _, text in seen] == ["one ", "two ", "three"]
    assert seen[1][0] < pause / 2 <= seen[2][0]  # "two " did not wait for the second read
