"""The example plugin through the OpenAI SDK, a real gateway and the signature-checking simulator."""

import openai
import pytest

from outcrop import ConfigError, Gateway, parse_config
from outcrop.testing import (
    ConverseReply,
    EventStreamReply,
    HttpError,
    encode_event,
    encode_exception,
)

MODEL = "myprov/amazon.nova-lite-v1:0"


@pytest.fixture
def client(gateway_factory, simulator_params):
    params = simulator_params(MODEL, system_prompt="Answer briefly.")
    gateway = gateway_factory({"model_list": [{"model_name": "nova", "litellm_params": params}]})
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="any", max_retries=0)


def test_completion(client, bedrock_simulator):
    bedrock_simulator.reply(ConverseReply("Hello there.", usage=(12, 3)))
    response = client.chat.completions.create(
        model="nova",
        temperature=0.2,
        messages=[{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}],
    )
    assert response.choices[0].message.content == "Hello there."
    assert response.choices[0].finish_reason == "stop"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (12, 3)
    sent = bedrock_simulator.last("Converse")
    assert sent.params["modelId"] == "amazon.nova-lite-v1:0"
    assert sent.json() == {
        "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
        "system": [{"text": "Answer briefly."}, {"text": "Be kind."}],
        "inferenceConfig": {"temperature": 0.2},
    }


def test_stream(client, bedrock_simulator):
    bedrock_simulator.reply(ConverseReply("one two three", usage=(5, 3), stop_reason="max_tokens"))
    chunks = list(
        client.chat.completions.create(
            model="nova",
            messages=[{"role": "user", "content": "Count"}],
            max_tokens=3,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three"
    finished = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finished == ["length"]
    assert chunks[-1].usage.total_tokens == 8
    assert bedrock_simulator.last("ConverseStream").json()["inferenceConfig"] == {"maxTokens": 3}


def test_a_streamed_call_reports_its_usage(call_events, client, bedrock_simulator):
    # call_events comes before client: it must be registered before the gateway starts
    bedrock_simulator.reply(ConverseReply("one two", usage=(5, 2)))
    for _ in client.chat.completions.create(
        model="nova", messages=[{"role": "user", "content": "Hi"}], stream=True
    ):
        pass
    event = call_events.one()  # waits: the event may come after the stream's last byte
    assert (event.surface, event.stream, event.status) == ("chat", True, 200)
    assert (event.usage.prompt_tokens, event.usage.completion_tokens) == (5, 2)


def test_a_parameter_the_provider_does_not_honour_is_dropped_and_named(client, bedrock_simulator):
    raw = client.chat.completions.with_raw_response.create(
        model="nova", messages=[{"role": "user", "content": "Hi"}], top_p=0.5
    )
    assert raw.headers["x-outcrop-dropped-params"] == "top_p"
    assert "topP" not in bedrock_simulator.last().json().get("inferenceConfig", {})


def test_with_drop_params_off_it_is_a_clear_400(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="nova",
            messages=[{"role": "user", "content": "Hi"}],
            top_p=0.5,
            extra_body={"drop_params": False},
        )
    assert info.value.body["code"] == "unsupported_params" and "top_p" in info.value.message


def test_aws_errors_reach_the_client_in_its_dialect(client, bedrock_simulator):
    bedrock_simulator.reply(HttpError(429, "ThrottlingException", "Too many requests"))
    with pytest.raises(openai.RateLimitError, match="Too many requests"):
        client.chat.completions.create(model="nova", messages=[{"role": "user", "content": "Hi"}])


def test_an_exception_frame_mid_stream_ends_the_stream_with_an_error(client, bedrock_simulator):
    bedrock_simulator.reply(
        EventStreamReply(
            [
                encode_event(
                    "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hel"}}
                ),
                encode_exception("throttlingException", "Slow down"),
            ]
        )
    )
    stream = client.chat.completions.create(
        model="nova", messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    with pytest.raises(openai.APIError, match="ThrottlingException: Slow down"):
        for _ in stream:
            pass


def test_a_bad_deployment_key_names_its_field():
    config = parse_config(
        {
            "model_list": [
                {"model_name": "nova", "litellm_params": {"model": MODEL, "system_prompt": 42}}
            ]
        }
    )
    with pytest.raises(ConfigError) as info:
        Gateway(config)
    assert info.value.errors == [
        "model_list[0].litellm_params.system_prompt: must be a string, got int"
    ]
