"""The Bedrock simulator, driven by real boto3 clients and by hand-signed httpx requests."""

from __future__ import annotations

import base64
import json
import re
import time
from urllib.parse import quote

import boto3
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer
from botocore.exceptions import ClientError, EventStreamError

from outcrop import sigv4
from outcrop.operations import DATA_PLANE_SERVICES, all_operations, match_operation
from outcrop.testing import (
    TEST_ACCESS_KEY,
    TEST_SECRET_KEY,
    AgentReply,
    BedrockSimulator,
    ConverseReply,
    HttpError,
    InvokeReply,
    RawReply,
    RuntimeReply,
    ServerThread,
    running_simulator,
    usage_trace,
)

RUNTIME_ARN = "arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/my_agent-AbCdEf1234"
PROFILE_ARN = "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0"
MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"


@pytest.fixture(scope="module")
def running():
    with running_simulator() as sim:
        yield sim


@pytest.fixture
def sim(running) -> BedrockSimulator:
    running.app.reset()
    return running.app


@pytest.fixture(autouse=True)
def _no_bearer_env(monkeypatch):
    monkeypatch.delenv("AWS_BEARER_TOKEN_BEDROCK", raising=False)


def client(sim: BedrockSimulator, service: str, **kwargs):
    return boto3.client(
        service,
        endpoint_url=sim.url,
        region_name="us-west-2",
        aws_access_key_id=kwargs.pop("key", TEST_ACCESS_KEY),
        aws_secret_access_key=kwargs.pop("secret", TEST_SECRET_KEY),
        config=Config(retries={"total_max_attempts": 1}),
        **kwargs,
    )


def signed(
    sim,
    method,
    raw_path,
    body=b"",
    *,
    service="bedrock",
    headers=None,
    query="",
    secret=TEST_SECRET_KEY,
    key=TEST_ACCESS_KEY,
):
    """A request signed by botocore's SigV4Auth over the exact URL httpx will send."""
    url = f"{sim.url}{raw_path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    SigV4Auth(Credentials(key, secret).get_frozen_credentials(), service, "us-west-2").add_auth(
        request
    )
    return url, dict(request.headers.items())


def send(method, url, headers, body=b"") -> httpx.Response:
    return httpx.request(method, httpx.URL(url), headers=headers, content=body)


def aws_error(response: httpx.Response) -> tuple[int, str, str]:
    return response.status_code, response.headers["x-amzn-errortype"], response.json()["message"]


# --- bedrock-agent-runtime ----------------------------------------------------------------------


def test_invoke_agent_default_echo(sim):
    agent = client(sim, "bedrock-agent-runtime")
    response = agent.invoke_agent(
        agentId="AGENT12345",
        agentAliasId="TSTALIASID",
        sessionId="user:42",
        inputText="what is up",
        enableTrace=True,
    )
    assert response["sessionId"] == "user:42"
    assert response["contentType"] == "application/json"
    events = list(response["completion"])
    text = b"".join(e["chunk"]["bytes"] for e in events if "chunk" in e)
    assert text == b"You said: what is up"
    assert sum("chunk" in e for e in events) == 3
    usage = [
        e["trace"]["trace"]["orchestrationTrace"]["modelInvocationOutput"]["metadata"]["usage"]
        for e in events
        if "modelInvocationOutput"
        in e.get("trace", {}).get("trace", {}).get("orchestrationTrace", {})
    ]
    assert usage == [{"inputTokens": 13, "outputTokens": 5}]

    recorded = sim.last("InvokeAgent")
    assert recorded.raw_path == "/agents/AGENT12345/agentAliases/TSTALIASID/sessions/user%3A42/text"
    assert recorded.params == {
        "agentId": "AGENT12345",
        "agentAliasId": "TSTALIASID",
        "sessionId": "user:42",
    }
    assert (recorded.service, recorded.region, recorded.access_key, recorded.signing_service) == (
        "bedrock-agent-runtime",
        "us-west-2",
        TEST_ACCESS_KEY,
        "bedrock",
    )
    assert recorded.json()["enableTrace"] is True and recorded.auth == "sigv4"


