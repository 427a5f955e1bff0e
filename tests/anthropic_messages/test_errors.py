"""Errors in Anthropic's shape and status, before the answer and mid-stream; bad input is
refused by the gateway with the field's name, before any upstream call."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import pytest

from outcrop.testing import CallEvents, ClaudeReply, HttpError

from .common import MASTER_KEY

HI = [{"role": "user", "content": "Hi"}]


def _post(gateway: Any, body: Any, **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        gateway.url + "/v1/messages",
        content=content,
        headers={"x-api-key": MASTER_KEY, "content-type": "application/json", **headers},
    )


def _error(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    assert body["type"] == "error"
    assert body["request_id"] == response.headers["request-id"]
    return response.status_code, body["error"]["type"], body["error"]["message"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (
            {"model": "claude", "max_tokens": 8, "messages": HI, "service_tier": "auto"},
            "service_tier: Extra inputs are not permitted",
        ),
        (
            {"model": "claude", "max_tokens": 8, "messages": HI, "container": "c"},
            "container: Extra",
        ),
        ({"model": "claude", "messages": HI}, "max_tokens: Field required"),
        ({"max_tokens": 8, "messages": HI}, "model: Field required"),
        ({"model": "claude", "max_tokens": 8, "messages": HI, "stream": "yes"}, "stream"),
        (
            {"model": "claude", "max_tokens": 8, "messages": HI, "anthropic_version": "1999"},
            "anthropic_version",
        ),
        (b"{not json", "not valid JSON"),
    ],
)
def test_bad_bodies_are_refused_before_bedrock(
    gateway: Any, bedrock_simulator: Any, recorder: CallEvents, body: Any, needle: str
) -> None:
    status, kind, message = _error(_post(gateway, body))
    assert (status, kind) == (400, "invalid_request_error")
    assert needle in message
    assert bedrock_simulator.requests == []
    assert recorder.last().status == 400


def test_sdk_raises_bad_request_for_an_unknown_field(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model="claude", max_tokens=8, messages=HI, extra_body={"speed": "fast"}
        )
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert "speed" in caught.value.body["error"]["message"]


def test_unknown_and_non_claude_models(client: anthropic.Anthropic, bedrock_simulator: Any) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(model="gpt-4o", max_tokens=8, messages=HI)
    assert "claude, haiku" in caught.value.body["error"]["message"]
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="nova", max_tokens=8, messages=HI)
    assert "not a Claude model" in caught.value.body["error"]["message"]
    assert bedrock_simulator.requests == []


@pytest.mark.parametrize(
    ("code", "aws_status", "status", "kind", "exc"),
    [
        (
            "ServiceUnavailableException",
            503,
            529,
            "overloaded_error",
            anthropic.InternalServerError,
        ),
        ("ModelNotReadyException", 429, 529, "overloaded_error", anthropic.InternalServerError),
        ("ThrottlingException", 429, 429, "rate_limit_error", anthropic.RateLimitError),
        ("ServiceQuotaExceededException", 400, 429, "rate_limit_error", anthropic.RateLimitError),
        ("ValidationException", 400, 400, "invalid_request_error", anthropic.BadRequestError),
        ("AccessDeniedException", 403, 403, "permission_error", anthropic.PermissionDeniedError),
        ("ResourceNotFoundException", 404, 404, "not_found_error", anthropic.NotFoundError),
        ("ModelTimeoutException", 408, 504, "timeout_error", anthropic.InternalServerError),
        ("InternalServerException", 500, 502, "api_error", anthropic.InternalServerError),
    ],
)
@pytest.mark.parametrize("streamed", [False, True])
def test_bedrock_errors_in_anthropics_shape(
    client: anthropic.Anthropic,
    bedrock_simulator: Any,
    recorder: CallEvents,
    code: str,
    aws_status: int,
    status: int,
    kind: str,
    exc: type[Exception],
    streamed: bool,
) -> None:
    bedrock_simulator.reply(HttpError(aws_status, code, "it went wrong"))
    with pytest.raises(exc) as caught:
        if streamed:
            with client.messages.stream(model="claude", max_tokens=8, messages=HI) as stream:
                stream.until_done()
        else:
            client.messages.create(model="claude", max_tokens=8, messages=HI)
    assert caught.value.status_code == status
    assert caught.value.body["error"] == {"type": kind, "message": f"{code}: it went wrong"}
    assert recorder.last().status == status
    assert code in recorder.last().error


@pytest.mark.parametrize(
    ("exception", "kind"),
    [
        ("serviceUnavailableException", "overloaded_error"),
        ("throttlingException", "rate_limit_error"),
        ("modelStreamErrorException", "api_error"),
        ("validationException", "invalid_request_error"),
    ],
)
def test_mid_stream_exception_becomes_an_error_event(
    client: anthropic.Anthropic,
    bedrock_simulator: Any,
    recorder: CallEvents,
    exception: str,
    kind: str,
) -> None:
    bedrock_simulator.reply(
        ClaudeReply("partial answer here", exception=(exception, "stream broke"))
    )
    seen: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client.messages.stream(model="claude", max_tokens=8, messages=HI) as stream,
    ):
        for text in stream.text_stream:
            seen.append(text)
    assert seen == ["partial "]  # what arrived before the error reached the client
    code = exception[0].upper() + exception[1:]
    assert caught.value.body == {
        "type": "error",
        "error": {"type": kind, "message": f"{code}: stream broke"},
        "request_id": recorder.last().request_id,
    }
    assert recorder.last().stream and code in recorder.last().error


@pytest.mark.refusals_expected
def test_bedrock_refusing_the_body_reaches_the_client(
    client: anthropic.Anthropic, bedrock_simulator: Any
) -> None:
    """What the gateway leaves to Bedrock (here: max_tokens 0) Bedrock refuses: the client gets
    Bedrock's message as an invalid_request_error."""
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="claude", max_tokens=0, messages=HI)
    assert "ValidationException: Malformed input request" in caught.value.body["error"]["message"]
    assert bedrock_simulator.last().error == "ValidationException"


