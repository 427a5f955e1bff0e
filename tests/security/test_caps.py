"""Bounded memory on the way back: a non-streamed answer is collected up to
``general_settings.max_response_bytes`` (502 past it, in the caller's dialect), an upstream error
body is read only up to a small cap and the rest is never read."""

from __future__ import annotations

import json
import time

import httpx
import pytest

import outcrop
from outcrop.testing import AgentReply, RawReply, RuntimeReply
from outcrop.upstream import MAX_ERROR_BODY

from .conftest import AUTH, assert_openai_error, assert_still_serves

CAP = 4096


@pytest.fixture
def capped(gateway_factory, make_config):
    return gateway_factory(make_config(max_response_bytes=CAP))


def chat(gateway, model: str, *, stream: bool = False) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers=AUTH,
        timeout=10,
        json={"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]},
    )


def test_default_cap_is_64_mib():
    assert outcrop.parse_config({}).general_settings.max_response_bytes == 64 * 1024 * 1024


@pytest.mark.parametrize("value", [0, -1, "big"])
def test_cap_must_be_a_positive_integer(value):
    with pytest.raises(outcrop.ConfigError) as caught:
        outcrop.parse_config({"general_settings": {"max_response_bytes": value}})
    assert "general_settings.max_response_bytes" in str(caught.value)


def test_agent_answer_over_the_cap_is_a_502(capped, bedrock_simulator):
    bedrock_simulator.reply(AgentReply(["x" * 1000] * 5), operation="InvokeAgent", times=1)
    error = assert_openai_error(chat(capped, "agent"), 502, code="upstream_response_too_large")
    assert "max_response_bytes" in error["message"]
    assert_still_serves(capped)


def test_agent_answer_at_the_cap_is_served(capped, bedrock_simulator):
    bedrock_simulator.reply(AgentReply(["x" * 1024] * 4), operation="InvokeAgent", times=1)
    r = chat(capped, "agent")
    assert r.status_code == 200 and len(r.json()["choices"][0]["message"]["content"]) == CAP


def test_streamed_answers_are_not_collected_so_not_capped(capped, bedrock_simulator):
    bedrock_simulator.reply(AgentReply(["x" * 1000] * 10), operation="InvokeAgent", times=1)
    r = chat(capped, "agent", stream=True)
    datas = [b[6:] for b in r.content.split(b"\n\n") if b]
    assert datas[-1] == b"[DONE]"
    text = "".join(json.loads(d)["choices"][0]["delta"].get("content") or "" for d in datas[:-1])
    assert len(text) == 10_000


def test_runtime_json_document_over_the_cap_is_a_502(capped, bedrock_simulator):
    bedrock_simulator.reply(
        RuntimeReply.json({"result": "y" * (2 * CAP)}), operation="InvokeAgentRuntime", times=1
    )
    assert_openai_error(chat(capped, "runtime"), 502, code="upstream_response_too_large")
    assert_still_serves(capped)


def test_runtime_text_over_the_cap_is_a_502(capped, bedrock_simulator):
    bedrock_simulator.reply(
        RuntimeReply([b"z" * 1000] * 6, "text/plain"), operation="InvokeAgentRuntime", times=1
    )
    assert_openai_error(chat(capped, "runtime"), 502, code="upstream_response_too_large")


def test_runtime_sse_line_without_end_over_the_cap_is_a_502(capped, bedrock_simulator):
    # streamed: nothing is collected, but one line is still held whole until its newline
    bedrock_simulator.reply(
        RawReply(
            200,
            {"content-type": "text/event-stream"},
            [b"data: " + b"w" * 1000] + [b"w" * 1000] * 6,
        ),
        operation="InvokeAgentRuntime",
        times=1,
    )
    r = chat(capped, "runtime", stream=True)
    last = r.content.rstrip(b"\n").split(b"\n\n")[-1]
    assert json.loads(last[6:])["error"]["code"] == "upstream_response_too_large"
    assert_still_serves(capped)


def test_error_body_is_read_only_up_to_its_cap(gateway, bedrock_simulator):
    """AWS answers an error with a huge body: the gateway reads the first 64 KiB, answers, and
    hangs up instead of reading (or holding) the rest."""
    head = json.dumps({"message": "slow down"}).encode()
    parts = [head] + [b" " * MAX_ERROR_BODY] * 200  # ~12.8 MB of padding, sent slowly
    bedrock_simulator.reply(
        RawReply(
            429,
            {"content-type": "application/json", "x-amzn-errortype": "ThrottlingException"},
            parts,
            delay=0.01,
        ),
        operation="InvokeAgent",
        times=1,
    )
    error = assert_openai_error(chat(gateway, "agent"), 429)
    assert "ThrottlingException" in error["message"]
    deadline = time.monotonic() + 3
    while not bedrock_simulator.last("InvokeAgent").disconnected and time.monotonic() < deadline:
        time.sleep(0.02)
    assert bedrock_simulator.last("InvokeAgent").disconnected  # the rest was never read
    assert_still_serves(gateway)
