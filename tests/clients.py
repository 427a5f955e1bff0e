"""Shared by the suites: boto3 clients on a gateway's ``/bedrock`` (SigV4 with a key pair, or a
bearer token), the ``bedrock_passthrough`` section that points at the simulator, and two autouse
fixtures a suite's conftest imports to use (``from tests.clients import isolated_aws_env``)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import boto3
import pytest
from botocore.config import Config

from outcrop.testing import TEST_ACCESS_KEY, TEST_SECRET_KEY

#: One attempt, bounded waits: a test sees the gateway's first answer.
NO_RETRIES = Config(
    retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=10, connect_timeout=5
)
_session = boto3.session.Session()  # one loader for every client: creating clients stays cheap


def sigv4_client(
    service: str, url: str, key_id: str, secret: str, *, region: str = "us-west-2"
) -> Any:
    """A boto3 ``service`` client on ``url``'s ``/bedrock``, signing with a gateway key pair."""
    return _session.client(
        service,
        region_name=region,
        endpoint_url=url + "/bedrock",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=NO_RETRIES,
    )


def bearer_client(url: str, ca: str, monkeypatch: pytest.MonkeyPatch, token: str) -> Any:
    """bedrock-runtime as LiteLLM's /converse page builds it: dummy keys plus
    ``AWS_BEARER_TOKEN_BEDROCK`` (botocore sends a bearer token only over TLS: ``ca``)."""
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", token)
    return boto3.session.Session().client(
        "bedrock-runtime",
        region_name="us-west-2",
        endpoint_url=url + "/bedrock",
        verify=ca,
        aws_access_key_id="dummy",
        aws_secret_access_key="dummy",
        config=NO_RETRIES,
    )


def deployment_params(simulator_url: str, model: str, **extra: Any) -> dict[str, Any]:
    """``litellm_params`` of a deployment on the simulator (test credentials, us-west-2): the
    ``simulator_params`` fixture's, for fixtures wider than one test."""
    return {
        "model": model,
        "aws_region_name": "us-west-2",
        "aws_access_key_id": TEST_ACCESS_KEY,
        "aws_secret_access_key": TEST_SECRET_KEY,
        "api_base": simulator_url,
        **extra,
    }


def passthrough_section(
    simulator_url: str, key_id: str, secret: str, **extra: Any
) -> dict[str, Any]:
    """A ``bedrock_passthrough`` section: defaults on the simulator, one SigV4 key pair."""
    return {
        "aws_region_name": "us-west-2",
        "aws_access_key_id": TEST_ACCESS_KEY,
        "aws_secret_access_key": TEST_SECRET_KEY,
        "api_base": simulator_url,
        "keys": [{"access_key_id": key_id, "secret_access_key": secret}],
        **extra,
    }


def on_loop(server: Any, check: Any, timeout: float = 10.0) -> bool:
    """``check()`` run on the event loop of ``server`` (a ``ServerThread``): where a call ends
    (its event, log line and spend row) in one step, so the answer is never half-way."""

    async def run() -> bool:
        return bool(check())

    return asyncio.run_coroutine_threadsafe(run(), server._loop).result(timeout)


def calls_settled(server: Any, timeout: float = 10.0) -> None:
    """Wait until the gateway ``server`` serves has no call in flight: a call ends (emits its
    event, logs its line) after its answer reached the client."""
    gateway = server.app.state.gateway
    deadline = time.monotonic() + timeout
    while not on_loop(server, lambda: gateway.in_flight == 0, timeout):
        assert time.monotonic() < deadline, f"{gateway.in_flight} calls still in flight"
        time.sleep(0.02)


@pytest.fixture(autouse=True)
def isolated_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No AWS setting of the machine leaks into a test (and no IMDS lookups)."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(autouse=True)
def own_python_api_gateway(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """``outcrop.completion`` keeps one gateway per config: give each test its own (an empty
    config file), so no test reuses, or leaves behind, the default one other suites use."""
    config = tmp_path / "outcrop-python-api.yaml"
    config.write_text("model_list: []\n")
    monkeypatch.setenv("OUTCROP_CONFIG", str(config))