def test_traces_only_when_enabled(sim):
    agent = client(sim, "bedrock-agent-runtime")
    sim.reply(AgentReply(["a"], usage_steps=[(1, 2)], rationale="why"), operation="InvokeAgent")
    events = list(
        agent.invoke_agent(agentId="A1", agentAliasId="B1", sessionId="s1", inputText="x")[
            "completion"
        ]
    )
    assert events == [{"chunk": {"bytes": b"a"}}]


def test_agent_reply_full(sim):
    agent = client(sim, "bedrock-agent-runtime")
    citation = {
        "generatedResponsePart": {
            "textResponsePart": {"text": "b", "span": {"start": 0, "end": 1}}
        },
        "retrievedReferences": [{"content": {"text": "source"}}],
    }
    control = {
        "invocationId": "inv-1",
        "invocationInputs": [
            {
                "functionInvocationInput": {
                    "actionGroup": "weather",
                    "function": "get_weather",
                    "parameters": [{"name": "city", "type": "string", "value": "Paris"}],
                }
            }
        ],
    }
    sim.reply(
        AgentReply(
            chunks=["a", "b"],
            usage_steps=[("preProcessing", 5, 1), (100, 20), ("postProcessing", 7, 3)],
            foundation_model="anthropic.claude-3-haiku-20240307-v1:0",
            rationale="thinking",
            traces=[usage_trace("routingClassifier", 9, 9)],
            citations=[citation],
            return_control=control,
            files=[{"name": "out.txt", "type": "text/plain", "bytes": b"file body"}],
        ),
        operation="InvokeAgent",
        times=1,
    )
    events = list(
        agent.invoke_agent(
            agentId="A1", agentAliasId="B1", sessionId="s1", inputText="x", enableTrace=True
        )["completion"]
    )
    traces = [e["trace"]["trace"] for e in events if "trace" in e]
    usages = {
        (step, part["modelInvocationOutput"]["metadata"]["usage"]["inputTokens"])
        for t in traces
        for step, part in t.items()
        if "modelInvocationOutput" in part
    }
    assert usages == {
        ("preProcessingTrace", 5),
        ("orchestrationTrace", 100),
        ("postProcessingTrace", 7),
        ("routingClassifierTrace", 9),
    }
    inputs = [
        part["modelInvocationInput"]
        for t in traces
        for part in t.values()
        if "modelInvocationInput" in part
    ]
    assert {i["foundationModel"] for i in inputs} == {"anthropic.claude-3-haiku-20240307-v1:0"}
    rationales = [
        t["orchestrationTrace"]["rationale"]["text"]
        for t in traces
        if "rationale" in t.get("orchestrationTrace", {})
    ]
    assert rationales == ["thinking"]
    chunks = [e["chunk"] for e in events if "chunk" in e]
    assert chunks[0] == {"bytes": b"a"}
    assert (
        chunks[1]["attribution"]["citations"][0]["retrievedReferences"][0]["content"]["text"]
        == "source"
    )
    (returned,) = [e["returnControl"] for e in events if "returnControl" in e]
    assert returned["invocationId"] == "inv-1"
    (files,) = [e["files"]["files"] for e in events if "files" in e]
    assert files == [{"name": "out.txt", "type": "text/plain", "bytes": b"file body"}]


def test_agent_exception_after_chunks(sim):
    agent = client(sim, "bedrock-agent-runtime")
    sim.reply(AgentReply(["partial"], exception=("throttlingException", "slow down")))
    stream = iter(
        agent.invoke_agent(agentId="A1", agentAliasId="B1", sessionId="s1", inputText="x")[
            "completion"
        ]
    )
    assert next(stream) == {"chunk": {"bytes": b"partial"}}
    with pytest.raises(EventStreamError) as err:
        next(stream)
    assert err.value.response["Error"]["Code"] == "throttlingException"
    assert err.value.response["Error"]["Message"] == "slow down"


