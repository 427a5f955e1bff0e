"""What reaches AWS: URL, signature scope, region, endpoint, payload, session, user and trace
headers; and the 400s for bad input, answered before any AWS call."""

from __future__ import annotations

import uuid

import httpx
import openai
import pytest

from outcrop import ConfigError
from outcrop.testing import TEST_ACCESS_KEY, TEST_SECRET_KEY, RawReply

from .common import ARN, AUTH, MODEL, MODEL_EU, PREFIX, SESSION_HEADER, USER

SESSION = "0f6bd1c4-session-for-tests-33-chars-plus"


def post(gateway, **body):
    body.setdefault("messages", USER)
    return httpx.post(gateway.url + "/v1/chat/completions", headers=AUTH, json=body)


def test_wire_form_matches_botocore(client, sim):
    client.chat.completions.create(model="agentcore-runtime-1", messages=USER)
    recorded = sim.last()
    assert recorded.operation == "InvokeAgentRuntime"
    assert recorded.raw_path == (
        "/runtimes/arn%3Aaws%3Abedrock-agentcore%3Aus-west-2%3A123456789012%3Aruntime%2F"
        "my_agent_runtime-AbCdEf1234/invocations"
    )
    assert recorded.params["agentRuntimeArn"] == ARN
    assert (
        recorded.signing_service == "bedrock-agentcore" and recorded.access_key == TEST_ACCESS_KEY
    )
    assert recorded.headers["content-type"] == "application/json"
    assert recorded.headers["accept"] == "application/json"
    signed = recorded.headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"accept", "content-type", "host", "x-amz-date", SESSION_HEADER} <= set(signed)
    assert recorded.json() == {"prompt": USER[0]["content"]}


def test_region_comes_from_the_arn(client, sim):
    client.chat.completions.create(model="agentcore-eu", messages=USER)
    assert sim.last().region == "eu-central-1"


def test_deployment_region_overrides_the_arn(gateway_factory, simulator_params, sim):
    gw = gateway_factory(
        {
            "model_list": [
                {
                    "model_name": "m",
                    "litellm_params": simulator_params(MODEL_EU, aws_region_name="eu-west-1"),
                }
            ]
        }
    )
    assert post(gw, model="m").status_code == 200
    assert sim.last().region == "eu-west-1"


def test_raw_model_string_uses_the_arn_region_and_the_agentcore_endpoint_variable(
    raw_gateway, sim, monkeypatch
):
    # A raw model string (not a model_name) with the standard AWS settings: the endpoint comes from
    # AWS_ENDPOINT_URL_BEDROCK_AGENTCORE, the region from the ARN (over AWS_REGION), signed for it.
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_AGENTCORE", sim.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    r = post(raw_gateway, model=MODEL_EU)
    assert r.status_code == 200, r.text
    assert sim.last().region == "eu-central-1"
    assert r.json()["model"] == MODEL_EU


@pytest.mark.parametrize(
    ("model", "problem"),
    [
        (PREFIX, "ARN is missing"),
        (PREFIX + "my_agent-AbCdEf1234", "not an ARN"),
        (PREFIX + ARN.replace("us-west-2", "moon"), "not an AWS region"),
        (PREFIX + ARN + "/runtime-endpoint/DEFAULT", "qualifier"),
    ],
)
def test_malformed_arn_is_a_400(raw_gateway, sim, model, problem):
    r = post(raw_gateway, model=model)
    assert r.status_code == 400
    error = r.json()["error"]
    assert problem in error["message"] and error["param"] == "model"
    assert sim.requests == []


def test_malformed_arn_in_config_fails_at_startup(gateway_factory, simulator_params):
    with pytest.raises(ConfigError) as info:
        gateway_factory(
            {
                "model_list": [
                    {
                        "model_name": "m",
                        "litellm_params": simulator_params(
                            PREFIX + ARN.replace("123456789012", "12345")
                        ),
                    }
                ]
            }
        )
    assert "model_list[0].litellm_params.model" in str(info.value) and "12 digits" in str(
        info.value
    )


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (
            {"qualifer": "production"},
            "unknown AgentCore parameter(s) in the deployment config: qualifer",
        ),
        ({"payload_format": "xml"}, "`payload_format` must be one of prompt, messages"),
        ({"runtimeSessionId": "short"}, "33 to 256 characters"),
        ({"qualifier": ""}, "`qualifier` must be 1 to 256 characters"),
    ],
)
def test_bad_deployment_parameters_fail_at_startup(
    gateway_factory, simulator_params, extra, problem
):
    with pytest.raises(ConfigError) as info:
        gateway_factory(
            {
                "model_list": [
                    {"model_name": "m", "litellm_params": simulator_params(MODEL, **extra)}
                ]
            }
        )
    assert problem in str(info.value)


