"""The pure pieces: ARN parsing, SSE framing, text extraction and the event translator."""

from __future__ import annotations

import pytest

from outcrop import OutcropError, Usage
from outcrop_bedrock_agentcore.models import parse_runtime_arn
from outcrop_bedrock_agentcore.request import invocation_url
from outcrop_bedrock_agentcore.response import EventTranslator
from outcrop_bedrock_agentcore.shapes import extract_text, usage_from
from outcrop_bedrock_agentcore.sse import iter_sse

from .common import ARN


def test_arn_parts():
    runtime = parse_runtime_arn(ARN)
    assert (runtime.partition, runtime.region, runtime.account, runtime.runtime_id) == (
        "aws",
        "us-west-2",
        "123456789012",
        "my_agent_runtime-AbCdEf1234",
    )
    gov = parse_runtime_arn(
        "arn:aws-us-gov:bedrock-agentcore:us-gov-west-1:123456789012:runtime/a-1"
    )
    assert gov.partition == "aws-us-gov" and gov.region == "us-gov-west-1"
    # the LiteLLM page's placeholder is valid configuration (AWS judges the id itself)
    assert (
        parse_runtime_arn(
            "arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/my-agent-runtime"
        ).runtime_id
        == "my-agent-runtime"
    )


@pytest.mark.parametrize(
    ("arn", "problem"),
    [
        ("", "missing"),
        ("my_agent-AbCdEf1234", "not an ARN"),
        ("arn:aws:bedrock-agentcore:us-west-2:123456789012", "not an ARN"),
        ("arn:azure:bedrock-agentcore:us-west-2:123456789012:runtime/a", "partition"),
        ("arn:aws:bedrock:us-west-2:123456789012:agent/ABCDEFGHIJ", "bedrock/agent/"),
        ("arn:aws:bedrock-agentcore:uswest2:123456789012:runtime/a", "not an AWS region"),
        ("arn:aws:bedrock-agentcore:us-west-2:1234:runtime/a", "12 digits"),
        ("arn:aws:bedrock-agentcore:us-west-2:123456789012:memory/a", "runtime/{runtime_id}"),
        (
            "arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/a/runtime-endpoint/prod",
            "qualifier",
        ),
        ("arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/a.b", "not a runtime id"),
        ("arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/a b", "whitespace"),
    ],
)
def test_bad_arns_name_the_problem(arn, problem):
    with pytest.raises(OutcropError) as info:
        parse_runtime_arn(arn)
    assert info.value.status == 400 and info.value.param == "model"
    assert problem in info.value.message
    assert "bedrock/agentcore/arn:aws:bedrock-agentcore:{region}" in info.value.message


def test_url_is_encoded_like_botocore():
    url = invocation_url("https://bedrock-agentcore.us-west-2.amazonaws.com", ARN, "prod v1/x")
    assert url == (
        "https://bedrock-agentcore.us-west-2.amazonaws.com/runtimes/arn%3Aaws%3Abedrock-agentcore"
        "%3Aus-west-2%3A123456789012%3Aruntime%2Fmy_agent_runtime-AbCdEf1234/invocations"
        "?qualifier=prod%20v1%2Fx"
    )
    assert "?" not in invocation_url("http://h", ARN, None)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("plain", "plain"),
        ({"result": "from the sample app"}, "from the sample app"),
        ({"result": {"role": "assistant", "content": [{"text": "a"}, {"text": "b"}]}}, "ab"),
        (
            {"output": {"message": {"role": "assistant", "content": [{"text": "converse"}]}}},
            "converse",
        ),
        ({"choices": [{"message": {"role": "assistant", "content": "openai"}}]}, "openai"),
        ({"response": "r"}, "r"),
        ({"content": [{"type": "text", "text": "t"}, {"type": "image", "source": {}}]}, "t"),
        ({"status": "ok", "count": 3}, None),
        (42, None),
    ],
)
def test_extract_text(value, text):
    assert extract_text(value) == text


def test_usage_conventions():
    assert usage_from({"inputTokens": 3, "outputTokens": 4}) == Usage(3, 4, 7)
    assert usage_from({"prompt_tokens": 1, "completion_tokens": 2}) == Usage(1, 2, 3)
    assert usage_from({"input_tokens": 5, "output_tokens": 6}) == Usage(5, 6, 11)
    assert usage_from({"inputTokens": "3", "outputTokens": 4}) is None
    assert usage_from(None) is None


