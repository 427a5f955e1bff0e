"""Traces, read back from an in-process OTLP receiver (HTTP/protobuf and gRPC): one span per
call with the GenAI attributes, one child per upstream attempt, the first-token event, the
client's trace continued, and ``traceparent`` arriving at the simulator (AgentCore included)."""

from __future__ import annotations

import httpx
import openai
import pytest

from outcrop.testing import (
    ConverseReply,
    HttpError,
    RuntimeReply,
)
from tests.clients import sigv4_client

from .common import (
    CLIENT,
    CLIENT_SPAN,
    ERROR,
    MASTER_KEY,
    NOVA,
    SDK_KEY_ID,
    SDK_SECRET,
    SERVER,
    TRACE,
    USER,
    gateway_config,
    openai_client,
    trace_headers,
)
from .receiver import Receiver, Span


def _call_spans(rec: Receiver, count: int) -> tuple[list[Span], list[Span]]:
    """(server spans, client spans) once ``count`` spans arrived."""
    spans = rec.wait(lambda s: len(s) >= count)
    assert len(spans) == count, [s.name for s in spans]
    return [s for s in spans if s.kind == SERVER], [s for s in spans if s.kind == CLIENT]


@pytest.mark.parametrize("stream", [False, True])
def test_a_chat_call_continues_the_client_trace(receiver, make_gateway, bedrock_simulator, stream):
    gw = make_gateway()
    bedrock_simulator.reply(ConverseReply("Paris.", usage=(12, 3)), times=1)
    answer = openai_client(gw).chat.completions.create(
        model="nova", messages=USER, stream=stream, extra_headers=trace_headers()
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
    openai_client(gw).chat.completions.create(model="nova", messages=USER)
    [root], [attempt] = _call_spans(receiver, 2)
    assert root.parent_span_id == "" and root.trace_id != TRACE
    seen = bedrock_simulator.last()
    assert seen.headers["traceparent"] == f"00-{root.trace_id}-{attempt.span_id}-01"
    assert "tracestate" not in seen.headers


def test_errors(receiver, make_gateway, bedrock_simulator):
    gw = make_gateway()
    client = openai_client(gw)
    with pytest.raises(openai.BadRequestError):  # refused before any upstream request
        client.chat.completions.create(model="nova", messages=[], extra_headers=trace_headers())
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
    answer = openai_client(gw).chat.completions.create(
        model="agent", messages=USER, extra_headers=trace_headers()
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
    runtime = sigv4_client("bedrock-runtime", gw.url, SDK_KEY_ID, SDK_SECRET)
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
    list(openai_client(gw).chat.completions.create(model="nova", messages=USER, stream=True)) if (
        stream
    ) else openai_client(gw).chat.completions.create(model="nova", messages=USER)
    [root], _ = _call_spans(receiver, 2)
    assert "capital of France" in root.attributes["gen_ai.input.messages"]
    assert root.attributes["gen_ai.output.messages"] == "Paris is the capital."


def test_off_unless_configured(gateway_factory, bedrock_simulator):
    config = gateway_config(bedrock_simulator.url)
    del config["litellm_settings"]
    gw = gateway_factory(config)
    assert not [n for n, _ in gw.gateway.pm.list_name_plugin() if n.startswith("outcrop_otel.")]
    assert gw.gateway._before_upstream is False
    bedrock_simulator.reply(ConverseReply("hi"), times=1)
    openai_client(gw).chat.completions.create(
        model="nova", messages=USER, extra_headers=trace_headers()
    )
    assert "traceparent" not in bedrock_simulator.last().headers


def test_an_unknown_protocol_is_a_config_error(monkeypatch, bedrock_simulator):
    from outcrop import Gateway
    from outcrop.config import parse_config
    from outcrop.errors import ConfigError

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with pytest.raises(ConfigError) as info:
        Gateway(parse_config(gateway_config(bedrock_simulator.url)))
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
    config = gateway_config(bedrock_simulator.url)
    config["model_list"].append({**config["model_list"][0], "model_name": "lite"})
    config["router_settings"] = {"num_retries": 1, "fallbacks": [{"nova": ["lite"]}]}
    gw = gateway_factory(config)
    bedrock_simulator.reply(HttpError(503, "ServiceUnavailableException", "busy"), times=2)
    bedrock_simulator.reply(ConverseReply("fine"), times=1)
    openai_client(gw).chat.completions.create(
        model="nova", messages=USER, extra_headers=trace_headers()
    )
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