# --- session ---------------------------------------------------------------------------------


def test_generated_session_is_sent_and_returned(gateway, sim):
    r = post(gateway, model="agentcore-runtime-1")
    session = r.json()["session_id"]
    assert uuid.UUID(session).version == 4
    assert sim.last().headers[SESSION_HEADER] == session
    assert r.headers["x-outcrop-session-id"] == r.headers[SESSION_HEADER] == session


@pytest.mark.parametrize("where", ["runtimeSessionId", "session_id", "header"])
def test_session_from_the_request(gateway, sim, where):
    if where == "header":
        r = httpx.post(
            gateway.url + "/v1/chat/completions",
            headers={**AUTH, "x-outcrop-session-id": SESSION},
            json={"model": "agentcore-runtime-1", "messages": USER},
        )
    else:
        r = post(gateway, model="agentcore-runtime-1", **{where: SESSION})
    assert r.status_code == 200
    assert sim.last().headers[SESSION_HEADER] == SESSION
    assert r.json()["session_id"] == SESSION == r.headers["x-outcrop-session-id"]


def test_returned_session_continues_the_conversation(client, sim):
    first = client.chat.completions.create(model="agentcore-runtime-1", messages=USER)
    client.chat.completions.create(
        model="agentcore-runtime-1", messages=USER, extra_body={"session_id": first.session_id}
    )
    assert [r.headers[SESSION_HEADER] for r in sim.requests] == [first.session_id] * 2


def test_deployment_session_and_user_apply_unless_the_request_sets_them(gateway, sim):
    r = post(gateway, model="agentcore-fixed-session")
    assert r.json()["session_id"] == "d" * 40
    assert sim.last().headers["x-amzn-bedrock-agentcore-runtime-user-id"] == "tenant-user-7"
    r = post(
        gateway, model="agentcore-fixed-session", runtimeSessionId=SESSION, runtimeUserId="u-2"
    )
    assert r.json()["session_id"] == SESSION
    assert sim.last().headers["x-amzn-bedrock-agentcore-runtime-user-id"] == "u-2"


def test_session_echoed_by_aws_is_the_one_returned(gateway, sim):
    sim.reply(
        RawReply(
            200,
            {"content-type": "application/json", SESSION_HEADER: "aws-picked-this-one"},
            [b'{"result": "ok"}'],
        )
    )
    r = post(gateway, model="agentcore-runtime-1")
    assert r.json()["session_id"] == r.headers[SESSION_HEADER] == "aws-picked-this-one"


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"runtimeSessionId": "x" * 32}, "got 32 characters"),
        ({"runtimeSessionId": "x" * 257}, "33 to 256 characters long, got 257"),
        ({"runtimeSessionId": "é" * 40}, "printable ASCII"),
        ({"runtimeSessionId": 12345678901234567890123456789012345}, "must be a string"),
        ({"runtimeSessionId": SESSION, "session_id": SESSION + "x"}, "disagree"),
        ({"runtimeUserId": ""}, "`runtimeUserId` must be 1 to 1024"),
        ({"qualifier": "prod\n"}, "`qualifier` must be printable text"),
        ({"traceParent": "t" * 129}, "`traceParent` must be 0 to 128"),
        ({"payload_format": "yaml"}, "payload_format"),
        ({"qualifer": "production"}, "unknown AgentCore parameter(s) in the request: qualifer"),
    ],
)
def test_bad_parameters_are_400s_before_aws(gateway, sim, fields, problem):
    r = post(gateway, model="agentcore-runtime-1", **fields)
    assert r.status_code == 400, r.text
    assert problem in r.json()["error"]["message"]
    assert sim.requests == []


def test_short_session_header_is_a_400(gateway, sim):
    r = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={**AUTH, "x-outcrop-session-id": "abc"},
        json={"model": "agentcore-runtime-1", "messages": USER},
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "x-outcrop-session-id"


# --- payload ---------------------------------------------------------------------------------


def test_prompt_is_the_last_user_message_text(client, sim):
    client.chat.completions.create(
        model="agentcore-runtime-1",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "second "},
                    {"type": "text", "text": "question"},
                ],
            },
        ],
    )
    assert sim.last().json() == {"prompt": "second question"}


def test_messages_payload_format(client, sim):
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    client.chat.completions.create(model="agentcore-messages", messages=messages)
    assert sim.last().json() == {"messages": messages}


def test_explicit_payload_is_sent_verbatim(client, sim):
    payload = {"input": {"query": "weather", "city": "Paris"}, "flags": [1, 2]}
    client.chat.completions.create(
        model="agentcore-runtime-1", messages=USER, extra_body={"payload": payload}
    )
    assert sim.last().json() == payload


