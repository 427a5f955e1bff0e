"""bedrock-agent-runtime and bedrock-agentcore through the pass-through with real boto3 clients
(SigV4 with a gateway-issued key: botocore never sends a bearer token to these services)."""

from __future__ import annotations

import json
import time

import pytest

import outcrop
from outcrop.testing import AgentReply, EventStreamReply, RuntimeReply, encode_event

from .common import sigv4_client

RUNTIME_ARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/my_agent-AbCdEf1234"
ENCODED_ARN = (
    "arn%3Aaws%3Abedrock-agentcore%3Aus-east-1%3A123456789012%3Aruntime%2Fmy_agent-AbCdEf1234"
)
SESSION = "a" * 40


def test_retrieve(gateway, bedrock_simulator, recorder):
    client = sigv4_client("bedrock-agent-runtime", gateway.url)
    response = client.retrieve(
        knowledgeBaseId="KB12345678",
        retrievalQuery={"text": "tides"},
        retrievalConfiguration={"vectorSearchConfiguration": {"numberOfResults": 3}},
    )
    assert response["retrievalResults"][0]["content"]["text"] == "A passage about tides"
    seen = bedrock_simulator.last("Retrieve")
    assert seen.error is None and seen.service == "bedrock-agent-runtime"
    assert seen.signing_service == "bedrock" and seen.region == "us-west-2"
    assert (
        seen.json()["retrievalConfiguration"]["vectorSearchConfiguration"]["numberOfResults"] == 3
    )
    event = recorder.last()
    assert event.extra["service"] == "bedrock-agent-runtime" and event.model == "KB12345678"


def test_invoke_agent_streams_events_and_reads_usage_from_traces(
    gateway, bedrock_simulator, recorder
):
    bedrock_simulator.reply(
        AgentReply(
            chunks=["Hello ", "from ", "the agent"],
            delay=0.12,
            usage_steps=[(100, 20), ("postProcessing", 30, 5)],
            foundation_model="anthropic.claude-3-haiku-20240307-v1:0",
        )
    )
    client = sigv4_client("bedrock-agent-runtime", gateway.url)
    started = time.monotonic()
    response = client.invoke_agent(
        agentId="AGENT12345",
        agentAliasId="ALIAS12345",
        sessionId="sess:1",
        inputText="hi",
        enableTrace=True,
        sourceArn="arn:aws:bedrock:us-west-2:123456789012:agent/AGENT12345",
    )
    assert response["sessionId"] == "sess:1"
    assert response["contentType"] == "application/json"
    arrivals = [(time.monotonic() - started, e) for e in response["completion"]]
    text = b"".join(e["chunk"]["bytes"] for _, e in arrivals if "chunk" in e)
    assert text == b"Hello from the agent"
    assert sum("trace" in e for _, e in arrivals) == 4
    assert arrivals[0][0] < arrivals[-1][0] - 0.5  # events are streamed, not collected
    seen = bedrock_simulator.last("InvokeAgent")
    assert seen.raw_path == "/agents/AGENT12345/agentAliases/ALIAS12345/sessions/sess%3A1/text"
    assert (
        seen.headers["x-amz-source-arn"]
        == "arn:aws:bedrock:us-west-2:123456789012:agent/AGENT12345"
    )
    event = recorder.wait_count(1)[-1]
    assert event.stream and event.status == 200
    assert (event.usage.prompt_tokens, event.usage.completion_tokens) == (130, 25)
    # claude-3-haiku: 0.25 / 1.25 USD per million tokens.
    assert event.cost == pytest.approx(130 * 0.25e-6 + 25 * 1.25e-6)


