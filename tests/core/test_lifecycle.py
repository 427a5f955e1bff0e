"""Exactly one after-call event for every exit of a chat call, on every face: the HTTP route and
the Python API (sync, async, streamed). Exits: success, 4xx before routing, upstream error,
mid-stream error, client disconnect, shutdown. (The pass-through's are in
tests/bedrock_passthrough/test_lifecycle.py.)"""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

import outcrop
from outcrop.api import _gateway_for, _runner
from outcrop.app import create_app
from outcrop.config import parse_config
from outcrop.testing import TEST_ACCESS_KEY, TEST_SECRET_KEY, CallEvents
from outcrop.testing.replies import ConverseReply, HttpError
from outcrop.testing.server import ServerThread

from .converse_plugin import ConversePlugin

MODEL = "testprov/amazon.nova-lite-v1:0"
HI = [{"role": "user", "content": "hi"}]
SLOW = ConverseReply(" ".join(["word"] * 40), delay=0.1)  # ~4 s of frames


def _only(events: CallEvents, server: ServerThread) -> outcrop.CallEvent:
    """The HTTP call's single event: once the server stopped, no second one can follow."""
    events.wait_count(1)
    server.stop()
    return events.one()


@pytest.fixture
def events(outcrop_plugin):
    rec = CallEvents()
    outcrop_plugin(rec, "lifecycle-events")
    return rec


@pytest.fixture
def plugin(outcrop_plugin):
    p = ConversePlugin(always_stream=True)  # non-streamed calls read a stream too: cancellable
    outcrop_plugin(p, "testprov")
    return p


@pytest.fixture
def config(plugin, simulator_params):
    return {"model_list": [{"model_name": "m", "litellm_params": simulator_params(MODEL)}]}


@pytest.fixture
def gateway(config, gateway_factory, events):
    return gateway_factory(config)


def _post(gateway, body, **kw):
    return httpx.post(gateway.url + "/v1/chat/completions", json=body, **kw)


def _wait_upstream(sim, timeout: float = 5.0):
    deadline = time.time() + timeout
    while not sim.requests and time.time() < deadline:
        time.sleep(0.005)
    assert sim.requests
    return sim.requests[-1]


def _wait_disconnected(sim, timeout: float = 5.0) -> None:
    deadline = time.time() + timeout
    while not sim.last().disconnected and time.time() < deadline:
        time.sleep(0.01)
    assert sim.last().disconnected  # the gateway hung up on AWS


# -- HTTP chat ----------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_http_success(gateway, events, bedrock_simulator, stream):
    bedrock_simulator.reply(ConverseReply("fine", usage=(2, 1)))
    r = _post(gateway, {"model": "m", "messages": HI, "stream": stream})
    assert r.status_code == 200
    event = _only(events, gateway.server)
    assert (event.status, event.error, event.stream, event.model) == (200, None, stream, "m")
    assert event.usage.total_tokens == 3 and event.deployment == "m#0"


@pytest.mark.parametrize(
    "body, status",
    [
        (b"{not json", 400),
        (b'{"model": "nope/x", "messages": [{"role": "user", "content": "hi"}]}', 400),
        (b'{"model": "m", "messages": []}', 400),
    ],
)
def test_http_4xx_before_routing(gateway, events, body, status):
    r = httpx.post(gateway.url + "/v1/chat/completions", content=body)
    assert r.status_code == status and r.json()["error"]["message"]
    event = _only(events, gateway.server)
    assert event.status == status and event.error and event.surface == "chat"


def test_http_401_before_anything(plugin, simulator_params, gateway_factory, events):
    gw = gateway_factory(
        {
            "model_list": [{"model_name": "m", "litellm_params": simulator_params(MODEL)}],
            "general_settings": {"master_key": "sk-x"},
        }
    )
    assert _post(gw, {"model": "m", "messages": HI}).status_code == 401
    assert _only(events, gw.server).status == 401


@pytest.mark.parametrize("stream", [False, True])
def test_http_upstream_error(gateway, events, bedrock_simulator, stream):
    bedrock_simulator.reply(HttpError(429, "ThrottlingException", "slow down"))
    r = _post(gateway, {"model": "m", "messages": HI, "stream": stream})
    assert r.status_code == 429 and "slow down" in r.json()["error"]["message"]
    event = _only(events, gateway.server)
    assert event.status == 429 and event.error == "ThrottlingException: slow down"


