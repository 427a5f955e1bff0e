"""A plugin defined in the test suite serves chat completions through the real HTTP app,
the OpenAI SDK and the signature-verifying simulator."""

import httpx
import openai
import pytest

from outcrop.testing.replies import ConverseReply, HttpError

from .converse_plugin import ConversePlugin

MODEL = "testprov/amazon.nova-lite-v1:0"


@pytest.fixture
def plugin(outcrop_plugin):
    p = ConversePlugin()
    outcrop_plugin(p, "testprov")
    return p


def _config(simulator_params, **general):
    return {
        "model_list": [
            {"model_name": "nova", "litellm_params": simulator_params(MODEL)},
            {
                "model_name": "priced",
                "litellm_params": simulator_params(
                    MODEL, input_cost_per_token=0.5, output_cost_per_token=1.0
                ),
            },
        ],
        "general_settings": {"master_key": "sk-test", **general},
    }


@pytest.fixture
def gateway(plugin, gateway_factory, simulator_params):
    return gateway_factory(_config(simulator_params))


@pytest.fixture
def raw_gateway(plugin, gateway_factory, simulator_params):
    """The same gateway, also serving model strings that are not a configured model_name."""
    return gateway_factory(_config(simulator_params, allow_raw_models=True))


@pytest.fixture
def client(gateway):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-test", max_retries=0)


