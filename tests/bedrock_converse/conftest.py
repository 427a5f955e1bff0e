"""Fixtures: a real gateway (HTTP, in a thread) with Converse deployments in front of the
signature-verifying simulator, which also checks every body against botocore's model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest

from outcrop.testing import CallEvents
from tests.clients import own_python_api_gateway  # noqa: F401  (autouse)

from .common import ALIAS, CLAUDE, MASTER_KEY, NOVA, PROFILE_ARN


@pytest.fixture(autouse=True)
def _requests_match_botocores_model(bedrock_simulator):
    """After every test: no request the gateway sent was refused by the simulator's checks
    (SigV4, and the body validated against botocore's bedrock-runtime model)."""
    yield
    refused = [
        (r.operation, r.error, r.text()[:300]) for r in bedrock_simulator.requests if r.error
    ]
    assert not refused, refused


@pytest.fixture
def events(outcrop_plugin) -> CallEvents:
    recorder = CallEvents()
    outcrop_plugin(recorder, "bedrock-converse-test-recorder")
    return recorder


@pytest.fixture
def make_gateway(gateway_factory, simulator_params) -> Callable[..., Any]:
    """``make_gateway(**deployment_extra)``: the standard model list, extra keys on each."""

    def make(**extra: Any) -> Any:
        return gateway_factory(
            {
                "model_list": [
                    {
                        "model_name": ALIAS,
                        "litellm_params": simulator_params(f"bedrock/{CLAUDE}", **extra),
                    },
                    {
                        "model_name": "nova",
                        "litellm_params": simulator_params(f"bedrock/converse/{NOVA}", **extra),
                    },
                    {
                        "model_name": "profile",
                        "litellm_params": simulator_params(f"bedrock/{PROFILE_ARN}", **extra),
                    },
                ],
                "general_settings": {"master_key": MASTER_KEY},
            }
        )

    return make


@pytest.fixture
def gateway(make_gateway, events) -> Any:
    return make_gateway()


@pytest.fixture
def client(gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=MASTER_KEY, max_retries=0)


@pytest.fixture
def aclient(gateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=MASTER_KEY, max_retries=0)