def test_invoke_agent_validation(sim):
    agent = client(sim, "bedrock-agent-runtime")
    with pytest.raises(agent.exceptions.ValidationException) as err:
        agent.invoke_agent(
            agentId="AGENT12345", agentAliasId="TSTALIASID", sessionId="bad session!", inputText="x"
        )
    assert "at 'sessionId' failed to satisfy constraint" in str(err.value)
    assert sim.last().error == "ValidationException" and sim.last().status == 400
    with pytest.raises(agent.exceptions.ValidationException):
        agent.invoke_agent(
            agentId="AGENT-1234", agentAliasId="TSTALIASID", sessionId="ok", inputText="x"
        )

    path = "/agents/AGENT12345/agentAliases/TSTALIASID/sessions/s1/text"
    url, headers = signed(
        sim, "POST", path, b"{not json", headers={"Content-Type": "application/json"}
    )
    status, code, _ = aws_error(send("POST", url, headers, b"{not json"))
    assert (status, code) == (400, "ValidationException")


def test_retrieve(sim):
    agent = client(sim, "bedrock-agent-runtime")
    result = agent.retrieve(knowledgeBaseId="KB12345678", retrievalQuery={"text": "llamas"})
    assert "llamas" in result["retrievalResults"][0]["content"]["text"]
    generated = agent.retrieve_and_generate(
        input={"text": "why"},
        retrieveAndGenerateConfiguration={
            "type": "KNOWLEDGE_BASE",
            "knowledgeBaseConfiguration": {
                "knowledgeBaseId": "KB12345678",
                "modelArn": "arn:aws:bedrock:us-west-2::foundation-model/x.y",
            },
        },
    )
    assert generated["output"]["text"] == "You asked: why"


def test_other_operations_answer_empty(sim):
    agent = client(sim, "bedrock-agent-runtime")
    created = agent.create_session()
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    stream = agent.retrieve_and_generate_stream(
        input={"text": "q"},
        retrieveAndGenerateConfiguration={
            "type": "KNOWLEDGE_BASE",
            "knowledgeBaseConfiguration": {
                "knowledgeBaseId": "KB12345678",
                "modelArn": "arn:aws:bedrock:us-west-2::foundation-model/x.y",
            },
        },
    )
    assert list(stream["stream"]) == []


# --- bedrock-runtime ------------------------------------------------------------------------------


def test_converse_and_stream(sim):
    runtime = client(sim, "bedrock-runtime")
    messages = [{"role": "user", "content": [{"text": "hello world"}]}]
    answer = runtime.converse(modelId=MODEL, messages=messages)
    assert answer["output"]["message"]["content"] == [{"text": "You said: hello world"}]
    assert answer["usage"] == {"inputTokens": 12, "outputTokens": 4, "totalTokens": 16}

    sim.reply(
        ConverseReply("Hi there friend", usage=(7, 3), chunks=["Hi ", "there ", "friend"]),
        operation="ConverseStream",
    )
    events = list(runtime.converse_stream(modelId=PROFILE_ARN, messages=messages)["stream"])
    assert [next(iter(e)) for e in events] == [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    assert (
        "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
        == "Hi there friend"
    )
    assert events[-1]["metadata"]["usage"] == {
        "inputTokens": 7,
        "outputTokens": 3,
        "totalTokens": 10,
    }
    recorded = sim.last("ConverseStream")
    assert recorded.params["modelId"] == PROFILE_ARN
    assert "%3A" in recorded.raw_path and "%2F" in recorded.raw_path


def test_invoke_model_and_stream(sim):
    runtime = client(sim, "bedrock-runtime")
    body = json.dumps(
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 50,
            "messages": [{"role": "user", "content": "ping pong"}],
        }
    )
    response = runtime.invoke_model(modelId=MODEL, body=body)
    message = json.loads(response["body"].read())
    assert message["content"][0]["text"] == "You said: ping pong"
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amzn-bedrock-input-token-count"] == "12"
    assert headers["x-amzn-bedrock-output-token-count"] == "4"

    stream = runtime.invoke_model_with_response_stream(modelId=MODEL, body=body)
    chunks = [json.loads(e["chunk"]["bytes"]) for e in stream["body"]]
    assert chunks[0]["type"] == "message_start"
    text = "".join(c["delta"]["text"] for c in chunks if c["type"] == "content_block_delta")
    assert text == "You said: ping pong"
    assert chunks[-1]["amazon-bedrock-invocationMetrics"]["inputTokenCount"] == 12

    sim.reply(
        InvokeReply({"x": 1}, input_tokens=3, output_tokens=4), operation="InvokeModel", times=1
    )
    response = runtime.invoke_model(modelId=MODEL, body=body)
    assert json.loads(response["body"].read()) == {"x": 1}
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-bedrock-output-token-count"] == "4"


