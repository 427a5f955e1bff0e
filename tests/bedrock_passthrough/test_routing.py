"""Routing on the raw path, aliases and only_aliases, model strings, config validation, and the
AWS-shaped errors the gateway makes itself."""

from __future__ import annotations

import httpx
import pytest

import outcrop
from outcrop import ConfigError, DeploymentParams, OutcropError
from outcrop import match_operation as match
from outcrop.app import create_app
from outcrop.testing import HttpError
from outcrop_bedrock_passthrough.plugin import outcrop_parse_route

from .common import ALIAS, MASTER_KEY, sigv4_client

AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}
MESSAGES = [{"role": "user", "content": [{"text": "hi"}]}]
CONVERSE_BODY = b'{"messages": [{"role": "user", "content": [{"text": "hi"}]}]}'
RUNTIME_ARN_RAW = (
    "arn%3Aaws%3Abedrock-agentcore%3Aus-west-2%3A123456789012%3Aruntime%2Fa_b-AbCdEf1234"
)


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        (
            "POST",
            "/model/us.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse-stream",
            "ConverseStream",
        ),
        (
            "POST",
            "/model/arn%3Aaws%3Abedrock%3Aus-west-2%3A1%3Ainference-profile%2Fx/invoke",
            "InvokeModel",
        ),
        ("POST", "/guardrail/g1/version/1/apply", "ApplyGuardrail"),
        ("GET", "/async-invoke", "ListAsyncInvokes"),
        (
            "GET",
            "/async-invoke/arn%3Aaws%3Abedrock%3Aus-west-2%3A1%3Aasync-invoke%2Fabc",
            "GetAsyncInvoke",
        ),
        ("POST", "/agents/AGENT12345/agentAliases/ALIAS12345/sessions/s%3A1/text", "InvokeAgent"),
        ("POST", "/agents/session-1", "InvokeInlineAgent"),
        ("POST", "/flows/F1/aliases/A1", "InvokeFlow"),
        ("POST", "/knowledgebases/KB1/retrieve", "Retrieve"),
        ("POST", "/retrieveAndGenerateStream", "RetrieveAndGenerateStream"),
        ("PUT", "/sessions/", "CreateSession"),
        ("PATCH", "/sessions/s1", "EndSession"),
        ("POST", f"/runtimes/{RUNTIME_ARN_RAW}/invocations", "InvokeAgentRuntime"),
        ("POST", f"/runtimes/{RUNTIME_ARN_RAW}/commands", "InvokeAgentRuntimeCommand"),
        ("POST", f"/runtimes/{RUNTIME_ARN_RAW}/stopruntimesession", "StopRuntimeSession"),
        (
            "GET",
            f"/runtimes/{RUNTIME_ARN_RAW}/invocations/.well-known/agent-card.json",
            "GetAgentCard",
        ),
        ("POST", "/memories/m1/events", "CreateEvent"),
    ],
)
def test_data_plane_paths_route_to_their_operation(method, path, operation):
    found = match(method, path)
    assert found is not None and found.operation.name == operation


def test_labels_stay_encoded_so_an_arn_is_one_segment():
    found = match("POST", f"/runtimes/{RUNTIME_ARN_RAW}/invocations")
    assert found.labels == {"agentRuntimeArn": RUNTIME_ARN_RAW}
    assert (
        found.operation.service == "bedrock-agentcore"
        and found.operation.signing_name == "bedrock-agentcore"
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/guardrails"),  # control plane (plural)
        ("POST", "/agents/AGENT12345/"),  # bedrock-agent PrepareAgent: trailing slash
        ("GET", "/agents/AGENT12345/"),
        ("GET", "/flows/F1/aliases/A1"),  # bedrock-agent GetFlowAlias: same path, other method
        ("POST", "/agents/A/agentaliases/B/sessions/s/text"),  # lower-case: not the runtime API
        ("GET", "/runtimes/"),  # agentcore control plane
        ("POST", "/model-invocation-job"),
        ("GET", "/model/x/converse"),
        ("POST", "/model/x%2Fy"),
        ("GET", "/foundation-models"),
        ("POST", ""),
    ],
)
def test_control_plane_and_unknown_paths_match_nothing(method, path):
    assert match(method, path) is None


def test_unknown_and_control_plane_paths_get_an_aws_error(gateway, bedrock_simulator, recorder):
    for method, path in (
        ("GET", "/bedrock/foundation-models"),
        ("POST", "/bedrock"),
        ("GET", f"/bedrock/model/{ALIAS}/converse"),
        ("POST", "/bedrock/agents/AGENT12345/"),
    ):
        r = httpx.request(method, gateway.url + path, headers=AUTH)
        assert r.status_code == 404, path
        assert r.headers["x-amzn-errortype"] == "UnknownOperationException"
        assert r.headers["content-type"] == "application/json"
        assert "control-plane APIs are not relayed" in r.json()["message"]
    assert bedrock_simulator.requests == []
    assert [e.status for e in recorder.wait_count(4)] == [404] * 4