def test_non_text_prompt_part_is_a_400(client, sim):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="agentcore-runtime-1",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
                    ],
                }
            ],
        )
    assert "payload_format: messages" in info.value.message
    assert sim.requests == []


def test_no_user_message_is_a_400(client, sim):
    with pytest.raises(openai.BadRequestError, match="needs a user message"):
        client.chat.completions.create(
            model="agentcore-runtime-1",
            messages=[{"role": "system", "content": "only a system prompt"}],
        )


def test_sampling_parameters_are_refused_unless_dropped(client, sim):
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.chat.completions.create(
            model="agentcore-runtime-1",
            messages=USER,
            temperature=0.2,
            extra_body={"drop_params": False},
        )
    ok = client.chat.completions.with_raw_response.create(
        model="agentcore-runtime-1", messages=USER, temperature=0.2
    )
    assert ok.parse().choices[0].message.content.startswith("You said:")
    assert ok.headers["x-outcrop-dropped-params"] == "temperature"


# --- user, trace and custom headers ---------------------------------------------------------


def test_user_trace_and_custom_headers_are_forwarded_and_signed(gateway, sim):
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    r = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={
            **AUTH,
            "traceparent": traceparent,
            "tracestate": "congo=t61rcWkgMzE",
            "baggage": "userId=alice",
            "X-Amzn-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793",
            "X-Amzn-Bedrock-AgentCore-Runtime-Custom-Tenant": "acme",
            "X-Unrelated": "not forwarded",
        },
        json={
            "model": "agentcore-runtime-1",
            "messages": USER,
            "runtimeUserId": "alice@example.com",
        },
    )
    assert r.status_code == 200
    h = sim.last().headers
    assert h["traceparent"] == traceparent and h["tracestate"] == "congo=t61rcWkgMzE"
    assert h["baggage"] == "userId=alice"
    assert h["x-amzn-trace-id"] == "Root=1-5759e988-bd862e3fe1be46a994272793"
    assert h["x-amzn-bedrock-agentcore-runtime-custom-tenant"] == "acme"
    assert h["x-amzn-bedrock-agentcore-runtime-user-id"] == "alice@example.com"
    assert "x-unrelated" not in h
    signed = h["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {
        "traceparent",
        "tracestate",
        "baggage",
        "x-amzn-bedrock-agentcore-runtime-user-id",
        "x-amzn-bedrock-agentcore-runtime-custom-tenant",
    } <= set(signed)
    assert "x-amzn-trace-id" not in signed  # botocore never signs it either


def test_oversized_inbound_trace_header_is_dropped_not_fatal(gateway, sim):
    r = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={**AUTH, "traceparent": "0" * 200},
        json={"model": "agentcore-runtime-1", "messages": USER},
    )
    assert r.status_code == 200
    assert "traceparent" not in sim.last().headers


def test_explicit_trace_parameters_win(gateway, sim):
    r = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={**AUTH, "traceparent": "from-header"},
        json={
            "model": "agentcore-runtime-1",
            "messages": USER,
            "traceParent": "from-body",
            "baggage": "k=v",
        },
    )
    assert r.status_code == 200
    assert (
        sim.last().headers["traceparent"] == "from-body" and sim.last().headers["baggage"] == "k=v"
    )


def test_no_secret_reaches_the_agent(client, sim):
    client.chat.completions.create(model="agentcore-runtime-prod", messages=USER)
    recorded = sim.last()
    assert TEST_SECRET_KEY.encode() not in recorded.body
    assert all(TEST_SECRET_KEY not in v for v in recorded.headers.values())
    assert recorded.json() == {
        "prompt": USER[0]["content"]
    }  # no qualifier or settings in the payload


def test_path_and_query_equal_botocores(gateway, sim):
    # The URL is built by hand (no botocore on the request path): prove it equals boto3's.
    import boto3

    qualifier = "prod v1/é:x"
    agentcore = boto3.client(
        "bedrock-agentcore",
        region_name="us-west-2",
        endpoint_url=sim.url,
        aws_access_key_id=TEST_ACCESS_KEY,
        aws_secret_access_key=TEST_SECRET_KEY,
    )
    agentcore.invoke_agent_runtime(
        agentRuntimeArn=ARN,
        qualifier=qualifier,
        runtimeSessionId=SESSION,
        payload=b'{"prompt": "hi"}',
    )
    by_boto = sim.last()
    assert (
        post(
            gateway, model="agentcore-runtime-1", qualifier=qualifier, runtimeSessionId=SESSION
        ).status_code
        == 200
    )
    ours = sim.last()
    assert (ours.raw_path, ours.raw_query) == (by_boto.raw_path, by_boto.raw_query)
    assert ours.headers[SESSION_HEADER] == by_boto.headers[SESSION_HEADER]
