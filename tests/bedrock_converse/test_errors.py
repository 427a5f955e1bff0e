"""AWS errors -> OpenAI errors with the right status; mid-stream failures; disconnects."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from outcrop.testing import ConverseReply, HttpError

from .common import ALIAS, MASTER_KEY, USER

#: (AWS status, AWS error code, the status the OpenAI client gets)
ERRORS = [
    (400, "ValidationException", 400),
    (403, "AccessDeniedException", 403),
    (404, "ResourceNotFoundException", 404),
    (429, "ThrottlingException", 429),
    (400, "ServiceQuotaExceededException", 429),
    (429, "ModelNotReadyException", 503),
    (503, "ServiceUnavailableException", 503),
    (408, "ModelTimeoutException", 504),
    (424, "ModelErrorException", 502),
    (500, "InternalServerException", 502),
    (403, "UnrecognizedClientException", 502),  # the gateway's own AWS key was refused
]


@pytest.mark.parametrize(("aws_status", "code", "status"), ERRORS)
@pytest.mark.parametrize("stream", [False, True])
def test_aws_errors_map_to_openai_errors(
    client, bedrock_simulator, events, aws_status, code, status, stream
):
    bedrock_simulator.reply(HttpError(aws_status, code, "upstream said no"))
    with pytest.raises(openai.APIStatusError) as caught:
        r = client.chat.completions.create(model=ALIAS, messages=USER, stream=stream)
        list(r)
    assert caught.value.status_code == status
    assert caught.value.body["code"] == code and "upstream said no" in caught.value.body["message"]
    assert events.wait_count(1)[-1].status == status


def _sse(gateway, **body):
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {MASTER_KEY}"},
        json={"model": ALIAS, "messages": USER, "stream": True, **body},
    ) as r:
        assert r.status_code == 200
        return [line[6:] for line in r.iter_lines() if line.startswith("data: ")]


@pytest.mark.parametrize(
    ("exception", "status"),
    [
        ("throttlingException", 429),
        ("modelStreamErrorException", 502),
        ("validationException", 400),
        ("serviceUnavailableException", 503),
        ("internalServerException", 502),
    ],
)
def test_mid_stream_exception_ends_with_an_error_event_never_done(
    gateway, bedrock_simulator, events, exception, status
):
    bedrock_simulator.reply(ConverseReply("partial answer here", exception=(exception, "broke")))
    frames = _sse(gateway)
    assert "[DONE]" not in frames
    texts = [json.loads(f)["choices"][0]["delta"].get("content") for f in frames[:-1]]
    assert "".join(texts) == "partial answer here"
    error = json.loads(frames[-1])["error"]
    assert error["code"] == exception[0].upper() + exception[1:] and "broke" in error["message"]
    event = events.wait_count(1)[-1]
    assert event.status == status and event.stream


def test_mid_stream_exception_through_the_sdk(client, bedrock_simulator):
    bedrock_simulator.reply(
        ConverseReply("so far", exception=("modelStreamErrorException", "oops"))
    )
    received = []
    with pytest.raises(openai.APIError, match="oops"):
        for chunk in client.chat.completions.create(model=ALIAS, messages=USER, stream=True):
            received.append(chunk.choices[0].delta.content)
    assert "".join(r or "" for r in received) == "so far"


def test_malformed_upstream_answer_is_502(client, bedrock_simulator):
    from outcrop.testing import RawReply

    bedrock_simulator.reply(RawReply(200, {"content-type": "application/json"}, [b'{"nope": 1}']))
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=ALIAS, messages=USER)
    assert caught.value.status_code == 502 and "not Converse's" in caught.value.body["message"]


def test_client_disconnect_cancels_the_upstream_stream(gateway, bedrock_simulator, events):
    bedrock_simulator.reply(ConverseReply("one two three four five six", delay=0.3))
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {MASTER_KEY}"},
        json={"model": ALIAS, "messages": USER, "stream": True},
    ) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                break  # leave after the first chunk
    event = events.wait_count(1)[-1]
    assert event.status == 499 and event.latency_s < 1.5  # the whole stream takes 1.8 s
    deadline = time.monotonic() + 3
    while not bedrock_simulator.last().disconnected and time.monotonic() < deadline:
        time.sleep(0.02)
    assert bedrock_simulator.last().disconnected  # the gateway hung up on Bedrock too


def test_error_frame_mid_stream(gateway, bedrock_simulator, events):
    """An ``error`` frame (code and message in headers, no payload) ends the stream the same way."""
    from outcrop.testing import EventStreamReply, encode_error, encode_event

    delta = encode_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "half"}})
    bedrock_simulator.reply(
        EventStreamReply([delta, encode_error("ThrottlingException", 'say "when"')])
    )
    frames = _sse(gateway)
    assert (
        "[DONE]" not in frames and json.loads(frames[0])["choices"][0]["delta"]["content"] == "half"
    )
    error = json.loads(frames[-1])["error"]
    assert error["code"] == "ThrottlingException" and 'say "when"' in error["message"]
    assert events.wait_count(1)[-1].status == 429