@pytest.mark.parametrize("stream", [False, True])
def test_http_mid_stream_error(gateway, events, bedrock_simulator, stream):
    bedrock_simulator.reply(ConverseReply("a b", exception=("throttlingException", "later")))
    r = _post(gateway, {"model": "m", "messages": HI, "stream": stream})
    if stream:
        last = [line for line in r.text.splitlines() if line][-1]
        assert r.status_code == 200 and '"error"' in last and "later" in last
    else:
        assert r.status_code == 502 and "later" in r.json()["error"]["message"]
    event = _only(events, gateway.server)
    assert event.status == 502 and "later" in event.error and event.stream == stream


def test_http_disconnect_streamed(gateway, events, bedrock_simulator):
    bedrock_simulator.reply(SLOW)
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        json={"model": "m", "messages": HI, "stream": True},
    ) as r:
        next(r.iter_raw())
    event = _only(events, gateway.server)
    assert (event.status, event.error) == (499, "client disconnected")
    _wait_disconnected(bedrock_simulator)


def test_http_disconnect_non_streamed_cancels_the_upstream(gateway, events, bedrock_simulator):
    bedrock_simulator.reply(SLOW)
    with pytest.raises(httpx.ReadTimeout):
        _post(gateway, {"model": "m", "messages": HI}, timeout=0.5)
    event = _only(events, gateway.server)
    assert event.status == 499 and event.latency_s < 3.5
    _wait_disconnected(bedrock_simulator)


def test_the_server_tells_a_call_its_client_left_without_a_watcher_task(
    gateway, events, bedrock_simulator, monkeypatch
):
    """Under ``outcrop serve``'s hypercorn the request carries ``outcrop.client_left``: the
    disconnect cancels the call with no task waiting on ``receive()``."""
    from outcrop.lifecycle import CallLifecycle

    watchers = []
    monkeypatch.setattr(CallLifecycle, "_watch", lambda self, receive: watchers.append(self))
    bedrock_simulator.reply(SLOW)
    with pytest.raises(httpx.ReadTimeout):
        _post(gateway, {"model": "m", "messages": HI}, timeout=0.5)
    event = _only(events, gateway.server)
    assert event.status == 499 and event.latency_s < 3.5
    _wait_disconnected(bedrock_simulator)
    assert watchers == []


@pytest.mark.parametrize("stream", [False, True])
def test_http_shutdown_answers_503_once(config, events, bedrock_simulator, stream):
    bedrock_simulator.reply(SLOW)
    server = ServerThread(create_app(parse_config(config)), graceful_timeout=0.3).start()
    result = {}

    def call():
        with httpx.stream(
            "POST",
            server.url + "/v1/chat/completions",
            json={"model": "m", "messages": HI, "stream": stream},
            timeout=10,
        ) as r:
            result["status"] = r.status_code
            result["body"] = r.read()

    client = threading.Thread(target=call)
    client.start()
    _wait_upstream(bedrock_simulator)
    server.stop()
    client.join(10)
    event = events.one()
    assert (event.status, event.error) == (503, "the gateway is shutting down")
    if stream:  # the answer had started: the stream ends with an error event
        last = [line for line in result["body"].splitlines() if line][-1]
        assert result["status"] == 200 and b'"code":"shutting_down"' in last
    else:
        assert result["status"] == 503
        assert b'"code":"shutting_down"' in result["body"]


# -- the Python API -------------------------------------------------------------------------------


@pytest.fixture
def kwargs(plugin, bedrock_simulator, events):
    return {
        "api_base": bedrock_simulator.url,
        "aws_access_key_id": TEST_ACCESS_KEY,
        "aws_secret_access_key": TEST_SECRET_KEY,
        "aws_region_name": "us-east-2",
    }


def test_python_success_sync_async_and_streams(kwargs, events, bedrock_simulator):
    bedrock_simulator.reply(ConverseReply("fine", usage=(2, 1)))
    assert outcrop.completion(MODEL, HI, **kwargs).choices[0].message.content == "fine"
    assert events.one().status == 200
    events.clear()

    bedrock_simulator.reply(ConverseReply("fine", usage=(2, 1)))
    assert (
        "".join(
            c.choices[0].delta.content or ""
            for c in outcrop.completion(MODEL, HI, stream=True, **kwargs)
            if c.choices
        )
        == "fine"
    )
    assert events.one().status == 200
    events.clear()

    async def both():
        bedrock_simulator.reply(ConverseReply("fine", usage=(2, 1)))
        await outcrop.acompletion(MODEL, HI, **kwargs)
        bedrock_simulator.reply(ConverseReply("fine", usage=(2, 1)))
        return [c async for c in await outcrop.acompletion(MODEL, HI, stream=True, **kwargs)]

    asyncio.run(both())
    both_events = events.wait_count(2)
    assert [e.status for e in both_events] == [200, 200]
    assert [e.stream for e in both_events] == [False, True]


