"""Constants and client builders shared by the bedrock_passthrough tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests import clients

MASTER_KEY = "sk-passthrough-master"
SDK_KEY_ID = "OUTCROPSDKKEY00001"
SDK_SECRET = "outcrop-sdk-secret-0000000000000001"
ALIAS = "my-bedrock-model"
ALIAS_MODEL_ID = "us.anthropic.claude-3-5-sonnet-20240620-v1:0"
RAW_MODEL_ID = "cohere.command-r-v1:0"


def sigv4_client(
    service: str,
    url: str,
    *,
    key_id: str = SDK_KEY_ID,
    secret: str = SDK_SECRET,
    region: str = "us-west-2",
) -> Any:
    """A boto3 client on the gateway's /bedrock, signing with this suite's key pair."""
    return clients.sigv4_client(service, url, key_id, secret, region=region)


def bearer_client(
    url: str, ca: str, monkeypatch: pytest.MonkeyPatch, token: str = MASTER_KEY
) -> Any:
    """bedrock-runtime as the /converse page builds it (the master key as the bearer token)."""
    return clients.bearer_client(url, ca, monkeypatch, token)
