"""Fixtures: a real gateway (HTTP, in a thread) with Claude deployments in front of the
signature-verifying simulator, which checks every Claude body as Bedrock does; real Anthropic
SDK clients; a recorder of after-call events."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import anthropic
import pytest

import outcrop
from outcrop import CallEvent

from .common import HAIKU, MASTER_KEY, NOVA, SONNET


class EventRecorder:
    """Collects the ``messages`` surface's after-call events (fired on the gateway's thread)."""

    def __init__(self) -> None:
        self.events: list[CallEvent] = []
        self._changed = threading.Condition()

    @outcrop.hookimpl
    def outcrop_after_call(self, event: CallEvent) -> None:
        if event.surface != "messages":
            return
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def wait(self, count: int = 1, timeout: float = 10.0) -> list[CallEvent]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.events) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} after-call events, got {self.events}")
                self._changed.wait(left)
        return self.events

    @property
    def last(self) -> CallEvent:
        return self.wait()[-1]


@pytest.fixture(autouse=True)
def _isolated_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No AWS setting of the machine leaks into a test."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def recorder(outcrop_plugin: Callable[..., str]) -> EventRecorder:
    rec = EventRecorder()
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
    gateway_factory: Callable[..., Any], model_list: list[dict[str, Any]], recorder: EventRecorder
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
