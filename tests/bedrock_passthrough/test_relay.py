"""The relay under stress: client disconnects, upstream breaks mid-body, costs, and exactly one
after-call event per request."""

from __future__ import annotations

import time

import httpx
import pytest
from botocore.exceptions import EventStreamError

from outcrop.testing import ConverseReply, EventStreamReply, InvokeReply, RawReply, encode_event

from .common import ALIAS, MASTER_KEY, sigv4_client

AUTH = {"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"}
MESSAGES = [{"role": "user", "content": [{"text": "hi"}]}]
CONVERSE_BODY = b'{"messages": [{"role": "user", "content": [{"text": "hi"}]}]}'


def test_client_disconnect_cancels_the_upstream_call(gateway, bedrock_simulator, recorder):
    bedrock_simulator.reply(ConverseReply(" ".join(["word"] * 20), delay=0.1))
    with httpx.stream(
        "POST",
        f"{gateway.url}/bedrock/model/{ALIAS}/converse-stream",
        headers=AUTH,
        content=CONVERSE_BODY,
    ) as r:
        assert r.status_code == 200
        next(r.iter_raw())  # the first frame, then hang up
    event = recorder.wait_count(1)[-1]
    assert (event.status, event.error, event.stream) == (499, "client disconnected", True)
    deadline = time.time() + 2
    while not bedrock_simulator.last().disconnected and time.time() < deadline:
        time.sleep(0.01)
    assert bedrock_simulator.last().disconnected  # the gateway hung up on AWS too
    gateway.server.stop()  # no event can follow
    assert len(recorder) == 1, recorder.events


def test_client_disconnect_while_waiting_for_the_answer(gateway, bedrock_simulator, recorder):
    async def slow(request):
        import asyncio

        await asyncio.sleep(1.0)
        return ConverseReply("late")

    bedrock_simulator.reply(slow)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{gateway.url}/bedrock/model/{ALIAS}/converse",
            headers=AUTH,
            content=CONVERSE_BODY,
            timeout=0.3,
        )
    event = recorder.wait_count(1, timeout=2)[-1]
    assert event.status == 499 and event.latency_s < 0.9


def test_upstream_break_at_a_frame_boundary_ends_with_an_exception_frame(
    gateway, bedrock_simulator, recorder
):
    frames = [
        encode_event("messageStart", {"role": "assistant"}),
        encode_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
    ]
    # A declared length the simulator never reaches: its server drops the connection mid-body.
    bedrock_simulator.reply(
        EventStreamReply(frames, delay=0.05, headers={"content-length": "100000"})
    )
    client = sigv4_client("bedrock-runtime", gateway.url)
    response = client.converse_stream(modelId=ALIAS, messages=MESSAGES)
    seen = []
    with pytest.raises(EventStreamError) as caught:
        for item in response["stream"]:
            seen.append(item)
    assert [next(iter(e)) for e in seen] == ["messageStart", "contentBlockDelta"]
    assert caught.value.response["Error"]["Code"] == "internalServerException"
    event = recorder.wait_count(1)[-1]
    assert event.status == 502 and "mid-body" in event.error


def test_upstream_break_in_a_plain_body_aborts_the_client_connection(
    gateway, bedrock_simulator, recorder
):
    bedrock_simulator.reply(
        RawReply(
            200,
            {"content-type": "application/json", "content-length": "5000"},
            [b'{"partial": ', b'"yes"'],
            delay=0.05,
        )
    )
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(f"{gateway.url}/bedrock/model/{ALIAS}/invoke", headers=AUTH, content=b"{}")
    event = recorder.wait_count(1)[-1]
    assert event.status == 502


def test_deployment_prices_override_the_table(
    gateway_factory, make_config, simulator_params, bedrock_simulator, recorder
):
    params = simulator_params(
        "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0",
        input_cost_per_token=0.001,
        output_cost_per_token=0.01,
    )
    gw = gateway_factory(
        make_config(model_list=[{"model_name": "priced", "litellm_params": params}])
    )
    bedrock_simulator.reply(InvokeReply(body={"ok": True}, input_tokens=10, output_tokens=2))
    r = httpx.post(f"{gw.url}/bedrock/model/priced/invoke", headers=AUTH, content=b"{}")
    assert r.status_code == 200 and float(r.headers["x-outcrop-response-cost"]) == pytest.approx(
        0.03
    )
    assert recorder.last().cost == pytest.approx(0.03)


def test_unknown_price_means_no_cost_header_but_usage_is_kept(
    gateway_factory, make_config, bedrock_simulator, recorder
):
    gateway = gateway_factory(make_config(allow_raw_models=True))
    bedrock_simulator.reply(ConverseReply("fine", usage=(5, 1)))
    r = httpx.post(
        f"{gateway.url}/bedrock/model/acme.mystery-model-v1:0/converse",
        headers=AUTH,
        content=CONVERSE_BODY,
    )
    assert r.status_code == 200 and "x-outcrop-response-cost" not in r.headers
    assert r.headers["content-length"] == str(len(r.content))
    event = recorder.last()
    assert event.cost is None and event.usage.total_tokens == 6


def test_non_aws_answers_do_not_break_metering(gateway, bedrock_simulator, recorder):
    bedrock_simulator.reply(
        RawReply(200, {"content-type": "application/json"}, [b"not json at all"])
    )
    r = httpx.post(
        f"{gateway.url}/bedrock/model/{ALIAS}/converse", headers=AUTH, content=CONVERSE_BODY
    )
    assert (r.status_code, r.content) == (200, b"not json at all")
    assert recorder.last().status == 200 and recorder.last().usage is None


def test_overhead_and_request_id_headers(gateway, bedrock_simulator):
    r = httpx.post(
        f"{gateway.url}/bedrock/model/{ALIAS}/converse",
        content=CONVERSE_BODY,
        headers={**AUTH, "x-request-id": "req-123"},
    )
    assert r.headers["x-request-id"] == "req-123"
    assert float(r.headers["x-outcrop-overhead-ms"]) >= 0
    assert r.headers["x-amzn-requestid"] == bedrock_simulator.last().request_id


def test_deployment_read_timeout_is_an_aws_shaped_504(
    gateway_factory, make_config, simulator_params, bedrock_simulator
):
    async def slow(request):
        import asyncio

        await asyncio.sleep(0.6)
        return ConverseReply("late")

    bedrock_simulator.reply(slow)
    params = simulator_params("bedrock/amazon.nova-lite-v1:0", timeout=0.2)
    gw = gateway_factory(
        make_config(model_list=[{"model_name": "quick", "litellm_params": params}])
    )
    r = httpx.post(f"{gw.url}/bedrock/model/quick/converse", headers=AUTH, content=CONVERSE_BODY)
    assert r.status_code == 504 and r.headers["x-amzn-errortype"] == "InternalServerException"
    assert "timed out" in r.json()["message"]
