"""A deployment with ``aws_profile_name`` and no ``aws_region_name`` calls its profile's own
``region`` (an AWS config file in tmp_path, never real AWS), not the default profile's; that
region is checked like every other source. Through the OpenAI SDK against the simulator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest

import outcrop
from outcrop import ConfigError, Gateway
from outcrop.testing import TEST_ACCESS_KEY, TEST_SECRET_KEY, ConverseReply
from tests.clients import isolated_aws_env  # noqa: F401  (autouse)

NOVA = "bedrock/amazon.nova-lite-v1:0"


def _aws_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, profile_region: str) -> None:
    config, credentials = tmp_path / "aws-config", tmp_path / "aws-credentials"
    config.write_text(f"[default]\nregion = us-east-1\n[profile acct]\nregion = {profile_region}\n")
    credentials.write_text(
        "[default]\naws_access_key_id = AKIDDEFAULTPROFILE\naws_secret_access_key = x\n"
        f"[acct]\naws_access_key_id = {TEST_ACCESS_KEY}\n"
        f"aws_secret_access_key = {TEST_SECRET_KEY}\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))


def _config(url: str, **params: Any) -> dict[str, Any]:
    deployment = {"model": NOVA, "api_base": url, "aws_profile_name": "acct", **params}
    return {"model_list": [{"model_name": "nova", "litellm_params": deployment}]}


@pytest.fixture
def chat(
    gateway_factory: Callable[..., Any], bedrock_simulator: Any
) -> Callable[..., openai.OpenAI]:
    bedrock_simulator.reply(ConverseReply("Hello", usage=(3, 2)))

    def make(**params: Any) -> openai.OpenAI:
        gw = gateway_factory(_config(bedrock_simulator.url, **params))
        return openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0)

    return make


def test_a_profile_deployment_calls_its_profiles_region(
    chat: Callable[..., openai.OpenAI],
    bedrock_simulator: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _aws_files(tmp_path, monkeypatch, "eu-west-1")
    client = chat()
    answer = client.chat.completions.create(
        model="nova", messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.choices[0].message.content == "Hello"
    sent = bedrock_simulator.last("Converse")
    assert (sent.region, sent.access_key) == ("eu-west-1", TEST_ACCESS_KEY)


def test_the_deployments_own_region_still_wins(
    chat: Callable[..., openai.OpenAI],
    bedrock_simulator: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _aws_files(tmp_path, monkeypatch, "eu-west-1")
    client = chat(aws_region_name="ap-south-1")
    client.chat.completions.create(model="nova", messages=[{"role": "user", "content": "hi"}])
    assert bedrock_simulator.last("Converse").region == "ap-south-1"


def test_a_profiles_region_that_is_not_one_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _aws_files(tmp_path, monkeypatch, "attacker.test:8443#")
    with pytest.raises(ConfigError) as caught:
        Gateway(outcrop.parse_config(_config("http://127.0.0.1:9")))
    text = str(caught.value)
    assert "profile acct" in text and "'attacker.test:8443#'" in text, text
