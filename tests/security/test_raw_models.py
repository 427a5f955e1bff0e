"""Issue 9 item 5: with a model_list, only its model_names are served.

A raw model string (``bedrock/agent/...``, ``bedrock/agentcore/arn:...`` of any account, a raw
Bedrock model id on the pass-through) would be called with the gateway's own credentials. With a
``model_list`` and no ``general_settings.allow_raw_models: true`` each one is refused before
anything is sent: a 400 ``model_not_found`` on the chat route (what LiteLLM-style clients expect
for an unknown model), a 403 ``AccessDeniedException`` on ``/bedrock/*`` (what AWS answers for a
model the caller may not use). Both say how to allow raw strings. Each case also checks that the
simulator saw nothing, that nothing left the machine, and that the worker still serves.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import openai
import pytest

import outcrop
from outcrop import Config, ConfigError, OutcropError
from outcrop.app import create_app
from outcrop.testing import TEST_ACCESS_KEY, TEST_SECRET_KEY, ServerThread
from tests.clients import calls_settled, deployment_params, sigv4_client

from .scan import CONVERSE_BODY, USER, nothing_left_the_gateway, simulator, still_serves

KEY = "sk-raw-models"
AUTH = {"Authorization": f"Bearer {KEY}"}
SDK_KEY_ID = "OUTCROPRAWMODELS01"
SDK_SECRET = "outcrop-raw-models-secret-0000001"
AGENT = "bedrock/agent/L1RT58GYRW/MFPSBCXYTW"
RUNTIME_ARN = "arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/my_agent-AbCdEf1234"
NATIVE_ID = "us.anthropic.claude-3-5-sonnet-20240620-v1:0"
HOW = "general_settings.allow_raw_models: true"

#: Model strings that are not a configured model_name, on the chat route.
RAW_CHAT = [
    AGENT,  # the very string a deployment serves: the name is what is served, not the string
    "bedrock/agent/ABCDEFGHIJ/ALIAS12345",
    "bedrock/agentcore/" + RUNTIME_ARN,
    "bedrock/agentcore/arn:aws:bedrock-agentcore:eu-west-1:999999999999:runtime/other-AbCdEf1234",
    "bedrock/agentcore/arn:aws:bedrock-agentcore:attacker.test#:999999999999:runtime/x",
    "bedrock/" + NATIVE_ID,
    "bedrock/converse/amazon.nova-lite-v1:0",
    "bedrock/agent",
    "gpt-4o",
    "AGENT",
    "agent ",
    " agent",
    "agent\u200b",
    "\u00e4gent",
    "x" * 100_000,
]
RAW_CHAT_IDS = [f"{i:02d}-{m[:40]!r}" for i, m in enumerate(RAW_CHAT)]

#: Model ids that are not a configured model_name, in /bedrock/model/{id}/... paths.
RAW_NATIVE = [
    NATIVE_ID,  # the alias's own model id: refused like any raw id
    "cohere.command-r-v1:0",
    "amazon.nova-lite-v1:0",
    "arn:aws:bedrock:us-east-1:999999999999:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0",
    "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
    "NATIVE",
    "native ",
]
OPERATIONS = [
    "converse",
    "converse-stream",
    "invoke",
    "invoke-with-response-stream",
    "count-tokens",
]


def _config(sim: Any, **general: Any) -> dict[str, Any]:
    return {
        "model_list": [
            {"model_name": "agent", "litellm_params": deployment_params(sim.url, AGENT)},
            {
                "model_name": "native",
                "litellm_params": deployment_params(sim.url, "bedrock/" + NATIVE_ID),
            },
        ],
        "general_settings": {"master_key": KEY, **general},
        # defaults for raw ids, pointed at the simulator: whatever slips through shows up there
        "bedrock_passthrough": {
            "aws_region_name": "us-west-2",
            "api_base": sim.url,
            "aws_access_key_id": TEST_ACCESS_KEY,
            "aws_secret_access_key": TEST_SECRET_KEY,
            "keys": [{"access_key_id": SDK_KEY_ID, "secret_access_key": SDK_SECRET}],
        },
    }


@pytest.fixture(scope="module")
def sim() -> Iterator[Any]:
    with simulator(SDK_KEY_ID, SDK_SECRET) as sim:
        yield sim


@pytest.fixture(scope="module")
def gw_server(sim: Any) -> Iterator[ServerThread]:
    """A gateway with a model_list and no allow_raw_models: the default."""
    with ServerThread(create_app(_config(sim))) as server:
        yield server


@pytest.fixture
def gw(gw_server: ServerThread) -> Iterator[str]:
    """The module's gateway for one test; its calls have ended (and logged) when the test does."""
    yield gw_server.url
    calls_settled(gw_server)


@pytest.fixture(autouse=True)
def _clean(sim: Any) -> Iterator[None]:
    sim.reset()
    yield
    sim.reset()


