"""The pass-through's calls go through the core's lifecycle: exactly one after-call event for
every exit (success, refused before routing, upstream error, mid-stream error, disconnect,
shutdown), AWS-shaped error answers, and a disconnect that cancels the upstream call."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from outcrop.app import create_app
from outcrop.config import parse_config
from outcrop.testing import ConverseReply, HttpError
from outcrop.testing.server import ServerThread

from .common import ALIAS, MASTER_KEY

AUTH = {"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"}
BODY = b'{"messages": [{"role": "user", "content": [{"text": "hi"}]}]}'
SLOW = ConverseReply(" ".join(["word"] * 40), delay=0.1)


def _one(recorder, server):
    """The call's event, and no other: once the server stopped, no event can follow."""
    recorder.wait_count(1)
    server.stop()
    return recorder.one()


def test_success(gateway, bedrock_simulator, recorder):
    bedrock_simulator.reply(ConverseReply("fine"))
    r = httpx.post(f"{gateway.url}/bedrock/model/{ALIAS}/converse", headers=AUTH, content=BODY)
    assert r.status_code == 200
    event = _one(recorder, gateway.server)
    assert (event.status, event.error, event.route) == (
        200,
        None,
        "/bedrock/model/{modelId}/converse",
    )


@pytest.mark.parametrize(
    "path, headers, status, aws_type",
    [
        ("/bedrock/nothing/here", AUTH, 404, "UnknownOperationException"),
        (
            f"/bedrock/model/{ALIAS}/converse",
            {"Authorization": "Bearer wrong"},
            403,
            "UnrecognizedClientException",
        ),
    ],
)
def test_refused_before_routing(gateway, recorder, path, headers, status, aws_type):
    r = httpx.post(gateway.url + path, headers=headers, content=BODY)
    assert r.status_code == status and r.headers["x-amzn-errortype"] == aws_type
    event = _one(recorder, gateway.server)
    assert event.status == status and event.error.startswith(aws_type)


def test_upstream_error(gateway, bedrock_simulator, recorder):
    bedrock_simulator.reply(HttpError(429, "ThrottlingException", "slow down"))
    r = httpx.post(f"{gateway.url}/bedrock/model/{ALIAS}/converse", headers=AUTH, content=BODY)
    assert r.status_code == 429
    assert _one(recorder, gateway.server).error == "ThrottlingException: slow down"


def test_mid_stream_error(gateway, bedrock_simulator, recorder):
    bedrock_simulator.reply(ConverseReply("a b", exception=("throttlingException", "later")))
    r = httpx.post(
        f"{gateway.url}/bedrock/model/{ALIAS}/converse-stream", headers=AUTH, content=BODY
    )
    assert r.status_code == 200  # relayed as AWS sent it, exception frame included
    event = _one(recorder, gateway.server)
    assert event.stream and event.error == "throttlingException: later"


def test_disconnect_cancels_the_upstream(gateway, bedrock_simulator, recorder):
    bedrock_simulator.reply(SLOW)
    with httpx.stream(
        "POST", f"{gateway.url}/bedrock/model/{ALIAS}/converse-stream", headers=AUTH, content=BODY
    ) as r:
        next(r.iter_raw())
    event = _one(recorder, gateway.server)
    assert (event.status, event.error) == (499, "client disconnected")
    deadline = time.time() + 3
    while not bedrock_simulator.last().disconnected and time.time() < deadline:
        time.sleep(0.01)
    assert bedrock_simulator.last().disconnected


def test_shutdown_answers_one_aws_503(make_config, bedrock_simulator, recorder):
    async def slow(request):
        import asyncio

        await asyncio.sleep(3)
        return ConverseReply("late")

    bedrock_simulator.reply(slow)
    server = ServerThread(create_app(parse_config(make_config())), graceful_timeout=0.3).start()
    result = {}

    def call():
        result["r"] = httpx.post(
            f"{server.url}/bedrock/model/{ALIAS}/converse", headers=AUTH, content=BODY, timeout=10
        )

    client = threading.Thread(target=call)
    client.start()
    deadline = time.time() + 5
    while not bedrock_simulator.requests and time.time() < deadline:
        time.sleep(0.01)
    server.stop()
    client.join(10)
    r = result["r"]
    assert r.status_code == 503 and r.headers["x-amzn-errortype"] == "ServiceUnavailableException"
    assert "shutting down" in r.json()["message"]
    event = _one(recorder, server)
    assert (event.status, event.error) == (503, "the gateway is shutting down")
