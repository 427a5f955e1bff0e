"""HTTP errors from InvokeAgent map to OpenAI errors with the documented status table."""

from __future__ import annotations

import openai
import pytest

from outcrop.testing import HttpError, RawReply

USER = [{"role": "user", "content": "hi"}]

# (AWS status, AWS code, gateway status, OpenAI SDK exception)
TABLE = [
    (400, "ValidationException", 400, openai.BadRequestError),
    (403, "AccessDeniedException", 403, openai.PermissionDeniedError),
    (404, "ResourceNotFoundException", 404, openai.NotFoundError),
    (409, "ConflictException", 409, openai.ConflictError),
    (429, "ThrottlingException", 429, openai.RateLimitError),
    (400, "ServiceQuotaExceededException", 429, openai.RateLimitError),
    (424, "DependencyFailedException", 502, openai.InternalServerError),
    (502, "BadGatewayException", 502, openai.InternalServerError),
    (500, "InternalServerException", 502, openai.InternalServerError),
    (424, "ModelNotReadyException", 503, openai.InternalServerError),
    (503, "ServiceUnavailableException", 503, openai.InternalServerError),
    (403, "UnrecognizedClientException", 502, openai.InternalServerError),
    (403, "InvalidSignatureException", 502, openai.InternalServerError),
    (403, "ExpiredTokenException", 502, openai.InternalServerError),
    (418, "SomethingNewException", 418, openai.APIStatusError),
    (599, "SomethingNewFault", 502, openai.InternalServerError),
]


@pytest.mark.parametrize(
    ("aws_status", "code", "status", "exc"), TABLE, ids=[row[1] for row in TABLE]
)
def test_every_mapped_http_error(client, bedrock_simulator, aws_status, code, status, exc):
    bedrock_simulator.reply(
        HttpError(aws_status, code, f"{code} happened", resourceName="x"), operation="InvokeAgent"
    )
    with pytest.raises(exc) as info:
        client.chat.completions.create(model="bedrock-agent-1", messages=USER)
    assert info.value.status_code == status
    assert info.value.body["code"] == code
    assert f"{code}: {code} happened" in info.value.message


@pytest.mark.parametrize(("code", "status"), [(c, s) for _, c, s, _ in TABLE[:11]])
def test_same_table_for_exception_frames_mid_stream(client, bedrock_simulator, code, status):
    from outcrop.testing import AgentReply

    member = code[0].lower() + code[1:]
    bedrock_simulator.reply(AgentReply(["x"], exception=(member, "late")), operation="InvokeAgent")
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="bedrock-agent-1", messages=USER)
    assert info.value.status_code == status and info.value.body["code"] == code


def test_error_code_from_body_type_and_plain_statuses(client, bedrock_simulator):
    bedrock_simulator.reply(
        RawReply(
            429,
            {"content-type": "application/json"},
            [b'{"__type": "com.amazon.bedrock#ThrottlingException", "Message": "slow"}'],
        ),
        operation="InvokeAgent",
        times=1,
    )
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="bedrock-agent-1", messages=USER)
    assert info.value.body["code"] == "ThrottlingException" and "slow" in info.value.message
    bedrock_simulator.reply(
        RawReply(503, {"content-type": "text/html"}, [b"<html>Service Unavailable</html>"]),
        operation="InvokeAgent",
        times=1,
    )
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="bedrock-agent-1", messages=USER)
    assert info.value.status_code == 503 and info.value.body["code"] == "503"


def test_simulator_rejects_bad_signature_as_gateway_fault(
    gateway_factory, simulator_params, bedrock_simulator
):
    from .common import AGENT

    running = gateway_factory(
        {
            "model_list": [
                {
                    "model_name": "a",
                    "litellm_params": simulator_params(
                        AGENT,
                        aws_access_key_id="AKIDUNKNOWN000000000",
                        aws_secret_access_key="nope",
                    ),
                }
            ]
        }
    )
    client = openai.OpenAI(base_url=running.url + "/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="a", messages=USER)
    assert info.value.status_code == 502
    assert bedrock_simulator.last().auth is None  # AWS (the simulator) refused the signature
    assert "nope" not in info.value.message
