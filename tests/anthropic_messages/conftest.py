"""Fixtures: a real gateway (HTTP, in a thread) with Claude deployments in front of the
signature-verifying simulator, which checks every Claude body as Bedrock does; real Anthropic
SDK clients; a recorder of after-call events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import pytest

from outcrop.testing import CallEvents
from tests.clients import isolated_aws_env  # noqa: F401  (autouse)

from .common import HAIKU, MASTER_KEY, NOVA, SONNET


@pytest.fixture
def recorder(outcrop_plugin: Callable[..., str]) -> CallEvents:
    """The ``messages`` surface's after-call events."""
    rec = CallEvents(surface="messages")
    outcrop_plugin(rec, "anthropic-messages-test-recorder")
    return rec


@pytest.fixture
def model_list(simulator_params: Callable[..., dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"model_name": "claude", "litellm_params": simulator_params(f"bedrock/{SONNET}")},
        {"model_name": "haiku", "litellm_params": simulator_params(f"bedrock/{HAIKU}")},
        {"model_name": "nova", "litellm_params": simulator_params(f"bedrock/{NOVA}")},
    ]


@pytest.fixture
def gateway(
    gateway_factory: Callable[..., Any], model_list: list[dict[str, Any]], recorder: CallEvents
) -> Any:
    return gateway_factory(
        {"model_list": model_list, "general_settings": {"master_key": MASTER_KEY}}
    )


@pytest.fixture
def client(gateway: Any) -> anthropic.Anthropic:
    with anthropic.Anthropic(base_url=gateway.url, api_key=MASTER_KEY, max_retries=0) as c:
        yield c


@pytest.fixture
async def aclient(gateway: Any) -> anthropic.AsyncAnthropic:
    async with anthropic.AsyncAnthropic(
        base_url=gateway.url, api_key=MASTER_KEY, max_retries=0
    ) as c:
        yield c


@pytest.fixture(autouse=True)
def _bedrock_accepted_every_body(bedrock_simulator: Any, request: pytest.FixtureRequest):
    """After every test: no request the gateway sent was refused by the simulator's checks
    (SigV4, botocore's model, Claude's body rules), unless the test expects refusals."""
    yield
    if request.node.get_closest_marker("refusals_expected"):
        return
    refused = [
        (r.operation, r.error, r.text()[:300]) for r in bedrock_simulator.requests if r.error
    ]
    assert not refused, refused


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "refusals_expected: the test makes Bedrock (the simulator) refuse a request"
    )
