"""A ``bedrock_passthrough`` section that names ``aws_profile_name``: calls no deployment serves
go to that profile's region (an AWS config file in tmp_path, never real AWS), and a profile
that is missing, or sets no region when nothing else does, is a config error at start-up, not
a failed first call. Raw HTTP with the master key and boto3 against the simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

import outcrop
from outcrop import ConfigError, Gateway
from outcrop.testing import TEST_ACCESS_KEY, TEST_SECRET_KEY, ConverseReply

from .common import MASTER_KEY, RAW_MODEL_ID, sigv4_client

MESSAGES = [{"role": "user", "content": [{"text": "hi"}]}]


def _aws_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, region_line: str) -> None:
    config, credentials = tmp_path / "aws-config", tmp_path / "aws-credentials"
    config.write_text(f"[default]\noutput = json\n[profile acct]\noutput = json\n{region_line}\n")
    credentials.write_text(
        f"[acct]\naws_access_key_id = {TEST_ACCESS_KEY}\naws_secret_access_key = {TEST_SECRET_KEY}\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))


def _config(url: str, profile: str = "acct") -> dict[str, Any]:
    """No model_list: raw model ids go through the section's defaults (the profile's keys)."""
    return {
        "general_settings": {"master_key": MASTER_KEY},
        "bedrock_passthrough": {
            "aws_profile_name": profile,
            "api_base": url,
            "keys": [{"access_key_id": "OUTCROPSDKKEY00001", "secret_access_key": "s" * 24}],
        },
    }


def test_calls_go_to_the_sections_profiles_region(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gateway_factory: Any, bedrock_simulator: Any
) -> None:
    _aws_files(tmp_path, monkeypatch, "region = eu-central-1")
    bedrock_simulator.reply(ConverseReply("Hello", usage=(3, 2)))
    gw = gateway_factory(_config(bedrock_simulator.url))
    answer = httpx.post(
        f"{gw.url}/bedrock/model/{RAW_MODEL_ID}/converse",
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        json={"messages": MESSAGES},
    )
    assert answer.status_code == 200, answer.text
    sent = bedrock_simulator.last("Converse")
    assert (sent.region, sent.access_key) == ("eu-central-1", TEST_ACCESS_KEY)


@pytest.mark.parametrize(
    ("region_line", "profile", "error"),
    [
        (
            "",
            "acct",
            "bedrock_passthrough: no AWS region: profile 'acct' sets no region, and none of "
            "aws_region_name, general_settings.default_region, AWS_REGION, AWS_DEFAULT_REGION "
            "is set",
        ),
        (
            "region = eu-central-1",
            "nope",
            "bedrock_passthrough.aws_profile_name: no profile 'nope' in the AWS config or "
            "credentials file (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE)",
        ),
    ],
)
def test_a_sections_profile_without_a_region_or_missing_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, region_line: str, profile: str, error: str
) -> None:
    _aws_files(tmp_path, monkeypatch, region_line)
    with pytest.raises(ConfigError) as caught:
        Gateway(outcrop.parse_config(_config("http://127.0.0.1:9", profile=profile)))
    assert caught.value.errors == [error]


def test_without_a_profile_sigv4_callers_still_bring_their_region(
    gateway_factory: Any, bedrock_simulator: Any
) -> None:
    """A section with no profile and no region is no error: a SigV4 caller's scope gives the
    region (and a caller without one gets a 400 naming the setting)."""
    bedrock_simulator.reply(ConverseReply("Hello", usage=(3, 2)))
    config = _config(bedrock_simulator.url)
    section = config["bedrock_passthrough"]
    del section["aws_profile_name"]
    section |= {"aws_access_key_id": TEST_ACCESS_KEY, "aws_secret_access_key": TEST_SECRET_KEY}
    gw = gateway_factory(config)
    client = sigv4_client(
        "bedrock-runtime",
        gw.url,
        secret=section["keys"][0]["secret_access_key"],
        region="ap-northeast-1",
    )
    client.converse(modelId=RAW_MODEL_ID, messages=MESSAGES)
    assert bedrock_simulator.last("Converse").region == "ap-northeast-1"
    answer = httpx.post(
        f"{gw.url}/bedrock/model/{RAW_MODEL_ID}/converse",
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        json={"messages": MESSAGES},
    )
    assert answer.status_code == 400
    assert "set bedrock_passthrough.aws_region_name" in answer.json()["message"]