def test_count_tokens_and_guardrail(sim):
    runtime = client(sim, "bedrock-runtime")
    counted = runtime.count_tokens(
        modelId=MODEL,
        input={
            "converse": {"messages": [{"role": "user", "content": [{"text": "one two three"}]}]}
        },
    )
    assert counted["inputTokens"] == 3
    native = json.dumps({"messages": [{"role": "user", "content": "a b"}]}).encode()
    assert (
        runtime.count_tokens(modelId=MODEL, input={"invokeModel": {"body": native}})["inputTokens"]
        == 2
    )
    guarded = runtime.apply_guardrail(
        guardrailIdentifier="abc123",
        guardrailVersion="DRAFT",
        source="INPUT",
        content=[{"text": {"text": "hi"}}],
    )
    assert guarded["action"] == "NONE"
    assert sim.last().operation == "ApplyGuardrail"
    assert sim.last().params == {"guardrailIdentifier": "abc123", "guardrailVersion": "DRAFT"}


def test_bearer_api_key_on_bedrock_runtime_only(sim):
    converse = f"{sim.url}/model/{MODEL}/converse"
    body = json.dumps({"messages": [{"role": "user", "content": [{"text": "hi"}]}]}).encode()
    bearer = {"Authorization": "Bearer bedrock-api-key-good", "Content-Type": "application/json"}
    status, code, _ = aws_error(send("POST", converse, bearer, body))
    assert (status, code) == (403, "UnrecognizedClientException")
    sim.bearer_tokens.add("bedrock-api-key-good")
    try:
        assert send("POST", converse, bearer, body).status_code == 200
        assert sim.last().auth == "bearer" and sim.last().access_key is None
        agent = f"{sim.url}/agents/AGENT12345/agentAliases/TSTALIASID/sessions/s1/text"
        assert send("POST", agent, bearer, b"{}").status_code == 403  # agent-runtime: SigV4 only
    finally:
        sim.bearer_tokens.discard("bedrock-api-key-good")


# --- bedrock-agentcore ---------------------------------------------------------------------------


def test_invoke_agent_runtime_json_and_sse(sim):
    core = client(sim, "bedrock-agentcore")
    response = core.invoke_agent_runtime(
        agentRuntimeArn=RUNTIME_ARN,
        qualifier="DEFAULT",
        payload=json.dumps({"prompt": "hi"}).encode(),
    )
    assert response["contentType"] == "application/json"
    assert json.loads(response["response"].read()) == {"result": "You said: hi"}
    session = sim.last().headers["x-amzn-bedrock-agentcore-runtime-session-id"]
    assert response["runtimeSessionId"] == session  # botocore's auto uuid4, echoed
    assert sim.last().params == {"agentRuntimeArn": RUNTIME_ARN, "qualifier": "DEFAULT"}
    assert sim.last().signing_service == "bedrock-agentcore"

    response = core.invoke_agent_runtime(
        agentRuntimeArn=RUNTIME_ARN,
        accept="text/event-stream",
        payload=b'{"prompt": "yo"}',
        runtimeSessionId="s" * 40,
    )
    assert response["contentType"] == "text/event-stream"
    assert response["runtimeSessionId"] == "s" * 40
    events = [
        json.loads(line[6:])
        for line in response["response"].iter_lines()
        if line.startswith(b"data: ")
    ]
    assert "".join(e["data"] for e in events if "data" in e) == "You said: yo"
    (meta,) = [e["event"]["metadata"] for e in events if "metadata" in e.get("event", {})]
    assert (
        meta["usage"]["totalTokens"] == meta["usage"]["inputTokens"] + meta["usage"]["outputTokens"]
    )