async def _lines(*lines: bytes):
    for line in lines:
        yield line


async def test_sse_framing():
    events = [
        e
        async for e in iter_sse(
            _lines(
                b": keep-alive",
                b"data: one",
                b"",
                b"event: error",
                b"data: line 1",
                b"data:line 2",
                b"",
                b"id: 7",
                b"",
            )
        )
    ]
    assert [(e.name, e.data) for e in events] == [("", b"one"), ("error", b"line 1\nline 2")]


async def test_sse_event_left_open_at_the_end_is_a_truncation():
    events = []
    with pytest.raises(OutcropError) as caught:
        async for event in iter_sse(_lines(b"data: one", b"", b"data: unterminated")):
            events.append(event.data)
    assert events == [b"one"] and caught.value.status == 502


def _feed(translator, *payloads):
    return [d for p in payloads if (d := translator.feed("", p)) is not None]


def test_strands_channels_are_not_doubled_and_usage_is_summed():
    t = EventTranslator()
    deltas = _feed(
        t,
        b'{"init_event_loop": true}',
        b'{"event": {"messageStart": {"role": "assistant"}}}',
        b'{"event": {"contentBlockDelta": {"delta": {"reasoningContent": {"text": "hmm"}}}}}',
        b'{"reasoningText": "hmm", "reasoning": true}',
        b'{"event": {"contentBlockDelta": {"delta": {"toolUse": {"input": "{}"}}}}}',
        b'{"event": {"messageStop": {"stopReason": "tool_use"}}}',
        b'{"event": {"metadata": {"usage": {"inputTokens": 10, "outputTokens": 2}}}}',
        b'{"message": {"role": "assistant", "content": [{"toolUse": {}}]}}',
        b'{"event": {"contentBlockDelta": {"delta": {"text": "Hi"}}}}',
        b'{"data": "Hi", "delta": {"text": "Hi"}}',
        b'{"event": {"messageStop": {"stopReason": "max_tokens"}}}',
        b'{"event": {"metadata": {"usage": {"inputTokens": 20, "outputTokens": 5}}}}',
        b'{"result": "Hi"}',
    )
    assert [d.reasoning_content for d in deltas if d.reasoning_content] == ["hmm"]
    assert [d.content for d in deltas if d.content] == ["Hi"]
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["length"]
    assert [d.usage for d in deltas if d.usage] == [Usage(10, 2, 12), Usage(30, 7, 37)]
    assert t.finish() is None


def test_callback_channel_first_wins_too():
    t = EventTranslator()
    deltas = _feed(
        t, b'{"data": "A"}', b'{"event": {"contentBlockDelta": {"delta": {"text": "A"}}}}'
    )
    assert [d.content for d in deltas] == ["A"]


def test_plain_strings_text_and_done():
    t = EventTranslator()
    deltas = _feed(
        t, b'"Hello "', b"world,", b" ", b"[1 of 2] done", b"42", b"[DONE]", b"null", b""
    )
    assert "".join(d.content for d in deltas) == "Hello world, [1 of 2] done42"


def test_unrecognized_events_are_never_silently_empty():
    t = EventTranslator()
    assert _feed(t, b'{"status": "thinking"}', b'{"status": "done", "n": 2}') == []
    last = t.finish()
    assert last.content == '{"status":"thinking"}\n{"status":"done","n":2}'
    assert last.extra == {
        "agentcore_response": [{"status": "thinking"}, {"status": "done", "n": 2}]
    }


@pytest.mark.parametrize(
    "payload",
    [
        b'{"error": "boom", "error_type": "ValueError", "message": "An error occurred during streaming"}',
        b'{"error": {"code": 7}}',
    ],
)
def test_error_event_raises(payload):
    with pytest.raises(OutcropError) as info:
        EventTranslator().feed("", payload)
    assert info.value.status == 502 and info.value.code == "agent_stream_error"
    assert "failed mid-stream" in info.value.message


def test_named_error_event_raises():
    with pytest.raises(OutcropError, match="out of memory"):
        EventTranslator().feed("error", b"out of memory")


def test_null_error_member_is_not_an_error():
    deltas = _feed(EventTranslator(), b'{"text": "fine", "error": null}')
    assert [d.content for d in deltas] == ["fine"]
