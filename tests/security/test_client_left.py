"""A client that leaves in the middle of its call ends the call, on every server: the gateway
hangs up on Bedrock and logs the call once, as 499, long before Bedrock would have finished.
hypercorn and granian tell the call through the ``outcrop.client_left`` extension (no task per
call waiting on ``receive()``), uvicorn through that task."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from outcrop.testing import AgentReply, ConverseReply, RawReply

from .conftest import AUTH
from .rawhttp import CONVERSE_BODY, CONVERSE_PATH

SERVERS = ["hypercorn", "granian", "uvicorn"]


def _request_lines(text: str) -> list[dict]:
    lines = (json.loads(x) for x in text.splitlines() if x.startswith("{"))
    return [x for x in lines if x.get("event") == "request"]


def _upstream_abandoned(simulator, operation: str) -> bool:
    deadline = time.monotonic() + 10
    while not simulator.last(operation).disconnected and time.monotonic() < deadline:
        time.sleep(0.05)
    return simulator.last(operation).disconnected


@pytest.mark.parametrize("server_name", SERVERS)
def test_leaving_a_stream_ends_its_call(cli_server, make_config, bedrock_simulator, server_name):
    # eight parts 0.3 s apart: ~2.1 s of stream left when the client leaves after the first
    words = [f"w{i} " for i in range(8)]
    bedrock_simulator.reply(AgentReply(words, delay=0.3), operation="InvokeAgent")
    server = cli_server(make_config(), "--server", server_name)
    body = {"model": "agent", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.stream(
        "POST", server.url + "/v1/chat/completions", headers=AUTH, json=body, timeout=30
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: ") and "w0" in line:
                break  # leave after the first part
    assert _upstream_abandoned(bedrock_simulator, "InvokeAgent")
    server.output.wait_for('"status": 499')
    code, err = server.stop()
    assert code in (0, -15), err  # uvicorn's single process re-raises the SIGTERM it handled
    [line] = _request_lines(err)
    assert line["status"] == 499 and line["latency_ms"] < 1500, line


@pytest.mark.parametrize("server_name", SERVERS)
def test_leaving_before_the_answer_ends_its_call(
    cli_server, make_config, bedrock_simulator, server_name
):
    # Converse's JSON in two parts 3 s apart: the client gives up after 0.5 s
    answer = b'{"output": {"message": {"role": "assistant", "content": [{"text": "late"}]}}}'
    parts = [answer[:10], answer[10:]]
    headers = {"content-type": "application/json"}
    bedrock_simulator.reply(RawReply(200, headers, parts, delay=3), operation="Converse")
    server = cli_server(make_config(), "--server", server_name)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(server.url + CONVERSE_PATH, headers=AUTH, content=CONVERSE_BODY, timeout=0.5)
    assert _upstream_abandoned(bedrock_simulator, "Converse")
    server.output.wait_for('"status": 499')
    code, err = server.stop()
    assert code in (0, -15), err
    [line] = _request_lines(err)
    assert line["status"] == 499 and line["latency_ms"] < 2500, line


@pytest.mark.parametrize("server_name", SERVERS)
def test_a_call_that_ends_normally_is_not_taken_for_a_departure(
    cli_server, make_config, bedrock_simulator, server_name
):
    """granian completes its disconnect watch when the answer has been sent: the call is over
    by then, and keep-alive calls after it on the same connection are served as usual."""
    server = cli_server(make_config(), "--server", server_name)
    with httpx.Client(headers=AUTH, timeout=10) as client:
        for _ in range(3):
            bedrock_simulator.reply(ConverseReply("fine"))
            r = client.post(server.url + CONVERSE_PATH, content=CONVERSE_BODY)
            assert r.status_code == 200 and r.json()["output"]["message"]["content"][0]["text"]
    code, err = server.stop()
    assert code in (0, -15), err
    assert [x["status"] for x in _request_lines(err)] == [200, 200, 200]