def test_bidirectional_stream_is_refused_clearly(gateway, bedrock_simulator):
    r = httpx.post(
        f"{gateway.url}/bedrock/model/{ALIAS}/invoke-with-bidirectional-stream", headers=AUTH
    )
    assert r.status_code == 400 and r.headers["x-amzn-errortype"] == "ValidationException"
    assert "bidirectional" in r.json()["message"]


def test_dot_segments_are_refused(gateway, bedrock_simulator):
    r = httpx.post(
        f"{gateway.url}/bedrock/model/%2E%2E/converse", headers=AUTH, content=CONVERSE_BODY
    )
    assert r.status_code == 400 and r.headers["x-amzn-errortype"] == "ValidationException"
    assert bedrock_simulator.requests == []


def test_hand_written_query_is_canonicalized_and_sdk_query_forwarded_as_is(
    gateway, bedrock_simulator
):
    r = httpx.get(f"{gateway.url}/bedrock/async-invoke?maxResults=5&nextToken=a/b:c", headers=AUTH)
    assert r.status_code == 200, r.text
    seen = bedrock_simulator.last("ListAsyncInvokes")
    assert seen.error is None and seen.raw_query == "maxResults=5&nextToken=a%2Fb%3Ac"
    client = sigv4_client("bedrock-runtime", gateway.url)
    client.list_async_invokes(maxResults=5, nextToken="x/y", sortOrder="Descending")
    seen = bedrock_simulator.last("ListAsyncInvokes")
    assert seen.error is None and seen.query == {
        "maxResults": "5",
        "nextToken": "x/y",
        "sortOrder": "Descending",
    }


def test_raw_ids_are_refused_when_a_model_list_exists(
    gateway_factory, make_config, bedrock_simulator, recorder
):
    gw = gateway_factory(make_config())  # a model_list and no general_settings.allow_raw_models
    client = sigv4_client("bedrock-runtime", gw.url)
    assert client.converse(modelId=ALIAS, messages=MESSAGES)["stopReason"] == "end_turn"
    with pytest.raises(client.exceptions.AccessDeniedException) as caught:
        client.converse(modelId="cohere.command-r-v1:0", messages=MESSAGES)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "set general_settings.allow_raw_models: true" in str(caught.value)
    with pytest.raises(client.exceptions.AccessDeniedException):
        client.start_async_invoke(
            modelId="amazon.nova-reel-v1:0",
            modelInput={},
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": "s3://b/k"}},
        )
    client.apply_guardrail(
        guardrailIdentifier="g1",
        guardrailVersion="1",
        source="INPUT",
        content=[{"text": {"text": "x"}}],
    )  # not a model call: allowed
    assert [r.operation for r in bedrock_simulator.requests] == ["Converse", "ApplyGuardrail"]
    assert recorder.wait_count(4)[1].error.startswith("AccessDeniedException: ")


@pytest.mark.parametrize(
    ("only_aliases", "model_list", "served"),
    [
        (True, [], False),  # no model_list would serve raw ids; only_aliases: true refuses them
        (False, None, True),  # a model_list would refuse them; only_aliases: false serves them
    ],
)
def test_only_aliases_is_a_deprecated_spelling_of_allow_raw_models(
    gateway_factory, make_config, bedrock_simulator, only_aliases, model_list, served
):
    gw = gateway_factory(make_config(only_aliases=only_aliases, model_list=model_list))
    r = httpx.post(
        f"{gw.url}/bedrock/model/cohere.command-r-v1:0/converse",
        headers=AUTH,
        content=CONVERSE_BODY,
    )
    assert r.status_code == (200 if served else 403), r.text
    assert len(bedrock_simulator.requests) == (1 if served else 0)


def test_only_aliases_contradicting_allow_raw_models_is_a_config_error(
    gateway_factory, make_config
):
    with pytest.raises(ConfigError) as caught:
        gateway_factory(make_config(only_aliases=True, allow_raw_models=True))
    assert "bedrock_passthrough.only_aliases: deprecated" in str(caught.value)