@pytest.mark.parametrize("stream", [False, True])
def test_python_4xx_before_routing_emits_an_event(kwargs, events, stream):
    with pytest.raises(outcrop.OutcropError, match="no installed plugin claims") as info:
        outcrop.completion("nope/x", HI, stream=stream)
    assert info.value.status == 400
    event = events.one()
    assert event.status == 400 and event.model == "nope/x" and event.route == "python"
    events.clear()
    with pytest.raises(outcrop.OutcropError, match="invalid arguments"):
        outcrop.completion(MODEL, HI, temperature="hot", **kwargs)
    assert events.one().status == 400


def test_python_async_routing_error_emits_an_event(kwargs, events):
    with pytest.raises(outcrop.OutcropError):
        asyncio.run(outcrop.acompletion("nope/x", HI))
    assert events.one().status == 400


@pytest.mark.parametrize("stream", [False, True])
def test_python_upstream_error(kwargs, events, bedrock_simulator, stream):
    bedrock_simulator.reply(HttpError(403, "AccessDeniedException", "no access"))
    with pytest.raises(outcrop.OutcropError) as info:
        outcrop.completion(MODEL, HI, stream=stream, **kwargs)
    assert info.value.status == 403
    assert events.one().error == "AccessDeniedException: no access"


def test_python_mid_stream_error(kwargs, events, bedrock_simulator):
    bedrock_simulator.reply(ConverseReply("a b c", exception=("throttlingException", "later")))
    stream = outcrop.completion(MODEL, HI, stream=True, **kwargs)
    with pytest.raises(outcrop.OutcropError, match="later"):
        list(stream)
    event = events.one()
    assert event.status == 502 and event.stream


def test_python_caller_cancels_or_stops_reading(kwargs, events, bedrock_simulator):
    async def cancelled():
        bedrock_simulator.reply(SLOW)
        task = asyncio.ensure_future(outcrop.acompletion(MODEL, HI, **kwargs))
        while not bedrock_simulator.requests:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled())
    assert events.one().status == 499
    _wait_disconnected(bedrock_simulator)
    events.clear()

    bedrock_simulator.reply(SLOW)
    stream = outcrop.completion(MODEL, HI, stream=True, **kwargs)
    next(stream)
    stream.close()  # the caller stops reading
    assert events.one().status == 499
    _wait_disconnected(bedrock_simulator)


def test_python_shutdown_async(kwargs, events, bedrock_simulator):
    async def run():
        bedrock_simulator.reply(SLOW)
        gw = await _gateway_for(None)
        task = asyncio.ensure_future(outcrop.acompletion(MODEL, HI, **kwargs))
        while not bedrock_simulator.requests:
            await asyncio.sleep(0.01)
        await gw.stop()
        with pytest.raises(outcrop.OutcropError) as info:
            await task
        return info.value

    err = asyncio.run(run())
    assert err.status == 503 and err.code == "shutting_down"
    assert events.one().status == 503


def test_python_shutdown_sync_stream_between_chunks(kwargs, events, bedrock_simulator):
    bedrock_simulator.reply(SLOW)
    stream = outcrop.completion(MODEL, HI, stream=True, **kwargs)
    next(stream)
    runner = _runner()
    gw = runner.run(_gateway_for(None))
    runner.run(gw.stop())
    assert events.one().status == 503  # at once, not when the caller comes back
    with pytest.raises(outcrop.OutcropError, match="shutting down"):
        next(stream)
    assert len(events.events) == 1
    _wait_disconnected(bedrock_simulator)


def test_python_shutdown_sync_in_flight(kwargs, events, bedrock_simulator):
    bedrock_simulator.reply(SLOW)
    runner = _runner()
    result = {}

    def call():
        try:
            outcrop.completion(MODEL, HI, **kwargs)
        except outcrop.OutcropError as exc:
            result["error"] = exc

    caller = threading.Thread(target=call)
    caller.start()
    _wait_upstream(bedrock_simulator)
    gw = runner.run(_gateway_for(None))
    runner.run(gw.stop())
    caller.join(10)
    assert result["error"].status == 503
    assert events.one().status == 503
