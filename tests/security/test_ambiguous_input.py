"""Input that could mean two things is refused, not resolved silently: a header the client's
``Connection`` header names is not forwarded, disagreeing session ids are a 400, and an unknown
``payload_format`` is a 400 even when ``payload`` makes it moot."""

from __future__ import annotations

import httpx
import pytest

from .conftest import AUTH, assert_openai_error, assert_still_serves

CONVERSE = b'{"messages": [{"role": "user", "content": [{"text": "hi"}]}]}'
TRACE = "x-amzn-bedrock-trace"


def converse(gateway, headers: list[tuple[str, str]]) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/bedrock/model/native/converse",
        content=CONVERSE,
        headers=[*AUTH.items(), ("content-type", "application/json"), *headers],
        timeout=10,
    )


def test_allow_listed_header_is_forwarded_normally(gateway, bedrock_simulator):
    assert converse(gateway, [(TRACE, "ENABLED")]).status_code == 200
    assert bedrock_simulator.last("Converse").headers[TRACE] == "ENABLED"


@pytest.mark.parametrize(
    "connection",
    [
        f"{TRACE}",
        f"keep-alive, {TRACE}",
        "X-Amzn-Bedrock-Trace , close",
        "traceparent, " + TRACE,
    ],
)
def test_header_named_in_connection_is_not_forwarded(gateway, bedrock_simulator, connection):
    r = converse(
        gateway,
        [
            (TRACE, "ENABLED"),
            ("traceparent", "00-" + "a" * 32 + "-" + "b" * 16 + "-01"),
            ("connection", connection),
        ],
    )
    assert r.status_code == 200, r.text
    sent = bedrock_simulator.last("Converse")
    assert TRACE not in sent.headers  # and the signature (made without it) verified upstream
    assert ("traceparent" in sent.headers) == ("traceparent" not in connection)
    assert_still_serves(gateway)


def agent_chat(gateway, headers: dict[str, str] | None = None, **extra) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/chat/completions",
        timeout=10,
        headers={**AUTH, **(headers or {})},
        json={"model": "agent", "messages": [{"role": "user", "content": "hi"}], **extra},
    )


@pytest.mark.parametrize(
    "sent",
    [
        {"body": {"session_id": "session-a", "sessionId": "session-b"}},
        {"body": {"session_id": "session-a"}, "header": "session-b"},
        {"body": {"sessionId": "session-a"}, "header": "session-b"},
    ],
)
def test_disagreeing_agent_session_ids_are_a_400(gateway, bedrock_simulator, sent):
    headers = {"x-outcrop-session-id": sent["header"]} if "header" in sent else None
    r = agent_chat(gateway, headers, **sent["body"])
    error = assert_openai_error(r, 400, code="session_mismatch")
    assert "differ" in error["message"]
    assert not [q for q in bedrock_simulator.requests if q.operation == "InvokeAgent"]
    assert_still_serves(gateway)


def test_agreeing_agent_session_ids_are_served(gateway, bedrock_simulator):
    r = agent_chat(
        gateway,
        {"x-outcrop-session-id": "session-a"},
        session_id="session-a",
        sessionId="session-a",
    )
    assert r.status_code == 200 and r.json()["session_id"] == "session-a"
    assert bedrock_simulator.last("InvokeAgent").params["sessionId"] == "session-a"


def runtime_chat(gateway, **extra) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers=AUTH,
        timeout=10,
        json={"model": "runtime", "messages": [{"role": "user", "content": "hi"}], **extra},
    )


@pytest.mark.parametrize("fmt", ["bogus", "", 7, ["prompt"]])
def test_unknown_payload_format_with_payload_is_a_400(gateway, bedrock_simulator, fmt):
    r = runtime_chat(gateway, payload={"q": 1}, payload_format=fmt)
    if fmt == "":  # empty means the default, as without `payload`
        assert r.status_code == 200
        return
    error = assert_openai_error(r, 400)
    assert error["param"] == "payload_format" and "prompt, messages" in error["message"]
    assert not [q for q in bedrock_simulator.requests if q.operation == "InvokeAgentRuntime"]
    assert_still_serves(gateway)


def test_known_payload_format_with_payload_sends_the_payload(gateway, bedrock_simulator):
    r = runtime_chat(gateway, payload={"q": 1}, payload_format="messages")
    assert r.status_code == 200
    assert bedrock_simulator.last("InvokeAgentRuntime").json() == {"q": 1}
