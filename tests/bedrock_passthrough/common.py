"""Constants and client builders shared by the bedrock_passthrough tests."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config

MASTER_KEY = "sk-passthrough-master"
SDK_KEY_ID = "OUTCROPSDKKEY00001"
SDK_SECRET = "outcrop-sdk-secret-0000000000000001"
ALIAS = "my-bedrock-model"
ALIAS_MODEL_ID = "us.anthropic.claude-3-5-sonnet-20240620-v1:0"
RAW_MODEL_ID = "cohere.command-r-v1:0"
NO_RETRIES = Config(
    retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=10, connect_timeout=5
)
_session = boto3.session.Session()  # one loader for every client: creating clients stays cheap


def sigv4_client(
    service: str,
    url: str,
    *,
    key_id: str = SDK_KEY_ID,
    secret: str = SDK_SECRET,
    region: str = "us-west-2",
) -> Any:
    return _session.client(
        service,
        region_name=region,
        endpoint_url=url + "/bedrock",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=NO_RETRIES,
    )


def bearer_client(
    url: str, ca: str, monkeypatch: pytest.MonkeyPatch, token: str = MASTER_KEY
) -> Any:
    """bedrock-runtime as the /converse page builds it: dummy keys plus AWS_BEARER_TOKEN_BEDROCK."""
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
