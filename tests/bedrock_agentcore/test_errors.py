"""AWS errors from InvokeAgentRuntime -> the OpenAI error the client gets (docs table)."""

from __future__ import annotations

import httpx
import openai
import pytest

import outcrop
from outcrop import OutcropError
from outcrop.testing import TEST_ACCESS_KEY, TEST_SECRET_KEY, HttpError, RawReply

from .common import API_CONFIG, AUTH, MODEL, USER

AGENT_MESSAGE = (
    "Received error (500) from runtime. Please check your CloudWatch logs for more information."
)

# (AWS reply, status the client gets, OpenAI SDK exception, code in the error body)
CASES = [
    (
        HttpError(400, "ValidationException", "Invalid payload", reason="CannotParse"),
        400,
        openai.BadRequestError,
        "ValidationException",
    ),
    (
        HttpError(
            403,
            "AccessDeniedException",
            "not authorized to perform bedrock-agentcore:InvokeAgentRuntime",
        ),
        403,
        openai.PermissionDeniedError,
        "AccessDeniedException",
    ),
    (
        HttpError(
            404, "ResourceNotFoundException", "No endpoint or agent found with qualifier 'prod'"
        ),
        404,
        openai.NotFoundError,
        "ResourceNotFoundException",
    ),
    (
        HttpError(409, "RetryableConflictException", "session is busy"),
        409,
        openai.ConflictError,
        "RetryableConflictException",
    ),
    (
        HttpError(402, "ServiceQuotaExceededException", "concurrent sessions quota exceeded"),
        429,
        openai.RateLimitError,
        "ServiceQuotaExceededException",
    ),
    (
        HttpError(424, "RuntimeClientError", AGENT_MESSAGE),
        502,
        openai.InternalServerError,
        "RuntimeClientError",
    ),
    (
        HttpError(429, "ThrottlingException", "Rate exceeded"),
        429,
        openai.RateLimitError,
        "ThrottlingException",
    ),
    (
        HttpError(500, "InternalServerException", "internal failure"),
        502,
        openai.InternalServerError,
        "InternalServerException",
    ),
    # error bodies that lost x-amzn-ErrorType on the way (a proxy in between): the status decides
    (
        RawReply(402, {"content-type": "application/json"}, [b'{"message": "quota"}']),
        429,
        openai.RateLimitError,
        "402",
    ),
    (
        RawReply(424, {"content-type": "application/json"}, [b'{"message": "agent failed"}']),
        502,
        openai.InternalServerError,
        "424",
    ),
    (
        RawReply(503, {"content-type": "text/plain"}, [b"Service Unavailable"]),
        503,
        openai.InternalServerError,
        "503",
    ),
]
IDS = [c[3] if not isinstance(c[0], RawReply) else f"bare-{c[3]}" for c in CASES]


def _message(reply):
    return reply.message if isinstance(reply, HttpError) else reply.body_parts[0].decode()


@pytest.mark.parametrize(("reply", "status", "exc", "code"), CASES, ids=IDS)
def test_openai_sdk_error(client, sim, reply, status, exc, code):
    sim.reply(reply)
    with pytest.raises(exc) as info:
        client.chat.completions.create(model="agentcore-runtime-1", messages=USER)
    assert info.value.status_code == status
    assert info.value.body["code"] == code
    assert _message(reply).removeprefix('{"message": "').removesuffix('"}') in info.value.message
    # the session id is returned even on failure, so the client can retry the same session
    assert info.value.response.headers["x-outcrop-session-id"]


@pytest.mark.parametrize(("reply", "status", "exc", "code"), CASES[:8], ids=IDS[:8])
def test_streaming_request_gets_the_status_too(gateway, sim, reply, status, exc, code):
    sim.reply(reply)
    r = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers=AUTH,
        json={"model": "agentcore-runtime-1", "messages": USER, "stream": True},
    )
    assert r.status_code == status
    assert r.json()["error"]["code"] == code


def test_runtime_client_error_carries_the_agents_message(client, sim):
    sim.reply(HttpError(424, "RuntimeClientError", "Agent raised KeyError: 'prompt'"))
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="agentcore-runtime-1", messages=USER)
    assert info.value.body["message"] == "RuntimeClientError: Agent raised KeyError: 'prompt'"


def test_python_api_raises_the_mapped_error(sim):
    kwargs = {
        "api_base": sim.url,
        "aws_access_key_id": TEST_ACCESS_KEY,
        "aws_secret_access_key": TEST_SECRET_KEY,
        "config": API_CONFIG,
    }
    for reply, status, _, code in CASES:
        sim.reply(reply, times=1)
        with pytest.raises(OutcropError) as info:
            outcrop.completion(model=MODEL, messages=USER, **kwargs)
        assert (info.value.status, info.value.code) == (status, code)


async def test_python_api_async_raises_the_mapped_error(sim):
    sim.reply(HttpError(402, "ServiceQuotaExceededException", "quota"))
    with pytest.raises(OutcropError) as info:
        await outcrop.acompletion(
            model=MODEL,
            messages=USER,
            api_base=sim.url,
            aws_access_key_id=TEST_ACCESS_KEY,
            aws_secret_access_key=TEST_SECRET_KEY,
        )
    assert info.value.status == 429