def test_runtime_reply_kinds(sim):
    core = client(sim, "bedrock-agentcore")
    sim.reply(RuntimeReply.sse(["plain", {"k": 1}], error=("boom", "ValueError")), times=1)
    body = core.invoke_agent_runtime(agentRuntimeArn=RUNTIME_ARN, payload=b"{}")["response"].read()
    assert body == (
        b'data: "plain"\n\ndata: {"k": 1}\n\n'
        b'data: {"error": "boom", "error_type": "ValueError", '
        b'"message": "An error occurred during streaming"}\n\n'
    )
    sim.reply(RuntimeReply.error("bad tool", "ToolError", events=[{"data": "a"}]), times=1)
    lines = (
        core.invoke_agent_runtime(agentRuntimeArn=RUNTIME_ARN, payload=b"{}")["response"]
        .read()
        .split(b"\n\n")
    )
    assert json.loads(lines[1][6:]) == {
        "error": "bad tool",
        "error_type": "ToolError",
        "message": "An error occurred during streaming",
    }
    sim.reply(RuntimeReply.text("just text"), times=1)
    response = core.invoke_agent_runtime(agentRuntimeArn=RUNTIME_ARN, payload=b"{}")
    assert response["response"].read() == b"just text"
    assert response["contentType"].startswith("text/plain")


def test_agentcore_validation(sim):
    core = client(sim, "bedrock-agentcore")
    path = f"/runtimes/{quote(RUNTIME_ARN, safe='')}/invocations"
    session = {"X-Amzn-Bedrock-AgentCore-Runtime-Session-Id": "short"}  # boto3 refuses to send it
    url, headers = signed(sim, "POST", path, b"{}", service="bedrock-agentcore", headers=session)
    status, code, message = aws_error(send("POST", url, headers, b"{}"))
    assert (status, code) == (400, "ValidationException")
    assert "at 'runtimeSessionId'" in message and "greater than or equal to 33" in message
    with pytest.raises(core.exceptions.ValidationException):
        core.invoke_agent_runtime(
            agentRuntimeArn="arn:aws:bedrock:us-west-2:1:agent/x", payload=b"{}"
        )
    with pytest.raises(core.exceptions.ValidationException):
        core.invoke_agent_runtime(agentRuntimeArn="my_agent-AbCdEf1234", payload=b"{}")
    core.invoke_agent_runtime(
        agentRuntimeArn="my_agent-AbCdEf1234", accountId="123456789012", payload=b"{}"
    )
    assert sim.last().params["accountId"] == "123456789012"


# --- scripting ---------------------------------------------------------------------------------


def test_scripts_times_path_and_callables(sim):
    runtime = client(sim, "bedrock-runtime")
    messages = [{"role": "user", "content": [{"text": "q"}]}]
    sim.reply(
        HttpError(429, "ThrottlingException", "Too many requests"), operation="Converse", times=1
    )
    sim.reply(
        lambda request: ConverseReply(f"model={request.params['modelId']}"),
        path=r"/model/special\.",
    )
    with pytest.raises(runtime.exceptions.ThrottlingException):
        runtime.converse(modelId=MODEL, messages=messages)
    assert (
        runtime.converse(modelId=MODEL, messages=messages)["output"]["message"]["content"][0][
            "text"
        ]
        == "You said: q"
    )
    special = runtime.converse(modelId="special.model-v1:0", messages=messages)
    assert special["output"]["message"]["content"][0]["text"] == "model=special.model-v1:0"

    async def later(request):
        return ConverseReply("async")

    sim.reply(later, operation="Converse", times=1)
    assert (
        runtime.converse(modelId=MODEL, messages=messages)["output"]["message"]["content"][0][
            "text"
        ]
        == "async"
    )


def test_mismatched_reply_is_a_500(sim):
    runtime = client(sim, "bedrock-runtime")
    sim.reply(AgentReply(["x"]), operation="Converse")
    with pytest.raises(ClientError) as err:
        runtime.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "q"}]}])
    assert err.value.response["Error"]["Code"] == "InternalServerException"
    assert "AgentReply answers InvokeAgent" in err.value.response["Error"]["Message"]


def test_unknown_path_is_404(sim):
    url, headers = signed(sim, "POST", "/models/nope/converse")
    status, code, _ = aws_error(send("POST", url, headers))
    assert (status, code) == (404, "UnknownOperationException")
    assert sim.last().error == "UnknownOperationException"


