"""Fixtures: a real gateway (HTTP, in a thread) in front of the signature-checking simulator."""

from __future__ import annotations

import botocore.session
import openai
import pytest
from botocore.validate import ParamValidator

from outcrop.testing import CallEvents
from tests.clients import own_python_api_gateway  # noqa: F401  (autouse)

from .common import AGENT, AGENT_2, MASTER_KEY, SOURCE_ARN

_INVOKE_AGENT = (
    botocore.session.get_session()
    .get_service_model("bedrock-agent-runtime")
    .operation_model("InvokeAgent")
    .input_shape
)


@pytest.fixture(autouse=True)
def _requests_match_botocores_model(bedrock_simulator):
    """After every test: each InvokeAgent request the gateway sent is one botocore would accept
    (members, types, enums, lengths of InvokeAgentRequest)."""
    yield
    for recorded in bedrock_simulator.requests:
        if recorded.operation != "InvokeAgent" or recorded.auth is None:
            continue
        params = {**recorded.json(), **recorded.params}
        if "x-amz-source-arn" in recorded.headers:
            params["sourceArn"] = recorded.headers["x-amz-source-arn"]
        report = ParamValidator().validate(params, _INVOKE_AGENT)
        assert not report.has_errors(), report.generate_report()


@pytest.fixture
def events(outcrop_plugin) -> CallEvents:
    recorder = CallEvents()
    outcrop_plugin(recorder, "bedrock-agent-test-recorder")
    return recorder


@pytest.fixture
def gateway(events, gateway_factory, simulator_params):
    """The LiteLLM page's two deployments plus a priced one and one with provider params in config."""
    return gateway_factory(
        {
            "model_list": [
                {"model_name": "bedrock-agent-1", "litellm_params": simulator_params(AGENT)},
                {
                    "model_name": "bedrock-agent-2",
                    "litellm_params": simulator_params(AGENT_2, aws_region_name="us-east-1"),
                },
                {
                    "model_name": "priced-agent",
                    "litellm_params": simulator_params(
                        AGENT, input_cost_per_token=0.001, output_cost_per_token=0.002
                    ),
                },
                {
                    "model_name": "configured-agent",
                    "litellm_params": simulator_params(
                        AGENT,
                        enableTrace=True,
                        sessionAttributes={"tenant": "acme"},
                        sourceArn=SOURCE_ARN,
                        bedrockModelConfigurations={"performanceConfig": {"latency": "optimized"}},
                    ),
                },
            ],
            "general_settings": {"master_key": MASTER_KEY},
        }
    )


@pytest.fixture
def client(gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=MASTER_KEY, max_retries=0)


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {MASTER_KEY}"}