def test_a_raw_id_served_by_a_deployment_uses_that_deployment(
    gateway_factory, make_config, simulator_params, bedrock_simulator
):
    bedrock_simulator.keys["AKIDDEPLOYMENT000002"] = "deployment/secret/0000000000000000000002"
    try:
        params = simulator_params(
            "bedrock/amazon.nova-lite-v1:0",
            aws_region_name="ap-south-1",
            aws_access_key_id="AKIDDEPLOYMENT000002",
            aws_secret_access_key="deployment/secret/0000000000000000000002",
        )
        gw = gateway_factory(
            make_config(
                model_list=[{"model_name": "nova", "litellm_params": params}], allow_raw_models=True
            )
        )
        sigv4_client("bedrock-runtime", gw.url).converse(
            modelId="amazon.nova-lite-v1:0", messages=MESSAGES
        )
        seen = bedrock_simulator.last("Converse")
        assert (seen.access_key, seen.region) == ("AKIDDEPLOYMENT000002", "ap-south-1")
    finally:
        bedrock_simulator.keys.pop("AKIDDEPLOYMENT000002")


def test_a_model_name_of_an_agent_deployment_is_not_a_native_model(
    gateway_factory, make_config, simulator_params, bedrock_simulator, outcrop_plugin, monkeypatch
):
    class AgentStub:  # stands in for the agent plugin: the pass-through reads only its route
        @outcrop.hookimpl
        def outcrop_register_models(self, register):
            register(outcrop.ModelPrefix("bedrock/agent/", "stub agents"))

        @outcrop.hookimpl
        def outcrop_parse_route(self, model, params):
            agent_id = model.split("/")[2]
            return outcrop.ModelRoute(
                "stub-agent", "bedrock-agent-runtime", "bedrock", resource=agent_id
            )

    monkeypatch.setenv("OUTCROP_DISABLE_PLUGINS", "bedrock_agent")
    outcrop_plugin(AgentStub(), "agent-stub")
    config = make_config(
        model_list=[
            {
                "model_name": "support-agent",
                "litellm_params": simulator_params("bedrock/agent/AGENT12345/ALIAS12345"),
            }
        ]
    )
    gw = gateway_factory(config)
    r = httpx.post(
        f"{gw.url}/bedrock/model/support-agent/converse", headers=AUTH, content=CONVERSE_BODY
    )
    assert r.status_code == 400 and "/v1/chat/completions" in r.json()["message"]
    assert bedrock_simulator.requests == []


def test_chat_completion_on_a_native_model_names_what_serves_it(
    gateway_factory, make_config, bedrock_simulator, monkeypatch
):
    monkeypatch.setenv("OUTCROP_DISABLE_PLUGINS", "bedrock_converse")  # the chat provider
    gateway = gateway_factory(make_config())
    r = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers=AUTH,
        json={"model": ALIAS, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert r.status_code == 400
    message = r.json()["error"]["message"]
    assert (
        "native pass-through at /bedrock/model/us.anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
        in message
    )


def test_aws_errors_are_relayed_unchanged(gateway, bedrock_simulator, recorder):
    bedrock_simulator.reply(
        HttpError(429, "ThrottlingException", "Too many requests, please wait.")
    )
    client = sigv4_client("bedrock-runtime", gateway.url)
    with pytest.raises(client.exceptions.ThrottlingException) as caught:
        client.converse(modelId=ALIAS, messages=MESSAGES)
    response = caught.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert response["Error"]["Message"] == "Too many requests, please wait."
    assert response["ResponseMetadata"]["RequestId"] == bedrock_simulator.last().request_id
    assert (
        recorder.last().status == 429
        and recorder.last().error == "ThrottlingException: Too many requests, please wait."
    )


def test_upstream_unreachable_is_an_aws_shaped_502(gateway_factory, make_config, bedrock_simulator):
    gw = gateway_factory(make_config(api_base="http://127.0.0.1:9", model_list=[]))
    r = httpx.post(
        f"{gw.url}/bedrock/model/cohere.command-r-v1:0/converse",
        headers=AUTH,
        content=CONVERSE_BODY,
    )
    assert r.status_code == 502 and r.headers["x-amzn-errortype"] == "InternalServerException"
    assert "could not reach bedrock-runtime" in r.json()["message"]


def test_no_region_anywhere_is_a_clear_error(gateway_factory, make_config, bedrock_simulator):
    gw = gateway_factory(make_config(aws_region_name=None, model_list=[]))
    r = httpx.post(
        f"{gw.url}/bedrock/model/cohere.command-r-v1:0/converse",
        headers=AUTH,
        content=CONVERSE_BODY,
    )
    assert r.status_code == 400 and "aws_region_name" in r.json()["message"]
    client = sigv4_client("bedrock-runtime", gw.url, region="eu-central-1")
    client.converse(
        modelId="cohere.command-r-v1:0", messages=MESSAGES
    )  # the region the SDK signed for
    assert bedrock_simulator.last("Converse").region == "eu-central-1"


def test_request_body_limit(gateway_factory, make_config, bedrock_simulator):
    config = make_config()
    config["general_settings"]["max_request_bytes"] = 1000
    gw = gateway_factory(config)
    r = httpx.post(f"{gw.url}/bedrock/model/{ALIAS}/invoke", headers=AUTH, content=b"x" * 1001)
    assert r.status_code == 413 and r.headers["x-amzn-errortype"] == "ValidationException"
    assert bedrock_simulator.requests == []


# -- model strings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "model_id", "region"),
    [
        (
            "bedrock/us.anthropic.claude-3-5-sonnet-20240620-v1:0",
            "us.anthropic.claude-3-5-sonnet-20240620-v1:0",
            None,
        ),
        ("bedrock/converse/amazon.nova-pro-v1:0", "amazon.nova-pro-v1:0", None),
        ("bedrock/invoke/anthropic.claude-v2:1", "anthropic.claude-v2:1", None),
        (
            "bedrock/arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.x",
            "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.x",
            "eu-west-1",
        ),
    ],
)
def test_native_model_strings_are_claimed(model, model_id, region):
    route = outcrop_parse_route(model, DeploymentParams(model=model))
    assert route.provider == "bedrock_passthrough" and not route.chat
    assert route.resource == model_id and route.region == region
    assert (route.service, route.signing_name) == ("bedrock-runtime", "bedrock")


