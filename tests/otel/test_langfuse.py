"""LiteLLM's ``callbacks: ["langfuse"]``: the call's spans, exported over OTLP/HTTP to
``{LANGFUSE_HOST}/api/public/otel/v1/traces`` with the project's keys as HTTP basic auth (read
back from the in-process receiver standing in for Langfuse)."""

from __future__ import annotations

import base64

import pytest

from outcrop import Gateway
from outcrop.config import parse_config
from outcrop.errors import ConfigError
from outcrop.testing import ConverseReply

from .common import CLIENT, SERVER, USER, gateway_config, openai_client
from .receiver import http_receiver

LANGFUSE = {"litellm_settings": {"callbacks": ["langfuse"]}}


def test_langfuse_callback_sends_the_spans_to_langfuse(
    gateway_factory, bedrock_simulator, monkeypatch
):
    with http_receiver() as (langfuse, url):
        monkeypatch.setenv("LANGFUSE_HOST", url + "/")
        monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", "pk-lf-test")
        monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk-lf-test")
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
        # the OTLP variables name another collector: Langfuse's target does not use them
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        gw = gateway_factory(gateway_config(bedrock_simulator.url, **LANGFUSE))
        bedrock_simulator.reply(ConverseReply("Paris.", usage=(12, 3)), times=1)
        openai_client(gw).chat.completions.create(model="nova", messages=USER)
        spans = langfuse.wait(lambda s: len(s) >= 2)
    [root] = [s for s in spans if s.kind == SERVER]
    assert root.attributes["gen_ai.request.model"] == "nova"
    assert (
        root.attributes["gen_ai.usage.input_tokens"],
        root.attributes["gen_ai.usage.output_tokens"],
    ) == (12, 3)
    path, headers = langfuse.requests[0]
    assert path == "/api/public/otel/v1/traces"
    assert (
        headers["authorization"] == "Basic " + base64.b64encode(b"pk-lf-test:sk-lf-test").decode()
    )
    assert headers["x-langfuse-ingestion-version"] == "4"
    assert headers["content-type"] == "application/x-protobuf"


def test_langfuse_without_its_keys_is_a_config_error(bedrock_simulator, monkeypatch):
    monkeypatch.delenv("LANGFUSE_SECRET_KEY", raising=False)
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", "pk-lf-test")
    with pytest.raises(ConfigError) as info:
        Gateway(parse_config(gateway_config(bedrock_simulator.url, **LANGFUSE)))
    assert info.value.errors == [
        "callbacks: langfuse needs LANGFUSE_SECRET_KEY (the Langfuse project's API keys) in the "
        "environment"
    ]


def test_otel_and_langfuse_together_export_one_trace(
    gateway_factory, bedrock_simulator, receiver, monkeypatch
):
    """Both on: each gets the same spans, and they are the trace the upstream request
    continues (one ``traceparent``, the attempt span's id)."""
    with http_receiver() as (langfuse, url):
        monkeypatch.setenv("LANGFUSE_HOST", url)
        monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", "pk-lf-test")
        monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk-lf-test")
        both = {"litellm_settings": {"callbacks": ["otel", "langfuse"]}}
        gw = gateway_factory(gateway_config(bedrock_simulator.url, **both))
        bedrock_simulator.reply(ConverseReply("Paris.", usage=(12, 3)), times=1)
        openai_client(gw).chat.completions.create(model="nova", messages=USER)
        at_langfuse = langfuse.wait(lambda s: len(s) >= 2)
    at_otel = receiver.wait(lambda s: len(s) >= 2)
    assert len(at_otel) == len(at_langfuse) == 2
    key = lambda s: (s.trace_id, s.span_id, s.parent_span_id, s.name, s.attributes)  # noqa: E731
    assert sorted(map(key, at_otel), key=str) == sorted(map(key, at_langfuse), key=str)
    [attempt] = [s for s in at_otel if s.kind == CLIENT]
    seen = bedrock_simulator.last()
    assert seen.headers["traceparent"] == f"00-{attempt.trace_id}-{attempt.span_id}-01"