def test_every_model_operation_routes_to_itself():
    everything = all_operations()
    assert len(everything) > 100 and {op.service for op in everything} == set(DATA_PLANE_SERVICES)
    for op in everything:
        path = re.sub(r"\{([^}]+)\}", lambda m: quote(f"v:{m.group(1)}/x", safe=""), op.template)
        found = match_operation(op.method, path)
        assert found is not None and found.operation is op, op.name
        assert all(v.startswith("v:") and v.endswith("/x") for v in found.decoded_labels().values())


# --- authentication --------------------------------------------------------------------------------


def test_accepts_botocore_signed_request_with_arn_path(sim):
    path = f"/runtimes/{quote(RUNTIME_ARN, safe='')}/invocations"
    assert "%3A" in path and "%2F" in path
    url, headers = signed(
        sim,
        "POST",
        path,
        b'{"prompt": "x"}',
        service="bedrock-agentcore",
        query="qualifier=DEFAULT",
        headers={"Content-Type": "application/json"},
    )
    response = send("POST", url, headers, b'{"prompt": "x"}')
    assert response.status_code == 200, response.text
    assert response.json() == {"result": "You said: x"}
    assert response.headers["x-amzn-requestid"] == sim.last().request_id


def test_accepts_outcrop_signer(sim):
    path = f"/model/{quote(PROFILE_ARN, safe='')}/converse"
    body = json.dumps({"messages": [{"role": "user", "content": [{"text": "z"}]}]}).encode()
    headers = {"Content-Type": "application/json"}
    sigv4.sign(
        "POST",
        f"{sim.url}{path}",
        headers,
        body,
        access_key=TEST_ACCESS_KEY,
        secret_key=TEST_SECRET_KEY,
        token="session-token",
        region="eu-west-1",
        service="bedrock",
    )
    response = send("POST", f"{sim.url}{path}", headers, body)
    assert response.status_code == 200, response.text
    assert sim.last().region == "eu-west-1"


def test_rejects_body_altered_after_signing(sim):
    path = "/agents/AGENT12345/agentAliases/TSTALIASID/sessions/s1/text"
    url, headers = signed(
        sim, "POST", path, b'{"inputText": "hi"}', headers={"Content-Type": "application/json"}
    )
    assert send("POST", url, headers, b'{"inputText": "hi"}').status_code == 200
    status, code, message = aws_error(send("POST", url, headers, b'{"inputText": "ho"}'))
    assert (status, code) == (403, "InvalidSignatureException")
    assert message.startswith("The request signature we calculated does not match")


def test_rejects_wrong_signing_name(sim):
    path = f"/runtimes/{quote(RUNTIME_ARN, safe='')}/invocations"
    url, headers = signed(sim, "POST", path, b"{}", service="bedrock")
    status, code, message = aws_error(send("POST", url, headers, b"{}"))
    assert (status, code) == (403, "InvalidSignatureException")
    assert "'bedrock-agentcore'" in message
    url, headers = signed(
        sim, "POST", f"/model/{MODEL}/converse", b"{}", service="bedrock-agentcore"
    )
    assert aws_error(send("POST", url, headers, b"{}"))[1] == "InvalidSignatureException"


def test_rejects_unknown_key_missing_auth_and_expired(sim):
    agent = client(sim, "bedrock-agent-runtime", key="AKIDUNKNOWN000000000", secret="nope")
    with pytest.raises(ClientError) as err:
        agent.retrieve(knowledgeBaseId="KB12345678", retrievalQuery={"text": "q"})
    assert err.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    url = f"{sim.url}/knowledgebases/KB12345678/retrieve"
    status, code, _ = aws_error(send("POST", url, {}, b"{}"))
    assert (status, code) == (403, "MissingAuthenticationTokenException")

    headers = {"Content-Type": "application/json"}
    stale = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() - 16 * 60))
    sigv4.sign(
        "POST",
        url,
        headers,
        b"{}",
        access_key=TEST_ACCESS_KEY,
        secret_key=TEST_SECRET_KEY,
        token=None,
        region="us-west-2",
        service="bedrock",
        timestamp=stale,
    )
    status, code, message = aws_error(send("POST", url, headers, b"{}"))
    assert (status, code) == (403, "InvalidSignatureException")
    assert message.startswith(f"Signature expired: {stale} is now earlier than")
    assert sim.last().error == "InvalidSignatureException" and sim.last().auth is None


