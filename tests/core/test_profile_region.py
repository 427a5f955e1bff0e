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


def _aws_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, profile_region: str | None) -> None:
    """``acct`` with the test keys and ``profile_region`` (``None``: no region, and none in
    the default profile either); the default profile's keys are not the simulator's."""
    config, credentials = tmp_path / "aws-config", tmp_path / "aws-credentials"
    if profile_region is None:
        config.write_text("[default]\noutput = json\n[profile acct]\noutput = json\n")
    else:
        config.write_text(
            f"[default]\nregion = us-east-1\n[profile acct]\nregion = {profile_region}\n"
        )
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


def _config_errors(config: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        Gateway(outcrop.parse_config(config))
    return caught.value.errors


def test_a_profile_without_a_region_is_a_config_error_naming_the_deployment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found at start-up, not as a failed first call."""
    _aws_files(tmp_path, monkeypatch, None)
    assert _config_errors(_config("http://127.0.0.1:9")) == [
        "model_list[0].litellm_params (model_name 'nova'): no AWS region: profile 'acct' sets "
        "no region, and none of aws_region_name, general_settings.default_region, AWS_REGION, "
        "AWS_DEFAULT_REGION is set"
    ]


def test_a_profile_botocore_does_not_know_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _aws_files(tmp_path, monkeypatch, "eu-west-1")
    config = _config(
        "http://127.0.0.1:9", aws_profile_name="acct-typo", aws_region_name="eu-west-1"
    )
    assert _config_errors(config) == [
        "model_list[0].litellm_params.aws_profile_name (model_name 'nova'): no profile "
        "'acct-typo' in the AWS config or credentials file (AWS_CONFIG_FILE, "
        "AWS_SHARED_CREDENTIALS_FILE)"
    ]


def test_no_region_anywhere_is_a_config_error_even_without_a_profile() -> None:
    config = _config("http://127.0.0.1:9")
    del config["model_list"][0]["litellm_params"]["aws_profile_name"]
    config["model_list"][0]["litellm_params"] |= {
        "aws_access_key_id": TEST_ACCESS_KEY,
        "aws_secret_access_key": TEST_SECRET_KEY,
    }
    (error,) = _config_errors(config)
    assert error.startswith("model_list[0].litellm_params (model_name 'nova'): no AWS region: none")


@pytest.mark.parametrize(
    ("where", "value", "called"),
    [
        ("env", "ap-south-1", "ap-south-1"),
        ("default_region", "sa-east-1", "sa-east-1"),
        ("model", "bedrock/arn:aws:bedrock:ca-central-1:123456789012:inference-profile/x", ""),
    ],
)
def test_a_region_from_elsewhere_serves_a_profile_without_one(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    gateway_factory: Callable[..., Any],
    bedrock_simulator: Any,
    where: str,
    value: str,
    called: str,
) -> None:
    """The environment, general_settings.default_region or a model ARN gives the region the
    profile lacks: no config error, and the call is signed for it."""
    _aws_files(tmp_path, monkeypatch, None)
    bedrock_simulator.reply(ConverseReply("Hello", usage=(3, 2)))
    config = _config(bedrock_simulator.url)
    if where == "env":
        monkeypatch.setenv("AWS_REGION", value)
    elif where == "default_region":
        config["general_settings"] = {"default_region": value}
    else:
        config["model_list"][0]["litellm_params"]["model"] = value
        called = "ca-central-1"
    gw = gateway_factory(config)
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0)
    client.chat.completions.create(model="nova", messages=[{"role": "user", "content": "hi"}])
    assert bedrock_simulator.last("Converse").region == called
