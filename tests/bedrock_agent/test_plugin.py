"""Discovery through the entry point, the registered prefix, and the demo deployment."""

from __future__ import annotations

import openai

from outcrop import Gateway, parse_config
from outcrop.testing import TEST_ACCESS_KEY, TEST_SECRET_KEY
from outcrop_bedrock_agent import plugin

from .common import AGENT


def test_entry_point_is_discovered_and_claims_only_agent_models():
    gateway = Gateway(parse_config({}))
    names = dict(gateway.pm.list_name_plugin())
    assert names["bedrock_agent"] is plugin
    route = gateway.parse_route(AGENT)
    assert (route.provider, route.service, route.signing_name) == (
        "bedrock_agent",
        "bedrock-agent-runtime",
        "bedrock",
    )
    assert route.data == {"agent_id": "L1RT58GYRW", "alias_id": "MFPSBCXYTW"}
    # the longest registered prefix routes: the agent plugin is never asked about these
    for other in (
        "bedrock/agentcore/arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/x-1234567890",
        "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0",
        "bedrock/agents/X/Y",
        "agent/X/Y",
    ):
        owner = gateway.claims.owner(other)
        assert owner is None or owner[1].name != "bedrock_agent"


def test_demo_deployment_answers_with_the_simulator_defaults(gateway_factory, bedrock_simulator):
    probe = Gateway(parse_config({}))
    (prefix,) = [p for p in probe.model_prefixes if p.distribution == "outcrop-bedrock-agent"]
    assert prefix.prefix == "bedrock/agent/" and prefix.example == AGENT
    running = gateway_factory(
        {
            "model_list": [
                {
                    "model_name": "demo-bedrock-agent",
                    "litellm_params": {
                        "model": prefix.example,
                        "aws_region_name": "us-west-2",
                        "api_base": bedrock_simulator.url,
                        "aws_access_key_id": TEST_ACCESS_KEY,
                        "aws_secret_access_key": TEST_SECRET_KEY,
                    },
                }
            ]
        }
    )
    client = openai.OpenAI(base_url=running.url, api_key="unused", max_retries=0)
    response = client.chat.completions.create(
        model="demo-bedrock-agent", messages=[{"role": "user", "content": "Hello"}]
    )
    assert response.choices[0].message.content == "You said: Hello"
    assert response.usage.total_tokens > 0