# -- chat route ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("model", RAW_CHAT, ids=RAW_CHAT_IDS)
def test_chat_refuses_raw_model_strings(gw, sim, model, stream):
    r = httpx.post(
        f"{gw}/v1/chat/completions",
        headers=AUTH,
        json={"model": model, "messages": USER, "stream": stream},
    )
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/json"
    error = r.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "model_not_found",
        "model",
    )
    assert HOW in error["message"]
    assert len(r.content) < 1000  # a 100,000-character model name is not echoed
    nothing_left_the_gateway(sim)
    still_serves(gw, sim, AUTH)


def test_openai_sdk_sees_a_bad_request(gw, sim):
    client = openai.OpenAI(base_url=gw + "/v1", api_key=KEY, max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="bedrock/agent/ABCDEFGHIJ/ALIAS12345", messages=USER)
    assert HOW in caught.value.message
    nothing_left_the_gateway(sim)
    assert client.chat.completions.create(model="agent", messages=USER).choices[0].message.content


async def test_python_api_with_a_model_list_refuses_them_too(sim):
    config = outcrop.parse_config(_config(sim))
    with pytest.raises(OutcropError) as caught:
        await outcrop.acompletion(
            model="bedrock/agent/ABCDEFGHIJ/ALIAS12345",
            messages=USER,
            config=config,
            api_base=sim.url,
        )
    assert (caught.value.status, caught.value.code) == (400, "model_not_found")
    nothing_left_the_gateway(sim)
    assert (await outcrop.acompletion(model="agent", messages=USER, config=config)).choices


# -- pass-through model paths -------------------------------------------------------------------


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("model_id", RAW_NATIVE)
def test_passthrough_refuses_raw_model_ids(gw, sim, model_id, operation):
    r = httpx.post(
        f"{gw}/bedrock/model/{quote(model_id, safe='')}/{operation}",
        headers=AUTH,
        content=CONVERSE_BODY,
    )
    assert r.status_code == 403, r.text
    assert r.headers["x-amzn-errortype"] == "AccessDeniedException"
    assert HOW in r.json()["message"]
    nothing_left_the_gateway(sim)
    still_serves(gw, sim, AUTH)


def test_passthrough_refuses_start_async_invoke_and_sdks_see_access_denied(gw, sim):
    client = sigv4_client("bedrock-runtime", gw, SDK_KEY_ID, SDK_SECRET)
    with pytest.raises(client.exceptions.AccessDeniedException) as caught:
        client.converse(
            modelId="cohere.command-r-v1:0",
            messages=[{"role": "user", "content": [{"text": "hi"}]}],
        )
    assert HOW in str(caught.value)
    with pytest.raises(client.exceptions.AccessDeniedException) as caught:
        client.start_async_invoke(
            modelId="amazon.nova-reel-v1:0",
            modelInput={},
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": "s3://b/k"}},
        )
    assert HOW in str(caught.value)
    nothing_left_the_gateway(sim)
    still_serves(gw, sim, AUTH)


# -- where raw strings are served ----------------------------------------------------------------


def test_allow_raw_models_serves_them_on_both_surfaces(sim, monkeypatch):
    # a raw chat string is served with the AWS defaults: point them at the simulator
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME", sim.url)
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEST_SECRET_KEY)
    with ServerThread(create_app(_config(sim, allow_raw_models=True))) as server:
        r = httpx.post(
            f"{server.url}/v1/chat/completions",
            headers=AUTH,
            json={"model": "bedrock/agent/ABCDEFGHIJ/ALIAS12345", "messages": USER},
        )
        assert r.status_code == 200, r.text
        r = httpx.post(
            f"{server.url}/bedrock/model/cohere.command-r-v1:0/converse",
            headers=AUTH,
            content=CONVERSE_BODY,
        )
        assert r.status_code == 200, r.text
    assert [q.operation for q in sim.requests] == ["InvokeAgent", "Converse"]


@pytest.mark.parametrize("allow", [None, False])
def test_without_a_model_list_raw_strings_work_unless_refused(sim, allow):
    config = _config(sim) | {"model_list": []}
    if allow is not None:
        config["general_settings"]["allow_raw_models"] = allow
    with ServerThread(create_app(config)) as server:
        r = httpx.post(
            f"{server.url}/bedrock/model/cohere.command-r-v1:0/converse",
            headers=AUTH,
            content=CONVERSE_BODY,
        )
    assert r.status_code == (200 if allow is None else 403), r.text
    assert len(sim.requests) == (1 if allow is None else 0)


@pytest.mark.parametrize("value", ["yes", 1, "true ", [True]])
def test_allow_raw_models_must_be_a_boolean(value):
    with pytest.raises(ConfigError) as caught:
        outcrop.parse_config({"general_settings": {"allow_raw_models": value}})
    assert str(caught.value).startswith("general_settings.allow_raw_models: expected `bool")


def test_the_quick_start_gateway_has_no_model_list_and_serves_raw_strings():
    assert outcrop.Gateway(Config()).allow_raw_models is True
    assert (
        outcrop.Gateway(
            outcrop.parse_config(
                {
                    "model_list": [
                        {
                            "model_name": "a",
                            "litellm_params": {"model": AGENT, "aws_region_name": "us-west-2"},
                        }
                    ]
                }
            )
        ).allow_raw_models
        is False
    )