def test_invoke_agent_runtime_json(gateway, bedrock_simulator, recorder):
    bedrock_simulator.reply(RuntimeReply.json({"result": {"answer": 42}}))
    client = sigv4_client("bedrock-agentcore", gateway.url)
    response = client.invoke_agent_runtime(
        agentRuntimeArn=RUNTIME_ARN,
        qualifier="DEFAULT",
        runtimeSessionId=SESSION,
        runtimeUserId="u1",
        payload=b'{"prompt": "hi"}',
        contentType="application/json",
    )
    assert json.loads(response["response"].read()) == {"result": {"answer": 42}}
    assert response["runtimeSessionId"] == SESSION
    assert response["contentType"] == "application/json"
    seen = bedrock_simulator.last("InvokeAgentRuntime")
    assert seen.error is None and seen.signing_service == "bedrock-agentcore"
    assert (
        seen.raw_path == f"/runtimes/{ENCODED_ARN}/invocations"
        and seen.raw_query == "qualifier=DEFAULT"
    )
    assert seen.region == "us-east-1"  # from the runtime ARN
    assert seen.headers["x-amzn-bedrock-agentcore-runtime-user-id"] == "u1"
    assert seen.body == b'{"prompt": "hi"}'
    assert recorder.last().model == RUNTIME_ARN and recorder.last().region == "us-east-1"


def test_invoke_agent_runtime_sse_is_streamed(gateway, bedrock_simulator, recorder):
    bedrock_simulator.reply(RuntimeReply.strands(["Hel", "lo"], usage=(11, 3), delay=0.1))
    client = sigv4_client("bedrock-agentcore", gateway.url)
    started = time.monotonic()
    response = client.invoke_agent_runtime(
        agentRuntimeArn=RUNTIME_ARN,
        runtimeSessionId=SESSION,
        payload=b'{"prompt": "hi"}',
        accept="text/event-stream",
        mcpSessionId="mcp-1",
        traceParent="00-abc-def-01",
    )
    assert response["contentType"] == "text/event-stream"
    lines = []
    for line in response["response"].iter_lines(chunk_size=1):  # no client-side batching
        if line.startswith(b"data: "):
            lines.append((time.monotonic() - started, json.loads(line[6:])))
    deltas = [item["data"] for _, item in lines if "data" in item]
    assert deltas == ["Hel", "lo"]
    assert lines[0][0] < lines[-1][0] - 0.5
    seen = bedrock_simulator.last("InvokeAgentRuntime")
    assert seen.headers["accept"] == "text/event-stream"
    assert (
        seen.headers["mcp-session-id"] == "mcp-1" and seen.headers["traceparent"] == "00-abc-def-01"
    )
    event = recorder.wait_count(1)[-1]
    assert event.stream and (event.usage.prompt_tokens, event.usage.completion_tokens) == (11, 3)


def test_agent_paths_use_the_deployment_of_that_agent(
    gateway_factory, make_config, simulator_params, bedrock_simulator, outcrop_plugin, monkeypatch
):
    """A configured runtime deployment gives its region and credentials."""

    class AgentCoreStub:  # stands in for outcrop-bedrock-agentcore: the pass-through reads its route
        @outcrop.hookimpl
        def outcrop_register_models(self, register):
            register(outcrop.ModelPrefix("stub-runtime/", "stub runtimes"))

        @outcrop.hookimpl
        def outcrop_parse_route(self, model, params):
            arn = model.removeprefix("stub-runtime/")
            return outcrop.ModelRoute(
                "stub", "bedrock-agentcore", "bedrock-agentcore", chat=False, resource=arn
            )

    monkeypatch.setenv("OUTCROP_DISABLE_PLUGINS", "bedrock_agentcore")
    outcrop_plugin(AgentCoreStub(), "agentcore-stub")
    bedrock_simulator.keys["AKIDDEPLOYMENT000001"] = "deployment/secret/0000000000000000000000"
    params = simulator_params(
        f"stub-runtime/{RUNTIME_ARN}",
        aws_region_name="eu-west-1",
        aws_access_key_id="AKIDDEPLOYMENT000001",
        aws_secret_access_key="deployment/secret/0000000000000000000000",
    )
    try:
        gw = gateway_factory(
            make_config(model_list=[{"model_name": "runtime", "litellm_params": params}])
        )
        client = sigv4_client("bedrock-agentcore", gw.url)
        client.invoke_agent_runtime(
            agentRuntimeArn=RUNTIME_ARN, runtimeSessionId=SESSION, payload=b"{}"
        )
        seen = bedrock_simulator.last("InvokeAgentRuntime")
        assert (seen.access_key, seen.region) == ("AKIDDEPLOYMENT000001", "eu-west-1")
        other = RUNTIME_ARN.replace("AbCdEf1234", "ZyXwVu9876")
        client.invoke_agent_runtime(agentRuntimeArn=other, runtimeSessionId=SESSION, payload=b"{}")
        seen = bedrock_simulator.last("InvokeAgentRuntime")
        assert (seen.access_key, seen.region) == (
            "AKIDOUTCROPTEST00001",
            "us-east-1",
        )  # the defaults
    finally:
        bedrock_simulator.keys.pop("AKIDDEPLOYMENT000001")


