"""Shared fixtures: a gateway configured like LiteLLM's AgentCore page, on the signature-verifying simulator.

The page's ARNs (``runtime/my-agent-runtime``) are placeholders that AWS's runtime-id pattern
(``name-`` + 10 characters) rejects, so the configs below keep the page's structure, regions and
accounts with realistic runtime ids; ``test_litellm_page`` shows what the placeholder itself does.
"""

from __future__ import annotations

import openai
import pytest

from .common import KEY, MODEL, MODEL_EAST, MODEL_EU


def _config(simulator_params, **general):
    return {
        "model_list": [
            # the AgentCore page's proxy config, both runtimes
            {"model_name": "agentcore-runtime-1", "litellm_params": simulator_params(MODEL)},
            {
                "model_name": "agentcore-runtime-2",
                "litellm_params": simulator_params(MODEL_EAST, aws_region_name="us-east-1"),
            },
            # the AgentCore page's "proxy configuration with parameters"
            {
                "model_name": "agentcore-runtime-prod",
                "litellm_params": simulator_params(MODEL, qualifier="production"),
            },
            # no aws_region_name: the region comes from the ARN
            {
                "model_name": "agentcore-eu",
                "litellm_params": simulator_params(MODEL_EU, aws_region_name=None),
            },
            {
                "model_name": "agentcore-messages",
                "litellm_params": simulator_params(MODEL, payload_format="messages"),
            },
            {
                "model_name": "agentcore-fixed-session",
                "litellm_params": simulator_params(
                    MODEL, runtimeSessionId="d" * 40, runtimeUserId="tenant-user-7"
                ),
            },
        ],
        "general_settings": {"master_key": KEY, **general},
    }


@pytest.fixture
def gateway(gateway_factory, simulator_params):
    return gateway_factory(_config(simulator_params))


@pytest.fixture
def raw_gateway(gateway_factory, simulator_params):
    """The same gateway, also serving model strings that are not a configured model_name."""
    return gateway_factory(_config(simulator_params, allow_raw_models=True))


@pytest.fixture
def client(gateway):
    # the AgentCore page uses base_url without /v1: the gateway serves /chat/completions too
    return openai.OpenAI(base_url=gateway.url, api_key=KEY, max_retries=0)


@pytest.fixture
def sim(bedrock_simulator):
    return bedrock_simulator
