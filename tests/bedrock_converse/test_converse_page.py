"""The /converse page's configuration: two deployments of one model_name in two regions answer
on /v1/chat/completions (this plugin) and on /bedrock/model/{name}/converse (the pass-through),
load-balanced both ways."""

from __future__ import annotations

import httpx
import openai
import pytest

from outcrop.testing import TEST_ACCESS_KEY, TEST_SECRET_KEY

from .common import ALIAS, CLAUDE, MASTER_KEY

CALLS = 40


@pytest.fixture
def page_gateway(gateway_factory, bedrock_simulator):
    def deployment(region: str) -> dict:
        return {
            "model_name": ALIAS,
            "litellm_params": {
                "model": f"bedrock/{CLAUDE}",
                "aws_region_name": region,
                "aws_access_key_id": TEST_ACCESS_KEY,
                "aws_secret_access_key": TEST_SECRET_KEY,
                "custom_llm_provider": "bedrock",
                "api_base": bedrock_simulator.url,
            },
        }

    return gateway_factory(
        {
            "model_list": [deployment("us-west-2"), deployment("us-east-1")],
            "general_settings": {"master_key": MASTER_KEY},
        }
    )


def _regions(simulator) -> set[str | None]:
    return {r.region for r in simulator.requests}


def test_chat_completions_are_balanced_over_both_regions(page_gateway, bedrock_simulator):
    client = openai.OpenAI(base_url=page_gateway.url + "/v1", api_key=MASTER_KEY, max_retries=0)
    for _ in range(CALLS):
        r = client.chat.completions.create(
            model=ALIAS, messages=[{"role": "user", "content": "Hello"}]
        )
        assert r.choices[0].message.content == "You said: Hello"
    assert _regions(bedrock_simulator) == {"us-west-2", "us-east-1"}  # 2^-39 to fail by chance
    assert {r.params["modelId"] for r in bedrock_simulator.requests} == {CLAUDE}


@pytest.mark.parametrize("operation", ["converse", "converse-stream"])
def test_native_converse_route_is_balanced_over_both_regions(
    page_gateway, bedrock_simulator, operation
):
    body = {
        "messages": [{"role": "user", "content": [{"text": "Hello, how are you?"}]}],
        "inferenceConfig": {"temperature": 0.5, "maxTokens": 100},
    }
    for _ in range(CALLS):
        r = httpx.post(
            f"{page_gateway.url}/bedrock/model/{ALIAS}/{operation}",
            json=body,
            headers={"Authorization": f"Bearer {MASTER_KEY}"},
        )
        assert r.status_code == 200, r.text
    assert _regions(bedrock_simulator) == {"us-west-2", "us-east-1"}
    assert {r.params["modelId"] for r in bedrock_simulator.requests} == {CLAUDE}
