"""Traces, read back from an in-process OTLP receiver (HTTP/protobuf and gRPC): one span per
call with the GenAI attributes, one child per upstream attempt, the first-token event, the
client's trace continued, and ``traceparent`` arriving at the simulator (AgentCore included)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import httpx
import openai
import pytest
from botocore.config import Config

from outcrop.testing import (
    TEST_ACCESS_KEY,
    TEST_SECRET_KEY,
    ConverseReply,
    HttpError,
    RuntimeReply,
)

from .receiver import Receiver, Span, grpc_receiver, http_receiver

MASTER_KEY = "sk-otel-master"
SDK_KEY_ID = "OUTCROPOTELKEY0001"
SDK_SECRET = "outcrop-otel-secret-00000000000001"
NOVA = "amazon.nova-lite-v1:0"
RUNTIME = "arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/my_agent_runtime-AbCdEf1234"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
USER = [{"role": "user", "content": "what is the capital of France?"}]
SERVER, CLIENT = 2, 3  # SpanKind in the protobuf (SPAN_KIND_SERVER, SPAN_KIND_CLIENT)
ERROR = 2  # STATUS_CODE_ERROR


def _config(url: str, **extra: Any) -> dict[str, Any]:
    creds = {
        "aws_region_name": "us-west-2",
        "aws_access_key_id": TEST_ACCESS_KEY,
        "aws_secret_access_key": TEST_SECRET_KEY,
        "api_base": url,
    }
    return {
        "model_list": [
            {
                "model_name": "nova",
                "litellm_params": {
                    "model": f"bedrock/converse/{NOVA}",
                    "input_cost_per_token": 0.001,
                    "output_cost_per_token": 0.002,
                    **creds,
                },
            },
            {
                "model_name": "agent",
                "litellm_params": {"model": f"bedrock/agentcore/{RUNTIME}", **creds},
            },
        ],
        "litellm_settings": {"callbacks": ["otel"]},
        "general_settings": {"master_key": MASTER_KEY},
        "bedrock_passthrough": {
            **creds,
            "keys": [{"access_key_id": SDK_KEY_ID, "secret_access_key": SDK_SECRET}],
        },
        **extra,
    }


@pytest.fixture(params=["http/protobuf", "grpc"])
def receiver(request, monkeypatch) -> Iterator[Receiver]:
    make = grpc_receiver if request.param == "grpc" else http_receiver
    with make() as (rec, endpoint):
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", request.param)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")  # export within milliseconds
        monkeypatch.setenv("OTEL_SERVICE_NAME", "gateway-under-test")
        yield rec


@pytest.fixture
def make_gateway(gateway_factory, bedrock_simulator) -> Callable[..., Any]:
    return lambda **extra: gateway_factory(_config(bedrock_simulator.url, **extra))


def _client(gw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=MASTER_KEY, max_retries=0)


def _trace_headers() -> dict[str, str]:
    return {
        "traceparent": f"00-{TRACE}-{CLIENT_SPAN}-01",
        "tracestate": "vendor=abc",
        "baggage": "user=alice",
    }


def _call_spans(rec: Receiver, count: int) -> tuple[list[Span], list[Span]]:
    """(server spans, client spans) once ``count`` spans arrived."""
    spans = rec.wait(lambda s: len(s) >= count)
    assert len(spans) == count, [s.name for s in spans]
    return [s for s in spans if s.kind == SERVER], [s for s in spans if s.kind == CLIENT]


@pytest.mark.parametrize("stream", [False, True])
def test_a_chat_call_continues_the_client_trace(receiver, make_gateway, bedrock_simulator, stream):
    gw = make_gateway()
    bedrock_simulator.reply(ConverseReply("Paris.", usage=(12, 3)), times=1)
    answer = _client(gw).chat.completions.create(
        model="nova", messages=USER, stream=stream, extra_headers=_trace_headers()
    )
    if stream:
        assert "".join(c.choices[0].delta.content or "" for c in answer if c.choices) == "Paris."
    [root], [attempt] = _call_spans(receiver, 2)
    # the call joins the client's trace, the upstream attempt is its child
    assert root.trace_id == attempt.trace_id == TRACE
    assert root.parent_span_id == CLIENT_SPAN
    assert attempt.parent_span_id == root.span_id
    assert root.start <= attempt.start <= attempt.end <= root.end
    # and AWS got the attempt's span as its parent, with the rest of the client's context
    seen = bedrock_simulator.last()
    assert seen.headers["traceparent"] == f"00-{TRACE}-{attempt.span_id}-01"
    assert seen.headers["tracestate"] == "vendor=abc"
    assert seen.headers["baggage"] == "user=alice"
    a = root.attributes
    assert root.name == "chat nova"
    assert a["gen_ai.system"] == "aws.bedrock" and a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == "nova"
    assert NOVA in a["gen_ai.response.model"]
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (12, 3)
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["outcrop.deployment"] == "nova#0" and a["outcrop.surface"] == "chat"
    assert a["outcrop.cost_usd"] == pytest.approx(12 * 0.001 + 3 * 0.002)
    assert "outcrop.attempts" not in a and a["http.response.status_code"] == 200  # one attempt
    assert "gen_ai.input.messages" not in a and "gen_ai.output.messages" not in a
    assert root.resource["service.name"] == "gateway-under-test"
    assert attempt.attributes["http.response.status_code"] == 200
    first_token = [e for e in root.events if e[0] == "gen_ai.first_token"]
    if stream:
        [(_, at, attrs)] = first_token
        assert root.start < at <= root.end and attrs["outcrop.time_to_first_token_s"] > 0
    else:
        assert not first_token


def test_without_a_client_trace_a_new_one_starts(receiver, make_gateway, bedrock_simulator):
    gw = make_gateway()
    bedrock_simulator.reply(ConverseReply("hi"), times=1)
    _client(gw).chat.completions.create(model="nova", messages=USER)
    [root], [attempt] = _call_spans(receiver, 2)
    assert root.parent_span_id == "" and root.trace_id != TRACE
    seen = bedrock_simulator.last()
    assert seen.headers["traceparent"] == f"00-{root.trace_id}-{attempt.span_id}-01"
    assert "tracestate" not in seen.headers


def test_errors(receiver, make_gateway, bedrock_simulator):
    gw = make_gateway()
    client = _client(gw)
    with pytest.raises(openai.BadRequestError):  # refused before any upstream request
        client.chat.completions.create(model="nova", messages=[], extra_headers=_trace_headers())
    [refused], attempts = _call_spans(receiver, 1)
    assert not attempts and refused.status == ERROR
    assert refused.parent_span_id == CLIENT_SPAN and refused.trace_id == TRACE
    assert refused.attributes["http.response.status_code"] == 400
    bedrock_simulator.reply(HttpError(500, "InternalServerException", "boom"), times=1)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="nova", messages=USER)
    spans = receiver.wait(lambda s: len(s) >= 3)
    [failed] = [
        s for s in spans if s.kind == SERVER and s is not refused and s.span_id != refused.span_id
    ]
    [attempt] = [s for s in spans if s.kind == CLIENT]
    assert failed.status == attempt.status == ERROR
    assert failed.attributes["error.type"] == "InternalServerException"
    assert attempt.attributes["http.response.status_code"] == 500  # what AWS answered
    assert failed.attributes["http.response.status_code"] == 502  # what the client got
    assert attempt.parent_span_id == failed.span_id


def test_agentcore_receives_the_trace(receiver, make_gateway, bedrock_simulator):
    gw = make_gateway()
    bedrock_simulator.reply(RuntimeReply.text("Bonjour."), times=1)
    answer = _client(gw).chat.completions.create(
        model="agent", messages=USER, extra_headers=_trace_headers()
    )
    assert answer.choices[0].message.content == "Bonjour."
    [root], [attempt] = _call_spans(receiver, 2)
    seen = bedrock_simulator.last()
    assert seen.operation == "InvokeAgentRuntime" and seen.auth == "sigv4"
    assert seen.headers["traceparent"] == f"00-{TRACE}-{attempt.span_id}-01"
    assert seen.headers["baggage"] == "user=alice"
    assert root.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert root.name == "invoke_agent agent"


def test_passthrough_calls_are_traced(receiver, make_gateway, bedrock_simulator):
    gw = make_gateway()
    runtime = boto3.session.Session().client(
        "bedrock-runtime",
        region_name="us-west-2",
        endpoint_url=gw.url + "/bedrock",
        aws_access_key_id=SDK_KEY_ID,
        aws_secret_access_key=SDK_SECRET,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )
    bedrock_simulator.reply(ConverseReply("fine", usage=(5, 2)), times=1)
    runtime.converse(modelId="nova", messages=[{"role": "user", "content": [{"text": "hi"}]}])
    [root], [attempt] = _call_spans(receiver, 2)
    assert root.attributes["outcrop.surface"] == "passthrough"
    assert root.attributes["gen_ai.usage.output_tokens"] == 2
    seen = bedrock_simulator.last()
    assert seen.auth == "sigv4" and seen.error is None
    assert seen.headers["traceparent"] == f"00-{root.trace_id}-{attempt.span_id}-01"


@pytest.mark.parametrize("stream", [False, True])
def test_prompts_and_answers_only_when_opted_in(receiver, make_gateway, bedrock_simulator, stream):
    gw = make_gateway(otel={"capture_content": True})
    bedrock_simulator.reply(ConverseReply("Paris is the capital."), times=1)
    list(_client(gw).chat.completions.create(model="nova", messages=USER, stream=True)) if (
        stream
    ) else _client(gw).chat.completions.create(model="nova", messages=USER)
    [root], _ = _call_spans(receiver, 2)
    assert "capital of France" in root.attributes["gen_ai.input.messages"]
    assert root.attributes["gen_ai.output.messages"] == "Paris is the capital."


def test_off_unless_configured(gateway_factory, bedrock_simulator):
    config = _config(bedrock_simulator.url)
    del config["litellm_settings"]
    gw = gateway_factory(config)
    assert not [n for n, _ in gw.gateway.pm.list_name_plugin() if n.startswith("outcrop_otel.")]
    assert gw.gateway._before_upstream is False
    bedrock_simulator.reply(ConverseReply("hi"), times=1)
    _client(gw).chat.completions.create(model="nova", messages=USER, extra_headers=_trace_headers())
    assert "traceparent" not in bedrock_simulator.last().headers


def test_an_unknown_protocol_is_a_config_error(monkeypatch, bedrock_simulator):
    from outcrop import Gateway
    from outcrop.config import parse_config
    from outcrop.errors import ConfigError

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with pytest.raises(ConfigError) as info:
        Gateway(parse_config(_config(bedrock_simulator.url)))
    assert info.value.errors == [
        "OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' is not supported; use one of http/protobuf, grpc"
    ]


def test_raw_http_client_trace(receiver, make_gateway, bedrock_simulator):
    """A malformed traceparent starts a new trace instead of failing the call."""
    gw = make_gateway()
    bedrock_simulator.reply(ConverseReply("hi"), times=1)
    r = httpx.post(
        gw.url + "/v1/chat/completions",
        json={"model": "nova", "messages": USER},
        headers={"authorization": f"Bearer {MASTER_KEY}", "traceparent": "00-zz-yy-01"},
    )
    assert r.status_code == 200
    [root], _ = _call_spans(receiver, 2)
    assert root.parent_span_id == ""


def test_every_attempt_is_a_child_span_and_carries_its_own_traceparent(
    receiver, gateway_factory, bedrock_simulator
):
    config = _config(bedrock_simulator.url)
    config["model_list"].append({**config["model_list"][0], "model_name": "lite"})
    config["router_settings"] = {"num_retries": 1, "fallbacks": [{"nova": ["lite"]}]}
    gw = gateway_factory(config)
    bedrock_simulator.reply(HttpError(503, "ServiceUnavailableException", "busy"), times=2)
    bedrock_simulator.reply(ConverseReply("fine"), times=1)
    _client(gw).chat.completions.create(model="nova", messages=USER, extra_headers=_trace_headers())
    [root], attempts = _call_spans(receiver, 4)
    attempts.sort(key=lambda s: s.start)
    assert [a.attributes["outcrop.attempt"] for a in attempts] == [1, 2, 3]
    assert [a.attributes["http.response.status_code"] for a in attempts] == [503, 503, 200]
    assert [a.attributes["outcrop.deployment"] for a in attempts] == ["nova#0", "nova#0", "lite#2"]
    assert all(a.parent_span_id == root.span_id for a in attempts)
    assert attempts[0].end <= attempts[1].start and attempts[1].end <= attempts[2].start
    assert root.attributes["outcrop.attempts"] == 3
    sent = [r.headers["traceparent"] for r in bedrock_simulator.requests]
    assert sent == [f"00-{TRACE}-{a.span_id}-01" for a in attempts]