def test_invoke_agent_runtime_error_is_relayed_unchanged(gateway, bedrock_simulator, recorder):
    client = sigv4_client("bedrock-agentcore", gateway.url)
    with pytest.raises(client.exceptions.ValidationException) as caught:
        client.invoke_agent_runtime(
            agentRuntimeArn="not-an-arn", runtimeSessionId=SESSION, payload=b"{}"
        )
    error = caught.value.response
    assert error["Error"]["Code"] == "ValidationException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["reason"] == "FieldValidationFailed"  # members beyond `message` survive
    seen = bedrock_simulator.last()
    assert error["ResponseMetadata"]["RequestId"] == seen.request_id
    event = recorder.last()
    assert event.status == 400 and event.error.startswith("ValidationException: ")


def test_retrieve_and_generate_stream_relays_events_and_session_header(
    gateway, bedrock_simulator, recorder
):
    frames = [
        encode_event("output", {"text": "Tides are "}),
        encode_event("output", {"text": "moon-driven."}),
        encode_event("citation", {"citation": {"retrievedReferences": []}}),
    ]
    bedrock_simulator.reply(
        EventStreamReply(
            frames, delay=0.05, headers={"x-amzn-bedrock-knowledge-base-session-id": "kb-sess-1"}
        )
    )
    client = sigv4_client("bedrock-agent-runtime", gateway.url)
    response = client.retrieve_and_generate_stream(
        input={"text": "why tides?"},
        retrieveAndGenerateConfiguration={
            "type": "KNOWLEDGE_BASE",
            "knowledgeBaseConfiguration": {
                "knowledgeBaseId": "KB12345678",
                "modelArn": "anthropic.claude-3-haiku-20240307-v1:0",
            },
        },
    )
    assert response["sessionId"] == "kb-sess-1"
    events = list(response["stream"])
    assert "".join(e["output"]["text"] for e in events if "output" in e) == "Tides are moon-driven."
    assert recorder.wait_count(1)[-1].stream and recorder.last().error is None


def test_invoke_agent_runtime_command_event_stream(gateway, bedrock_simulator):
    frames = [
        encode_event("chunk", {"contentStart": {}}),
        encode_event("chunk", {"contentDelta": {"stdout": "hello\n"}}),
        encode_event("chunk", {"contentStop": {"exitCode": 0, "status": "COMPLETED"}}),
    ]
    bedrock_simulator.reply(EventStreamReply(frames), operation="InvokeAgentRuntimeCommand")
    client = sigv4_client("bedrock-agentcore", gateway.url)
    response = client.invoke_agent_runtime_command(
        agentRuntimeArn=RUNTIME_ARN, runtimeSessionId=SESSION, body={"command": "echo hello"}
    )
    events = [e["chunk"] for e in response["stream"]]
    assert events[1] == {"contentDelta": {"stdout": "hello\n"}}
    assert events[2]["contentStop"]["exitCode"] == 0
    seen = bedrock_simulator.last("InvokeAgentRuntimeCommand")
    assert seen.raw_path == f"/runtimes/{ENCODED_ARN}/commands" and seen.error is None
