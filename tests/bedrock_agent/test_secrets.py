"""Credentials never reach the upstream body, the client or the logs."""

from __future__ import annotations

import io
import json

import openai
import pytest
import structlog

import outcrop
from outcrop.logs import configure_logging
from outcrop.testing import TEST_ACCESS_KEY, TEST_SECRET_KEY, AgentReply, HttpError

from .common import AGENT

SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLE-session-token-value"


@pytest.fixture
def captured_logs():
    saved = structlog.get_config()
    buffer = io.StringIO()
    configure_logging("DEBUG", json=True, stream=buffer)
    yield buffer
    structlog.configure(**saved)


def test_no_secret_in_upstream_body_client_answers_or_logs(
    captured_logs, gateway_factory, simulator_params, bedrock_simulator, events
):
    running = gateway_factory(
        {
            "model_list": [
                {
                    "model_name": "agent",
                    "litellm_params": simulator_params(
                        AGENT, aws_session_token=SESSION_TOKEN, enableTrace=True
                    ),
                }
            ]
        }
    )
    client = openai.OpenAI(base_url=running.url + "/v1", api_key="unused", max_retries=0)
    user = [{"role": "user", "content": "hi"}]
    answers = [client.chat.completions.create(model="agent", messages=user).model_dump_json()]
    answers += [
        c.model_dump_json()
        for c in client.chat.completions.create(model="agent", messages=user, stream=True)
    ]
    with pytest.raises(openai.BadRequestError) as info:  # a client trying to smuggle credentials
        client.chat.completions.create(
            model="agent",
            messages=user,
            extra_body={
                "aws_access_key_id": TEST_ACCESS_KEY,
                "aws_secret_access_key": TEST_SECRET_KEY,
                "aws_session_token": SESSION_TOKEN,
            },
        )
    answers.append(json.dumps(info.value.body))
    bedrock_simulator.reply(
        HttpError(403, "AccessDeniedException", "not allowed"), operation="InvokeAgent", times=1
    )
    with pytest.raises(openai.PermissionDeniedError) as info:
        client.chat.completions.create(model="agent", messages=user)
    answers.append(json.dumps(info.value.body))
    bedrock_simulator.reply(
        AgentReply(["x"], exception=("internalServerException", "oops")),
        operation="InvokeAgent",
        times=1,
    )
    with pytest.raises(openai.APIError) as info:
        for chunk in client.chat.completions.create(model="agent", messages=user, stream=True):
            answers.append(chunk.model_dump_json())
    answers.append(json.dumps(info.value.body))
    # Python API with credentials as keyword arguments.
    response = outcrop.completion(
        model=AGENT,
        messages=user,
        api_base=bedrock_simulator.url,
        aws_region_name="us-west-2",
        aws_access_key_id=TEST_ACCESS_KEY,
        aws_secret_access_key=TEST_SECRET_KEY,
        aws_session_token=SESSION_TOKEN,
    )
    answers.append(json.dumps(response))
    answers.append(json.dumps(response._hidden_params))

    events.wait_for(lambda e: e.status == 502)  # the gateway's last call has been logged
    logs = captured_logs.getvalue()
    assert logs.count('"event": "request"') >= 6  # every call was logged ...
    sent = [r for r in bedrock_simulator.requests if r.operation == "InvokeAgent"]
    assert len(sent) == 5 and all(r.auth == "sigv4" for r in sent)  # the smuggling one never left
    for secret in (TEST_SECRET_KEY, SESSION_TOKEN, TEST_ACCESS_KEY):
        assert secret not in logs  # ... and none of them carries a credential
        assert all(secret.encode() not in r.body for r in sent)
        assert all(secret not in answer for answer in answers)
    # The token travels only where AWS wants it: a signed header.
    assert all(r.headers["x-amz-security-token"] == SESSION_TOKEN for r in sent)