def test_wrong_method_and_auth(gateway: Any) -> None:
    response = _post(
        gateway, {"model": "claude", "max_tokens": 8, "messages": HI}, **{"x-api-key": "nope"}
    )
    assert _error(response)[:2] == (401, "authentication_error")
    missing = httpx.post(gateway.url + "/v1/messages", json={"model": "claude"})
    assert _error(missing)[:2] == (401, "authentication_error")


def test_failover_to_another_deployment_of_the_model_name(
    gateway_factory: Any, simulator_params: Any, bedrock_simulator: Any, recorder: CallEvents
) -> None:
    """The router's retries apply: a deployment answering 503 is replaced by another
    deployment of the same model_name."""
    profile = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    plain = "anthropic.claude-sonnet-4-5-20250929-v1:0"
    gw = gateway_factory(
        {
            "model_list": [
                {
                    "model_name": "claude",
                    "litellm_params": simulator_params(f"bedrock/{profile}", weight=1000),
                },
                {"model_name": "claude", "litellm_params": simulator_params(f"bedrock/{plain}")},
            ],
            "router_settings": {"num_retries": 1},
        }
    )
    bedrock_simulator.reply(
        HttpError(503, "ServiceUnavailableException", "busy"), path=r"/model/us\."
    )
    with anthropic.Anthropic(base_url=gw.url, api_key="any", max_retries=0) as c:
        raw = c.messages.with_raw_response.create(model="claude", max_tokens=8, messages=HI)
    assert raw.parse().content[0].text
    assert bedrock_simulator.last("InvokeModel").params["modelId"] == plain
    attempts = int(raw.headers["x-outcrop-attempts"])
    assert attempts == len([r for r in bedrock_simulator.requests if r.operation == "InvokeModel"])
    assert recorder.last().status == 200 and recorder.last().deployment == "claude#1"
