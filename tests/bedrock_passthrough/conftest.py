"""Fixtures: a gateway with the pass-through in front of the signature-verifying simulator,
real boto3 clients (bearer over TLS, SigV4 with a gateway-issued key over HTTP), and a
recorder of after-call events."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trustme

from outcrop.testing import CallEvents
from tests.clients import (
    isolated_aws_env,  # noqa: F401  (autouse)
    passthrough_section,
)

from .common import (
    ALIAS,
    ALIAS_MODEL_ID,
    MASTER_KEY,
    SDK_KEY_ID,
    SDK_SECRET,
    bearer_client,
    sigv4_client,
)


@pytest.fixture
def recorder(outcrop_plugin: Callable[..., str]) -> CallEvents:
    """The pass-through's after-call events."""
    rec = CallEvents(surface="passthrough")
    outcrop_plugin(rec, "passthrough-test-recorder")
    return rec


def section(simulator_url: str, **extra: Any) -> dict[str, Any]:
    """A ``bedrock_passthrough`` section pointing the defaults at the simulator."""
    return passthrough_section(simulator_url, SDK_KEY_ID, SDK_SECRET, **extra)


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
