"""Fixtures: a gateway with the pass-through in front of the signature-verifying simulator,
real boto3 clients (bearer over TLS, SigV4 with a gateway-issued key over HTTP), and a
recorder of after-call events."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trustme

from outcrop.testing import TEST_ACCESS_KEY, TEST_SECRET_KEY, CallEvents

from .common import (
    ALIAS,
    ALIAS_MODEL_ID,
    MASTER_KEY,
    SDK_KEY_ID,
    SDK_SECRET,
    bearer_client,
    sigv4_client,
)


@pytest.fixture(autouse=True)
def _isolated_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No AWS setting of the machine leaks into a test (and no IMDS lookups)."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def recorder(outcrop_plugin: Callable[..., str]) -> CallEvents:
    """The pass-through's after-call events."""
    rec = CallEvents(surface="passthrough")
    outcrop_plugin(rec, "passthrough-test-recorder")
    return rec


def section(simulator_url: str, **extra: Any) -> dict[str, Any]:
    """A ``bedrock_passthrough`` section pointing the defaults at the simulator."""
    return {
        "aws_region_name": "us-west-2",
        "aws_access_key_id": TEST_ACCESS_KEY,
        "aws_secret_access_key": TEST_SECRET_KEY,
        "api_base": simulator_url,
        "keys": [{"access_key_id": SDK_KEY_ID, "secret_access_key": SDK_SECRET}],
        **extra,
    }


@pytest.fixture
def make_config(
    bedrock_simulator: Any, simulator_params: Callable[..., dict[str, Any]]
) -> Callable[..., dict[str, Any]]:
    def make(
        *,
        master_key: str | None = MASTER_KEY,
        model_list: list[dict[str, Any]] | None = None,
        allow_raw_models: bool | None = None,
        **section_extra: Any,
    ) -> dict[str, Any]:
        config: dict[str, Any] = {
            "model_list": model_list
            if model_list is not None
            else [
                {
                    "model_name": ALIAS,
                    "litellm_params": simulator_params(f"bedrock/{ALIAS_MODEL_ID}"),
                },
            ],
            "bedrock_passthrough": section(bedrock_simulator.url, **section_extra),
        }
        general: dict[str, Any] = {}
        if master_key:
            general["master_key"] = master_key
        if allow_raw_models is not None:
            general["allow_raw_models"] = allow_raw_models
        if general:
            config["general_settings"] = general
        return config

    return make


@pytest.fixture
def gateway(
    recorder: CallEvents,
    gateway_factory: Callable[..., Any],
    make_config: Callable[..., dict[str, Any]],
) -> Any:
    """The standard gateway over plain HTTP."""
    return gateway_factory(make_config())


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A CA and a server certificate for 127.0.0.1, as PEM files."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path_factory.mktemp("tls")
    paths = {
        "ca": str(folder / "ca.pem"),
        "cert": str(folder / "cert.pem"),
        "key": str(folder / "key.pem"),
    }
    ca.cert_pem.write_to_path(paths["ca"])
    cert.cert_chain_pems[0].write_to_path(paths["cert"])
    for blob in cert.cert_chain_pems[1:]:
        blob.write_to_path(paths["cert"], append=True)
    cert.private_key_pem.write_to_path(paths["key"])
    return paths


@pytest.fixture
def tls_gateway(
    recorder: CallEvents,
    gateway_factory: Callable[..., Any],
    make_config: Callable[..., dict[str, Any]],
    tls_files: dict[str, str],
) -> Any:
    """The standard gateway over HTTPS (botocore sends a bearer token only over TLS)."""
    return gateway_factory(make_config(), certfile=tls_files["cert"], keyfile=tls_files["key"])


@pytest.fixture(params=["bearer-tls", "sigv4-http"])
def runtime(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tls_files: dict[str, str]
) -> Iterator[tuple[Any, str]]:
    """(bedrock-runtime client, auth mode): both ways an SDK reaches the gateway."""
    if request.param == "bearer-tls":
        gw = request.getfixturevalue("tls_gateway")
        yield bearer_client(gw.url, tls_files["ca"], monkeypatch), "master_key"
    else:
        gw = request.getfixturevalue("gateway")
        yield sigv4_client("bedrock-runtime", gw.url), "sigv4"