def test_extra_keys():
    sim = BedrockSimulator({"AKIDSECOND0000000000": "second-secret"})
    with ServerThread(sim) as server:
        sim.url = server.url
        agent = client(
            sim, "bedrock-agent-runtime", key="AKIDSECOND0000000000", secret="second-secret"
        )
        agent.retrieve(knowledgeBaseId="KB12345678", retrievalQuery={"text": "q"})
        assert sim.last().access_key == "AKIDSECOND0000000000"


# --- streaming and the server -----------------------------------------------------------------------


def read_events_with_times(url, headers, body):
    """Decode frames as the bytes arrive; return (seconds since the request, event) pairs."""
    buffer, seen = EventStreamBuffer(), []
    start = time.perf_counter()
    with httpx.stream(
        "POST", httpx.URL(url), headers=headers, content=body, timeout=10
    ) as response:
        assert response.status_code == 200
        for data in response.iter_raw():
            buffer.add_data(data)
            seen += [(time.perf_counter() - start, m) for m in buffer]
    return seen


def test_events_are_flushed_as_produced(sim):
    sim.reply(AgentReply([f"part{i} " for i in range(4)], delay=0.2), operation="InvokeAgent")
    path = "/agents/AGENT12345/agentAliases/TSTALIASID/sessions/s1/text"
    url, headers = signed(sim, "POST", path, b'{"inputText": "hi"}')
    seen = read_events_with_times(url, headers, b'{"inputText": "hi"}')
    assert len(seen) == 4
    first, last = seen[0][0], seen[-1][0]
    # relative to the first event, so machine load cannot fail it; buffered events come together
    assert last - first >= 0.5, f"events arrived together ({first:.2f}s, {last:.2f}s)"
    assert base64.b64decode(json.loads(seen[0][1].payload)["bytes"]) == b"part0 "


def test_client_disconnect_is_recorded(sim):
    sim.reply(RawReply(200, {"content-type": "text/plain"}, [b"a", b"b", b"c"], delay=0.3))
    url, headers = signed(sim, "POST", "/model/m/converse", b"{}")
    with httpx.stream("POST", httpx.URL(url), headers=headers, content=b"{}") as response:
        assert next(response.iter_raw()) == b"a"
    deadline = time.time() + 2
    while not sim.last().disconnected and time.time() < deadline:
        time.sleep(0.02)
    assert sim.last().disconnected


def test_server_thread_stops_quickly_with_a_stream_in_flight():
    sim = BedrockSimulator()
    sim.reply(RawReply(200, {"content-type": "text/plain"}, [b"x"] * 50, delay=0.2))
    server = ServerThread(sim).start()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.url) and server.port > 0
    sim.url = server.url
    url, headers = signed(sim, "POST", "/model/m/converse", b"{}")
    with httpx.stream("POST", httpx.URL(url), headers=headers, content=b"{}") as response:
        next(response.iter_raw())
        start = time.perf_counter()
        server.stop()
        assert time.perf_counter() - start < 1.0
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url)


def test_server_thread_https_and_bearer(tmp_path, monkeypatch):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile, cafile = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))
    simulator = BedrockSimulator(bearer_tokens={"bedrock-api-key-good"})
    with running_simulator(simulator, certfile=str(certfile), keyfile=str(keyfile)) as sim:
        assert sim.url.startswith("https://")
        options = dict(
            endpoint_url=sim.url,
            region_name="us-west-2",
            verify=str(cafile),
            aws_access_key_id=TEST_ACCESS_KEY,
            aws_secret_access_key=TEST_SECRET_KEY,
        )
        agent = boto3.client("bedrock-agent-runtime", **options)
        assert agent.retrieve(knowledgeBaseId="KB12345678", retrievalQuery={"text": "q"})[
            "retrievalResults"
        ]
        # botocore sends a Bedrock API key only over HTTPS, and only to bedrock-runtime.
        monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "bedrock-api-key-good")
        runtime = boto3.client("bedrock-runtime", **options)
        runtime.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}])
        assert sim.app.last().auth == "bearer"
        boto3.client("bedrock-agent-runtime", **options).retrieve(
            knowledgeBaseId="KB12345678", retrievalQuery={"text": "q"}
        )
        assert sim.app.last().auth == "sigv4"