def test_streamed_completion_calls_every_hook_in_order(plugin, gateway, client, bedrock_simulator):
    bedrock_simulator.reply(
        ConverseReply("Hello there, friend", chunks=["Hello ", "there, ", "friend"], usage=(7, 3))
    )
    plugin.calls.clear()
    stream = client.chat.completions.create(
        model="nova",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello there, friend"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].usage.prompt_tokens == 7 and chunks[-1].usage.completion_tokens == 3
    assert chunks[0].model_extra["testprov_op"] == "converse-stream"
    # a delta carrying only `extra` still reaches the client, on its own chunk
    late = [c for c in chunks if (c.model_extra or {}).get("testprov_latency_ms") is not None]
    assert len(late) == 1 and late[0] is not chunks[0]
    event = plugin.events.one()
    assert plugin.calls == ["translate_request", "sign_request", "translate_response", "after_call"]
    assert event.status == 200 and event.stream and event.usage.total_tokens == 10
    recorded = bedrock_simulator.last()
    assert recorded.operation == "ConverseStream"
    assert recorded.signing_service == "bedrock" and recorded.region == "us-west-2"


def test_parse_route_is_called_at_startup(plugin, gateway):
    assert plugin.calls[:1] == ["register_models"]
    assert plugin.calls.count("parse_route") >= 2  # once per deployment, before any request


def test_non_streamed_completion_with_usage_cost_and_headers(gateway, client, bedrock_simulator):
    bedrock_simulator.reply(ConverseReply("Fine answer", usage=(10, 20)))
    raw = client.chat.completions.with_raw_response.create(
        model="priced", messages=[{"role": "user", "content": "hi"}], temperature=0.2
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Fine answer"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens == 30
    assert completion.model_extra["testprov_op"] == "converse"
    assert raw.headers["x-testprov-op"] == "converse"
    assert float(raw.headers["x-outcrop-response-cost"]) == pytest.approx(10 * 0.5 + 20 * 1.0)
    assert float(raw.headers["x-outcrop-overhead-ms"]) >= 0
    assert raw.headers["x-request-id"]
    body = bedrock_simulator.last().body
    assert b'"temperature":0.2' in body


def test_request_id_is_echoed(gateway, bedrock_simulator):
    bedrock_simulator.reply(ConverseReply("ok"))
    r = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": "Bearer sk-test", "x-request-id": "my-trace-123"},
        json={"model": "nova", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "my-trace-123"
    assert r.json()["id"] == "chatcmpl-my-trace-123"


def test_unsupported_param_is_dropped_and_named_unless_drop_params_false(
    gateway, client, bedrock_simulator
):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="nova",
            messages=[{"role": "user", "content": "hi"}],
            logprobs=True,
            extra_body={"drop_params": False},
        )
    assert "logprobs" in info.value.message and "drop_params" in info.value.message
    assert info.value.body["param"] == "logprobs"
    bedrock_simulator.reply(ConverseReply("dropped"))
    ok = client.chat.completions.with_raw_response.create(
        model="nova", messages=[{"role": "user", "content": "hi"}], logprobs=True, seed=7
    )
    assert ok.parse().choices[0].message.content == "dropped"
    assert ok.headers["x-outcrop-dropped-params"] == "logprobs,seed"


def test_harmless_framework_defaults_are_accepted_without_effect(
    gateway, client, bedrock_simulator
):
    bedrock_simulator.reply(ConverseReply("plain"))
    ok = client.chat.completions.with_raw_response.create(
        model="nova",
        messages=[{"role": "user", "content": "hi"}],
        n=1,
        parallel_tool_calls=True,
        tools=[],
        tool_choice="none",
        user="u-1",
        metadata={"k": "v"},
        store=False,
        stream_options=None,
        extra_body={"drop_params": False},  # strict: still nothing to refuse
    )
    assert ok.parse().choices[0].message.content == "plain"
    assert "x-outcrop-dropped-params" not in ok.headers
    # seed is never refused, only named
    ok = client.chat.completions.with_raw_response.create(
        model="nova",
        messages=[{"role": "user", "content": "hi"}],
        seed=1,
        extra_body={"drop_params": False},
    )
    assert ok.headers["x-outcrop-dropped-params"] == "seed"


def test_upstream_http_error_maps_to_openai_error(gateway, client, bedrock_simulator):
    bedrock_simulator.reply(HttpError(429, "ThrottlingException", "Rate exceeded"))
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="nova", messages=[{"role": "user", "content": "hi"}])
    assert "Rate exceeded" in info.value.message
    assert info.value.body["code"] == "ThrottlingException"


def test_auth_is_required(gateway):
    bad = openai.OpenAI(base_url=gateway.url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="nova", messages=[{"role": "user", "content": "hi"}])
    r = httpx.get(gateway.url + "/v1/models", headers={"x-api-key": "sk-test"})
    assert r.status_code == 200
    assert sorted(m["id"] for m in r.json()["data"]) == ["nova", "priced"]
    assert r.json()["data"][0]["owned_by"] == "testprov"


def test_bad_bodies_get_clear_400s(raw_gateway):
    gateway = raw_gateway
    h = {"Authorization": "Bearer sk-test"}
    r = httpx.post(gateway.url + "/v1/chat/completions", headers=h, content=b"{not json")
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    r = httpx.post(
        gateway.url + "/v1/chat/completions", headers=h, json={"model": "nova", "messages": "hi"}
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
    r = httpx.post(
        gateway.url + "/v1/chat/completions", headers=h, json={"model": "nova", "messages": []}
    )
    assert r.status_code == 400
    r = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers=h,
        json={"model": "testprov/", "messages": [{"role": "user", "content": "x"}]},
    )
    assert r.status_code == 400 and "expected testprov/{modelId}" in r.json()["error"]["message"]


def test_raw_model_string_uses_default_settings(raw_gateway, bedrock_simulator, monkeypatch):
    # A raw model string (not a model_name) is routed by the plugin with the default AWS
    # settings: here the environment points the endpoint at the simulator.
    from outcrop.testing import TEST_ACCESS_KEY, TEST_SECRET_KEY

    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", bedrock_simulator.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    bedrock_simulator.reply(ConverseReply("raw ok"))
    client = openai.OpenAI(base_url=raw_gateway.url + "/v1", api_key="sk-test", max_retries=0)
    r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "raw ok"
    assert bedrock_simulator.last().region == "eu-west-3"


def test_mid_stream_exception_becomes_sse_error_event(plugin, gateway, bedrock_simulator):
    bedrock_simulator.reply(
        ConverseReply(
            "partial answer",
            chunks=["partial ", "answer"],
            exception=("throttlingException", "slow down"),
        )
    )
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": "Bearer sk-test"},
        json={"model": "nova", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
    ) as r:
        events = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert r.status_code == 200
    assert '"partial "' in events[0]
    assert "throttlingException: slow down" in events[-1] and '"error"' in events[-1]
    assert "data: [DONE]" not in events
    assert plugin.events.one().status == 502


def test_mid_stream_exception_fails_non_streamed_call(
    outcrop_plugin, gateway_factory, simulator_params, bedrock_simulator
):
    outcrop_plugin(ConversePlugin(always_stream=True), "testprov")
    gw = gateway_factory(
        {"model_list": [{"model_name": "m", "litellm_params": simulator_params(MODEL)}]}
    )
    bedrock_simulator.reply(
        ConverseReply("partial", chunks=["partial"], exception=("throttlingException", "slow"))
    )
    r = httpx.post(
        gw.url + "/v1/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert r.status_code == 502 and "partial" not in r.text
    assert "throttlingException: slow" in r.json()["error"]["message"]


def test_sdk_raises_on_stream_error_event(gateway, client, bedrock_simulator):
    bedrock_simulator.reply(
        ConverseReply("x", chunks=["x"], exception=("validationException", "bad input"))
    )
    stream = client.chat.completions.create(
        model="nova", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    with pytest.raises(openai.APIError, match="bad input"):
        list(stream)


def test_deployment_read_timeout(
    outcrop_plugin, gateway_factory, simulator_params, bedrock_simulator
):
    outcrop_plugin(ConversePlugin(), "testprov")
    gw = gateway_factory(
        {
            "model_list": [
                {"model_name": "slow", "litellm_params": simulator_params(MODEL, timeout=0.2)}
            ]
        }
    )
    bedrock_simulator.reply(ConverseReply("a b", chunks=["a ", "b"], delay=0.8))
    with httpx.stream(
        "POST",
        gw.url + "/v1/chat/completions",
        json={"model": "slow", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
    ) as r:
        events = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert "read timeout" in events[-1]


def test_client_disconnect_cancels_upstream_and_is_accounted(plugin, gateway, bedrock_simulator):
    bedrock_simulator.reply(ConverseReply("one two three four five", delay=0.3))
    plugin.events.clear()
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": "Bearer sk-test"},
        json={"model": "nova", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
    ) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                break  # leave after the first chunk
    event = plugin.events.one()
    assert event.status == 499
    assert event.latency_s < 1.0  # well before the 1.5 s the full upstream stream takes