@pytest.mark.parametrize(
    "model",
    [
        "bedrock/",
        "bedrock/converse/",
        "bedrock/with space",
        "bedrock/invoke/a?b",
        "bedrock/llama/some/thing",
    ],
)
def test_malformed_native_model_strings_are_errors(model):
    with pytest.raises(OutcropError) as caught:
        outcrop_parse_route(model, DeploymentParams(model=model))
    assert "bedrock/{modelId}" in caught.value.message


# -- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            {"only_aliases": "yes"},
            "bedrock_passthrough.only_aliases: expected `bool | null`, got `str`",
        ),
        (
            {"keys": [{"access_key_id": "OUTCROPKEY0001"}]},
            "bedrock_passthrough.keys[0]: object missing required field `secret_access_key`",
        ),
        (
            {"keys": [{"access_key_id": "bad/key", "secret_access_key": "s" * 20}]},
            "bedrock_passthrough.keys[0].access_key_id: 4-128 characters",
        ),
        (
            {"keys": [{"access_key_id": "OUTCROPKEY0001", "secret_access_key": "short"}]},
            "bedrock_passthrough.keys[0].secret_access_key: must be at least 16 characters",
        ),
        (
            {"endpoints": {"bedrock": "https://x"}},
            "bedrock_passthrough.endpoints.bedrock: unknown service",
        ),
        ({"api_base": "not a url"}, "bedrock_passthrough.api_base: expected an http(s) URL"),
        (
            {"aws_access_key_id": "AKID"},
            "bedrock_passthrough.aws_secret_access_key: required together with aws_access_key_id",
        ),
        ({"surprise": 1}, "bedrock_passthrough.surprise: unknown key"),
        ("nope", "bedrock_passthrough: expected a mapping"),
    ],
)
def test_bad_section_refuses_to_start_with_field_paths(section, expected):
    with pytest.raises(ConfigError) as caught:
        create_app({"bedrock_passthrough": section})
    assert any(line.startswith(expected) for line in caught.value.errors), caught.value.errors


def test_duplicate_keys_are_reported_and_secrets_never_shown():
    keys = [
        {"access_key_id": "OUTCROPKEY0001", "secret_access_key": "first-secret-0000000"},
        {"access_key_id": "OUTCROPKEY0001", "secret_access_key": "second-secret-000000"},
    ]
    with pytest.raises(ConfigError) as caught:
        create_app({"bedrock_passthrough": {"keys": keys}})
    assert caught.value.errors == [
        "bedrock_passthrough.keys[1].access_key_id: 'OUTCROPKEY0001' is listed twice"
    ]
    assert "secret" not in str(caught.value)


def test_no_aws_credentials_is_a_clear_500(gateway_factory, make_config, bedrock_simulator):
    gw = gateway_factory(
        make_config(aws_access_key_id=None, aws_secret_access_key=None, model_list=[])
    )
    r = httpx.post(
        f"{gw.url}/bedrock/model/cohere.command-r-v1:0/converse",
        headers=AUTH,
        content=CONVERSE_BODY,
    )
    assert r.status_code == 500 and r.headers["x-amzn-errortype"] == "InternalServerException"
    assert "AWS credentials are not available" in r.json()["message"]
    assert bedrock_simulator.requests == []
