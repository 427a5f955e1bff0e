"""/bedrock/* asks plugins who is calling (bearer keys and issued SigV4 pairs) and whether the
call may go ahead; a refusal is AWS-shaped and nothing reaches AWS."""

from __future__ import annotations

import ssl

import httpx
import pytest
from botocore.exceptions import ClientError

import outcrop
from outcrop import Admission, OutcropError, Principal

from .common import ALIAS, MASTER_KEY, SDK_KEY_ID, SDK_SECRET, bearer_client, sigv4_client

MESSAGES = [{"role": "user", "content": [{"text": "hi"}]}]
ISSUED_ID = "OCKISSUED000000001"
ISSUED_SECRET = "issued-secret-000000000000000000000001"
BEARER = "sk-plugin-bearer-0001"


class Issuer:
    def __init__(self) -> None:
        self.admissions: list[Admission] = []
        self.asked: list[str] = []

    @outcrop.hookimpl
    def outcrop_sigv4_secret(self, access_key_id: str) -> tuple[str, Principal] | None:
        self.asked.append(access_key_id)
        if access_key_id == ISSUED_ID:
            return ISSUED_SECRET, Principal("sigv4_key", id="issued-1", alias="ci")
        return None

    @outcrop.hookimpl
    def outcrop_authenticate(self, token: str) -> Principal | None:
        return Principal("virtual_key", id="bearer-1") if token == BEARER else None

    @outcrop.hookimpl
    def outcrop_admit(self, admission: Admission) -> None:
        self.admissions.append(admission)
        if admission.model == "cohere.command-r-v1:0" and admission.principal.kind != "master_key":
            raise OutcropError("this key may not use cohere.command-r-v1:0", 403)


@pytest.fixture
def issuer(outcrop_plugin):
    plugin = Issuer()
    outcrop_plugin(plugin, "issuer")
    return plugin


def test_issued_sigv4_pair_is_verified_and_admitted(
    issuer, recorder, gateway_factory, make_config, bedrock_simulator
):
    gw = gateway_factory(make_config())
    client = sigv4_client("bedrock-runtime", gw.url, key_id=ISSUED_ID, secret=ISSUED_SECRET)
    answer = client.converse(modelId=ALIAS, messages=MESSAGES)
    assert answer["output"]["message"]["role"] == "assistant"
    (admission,) = issuer.admissions
    assert admission.surface == "passthrough" and admission.principal.id == "issued-1"
    assert admission.path == f"/bedrock/model/{ALIAS}/converse" and admission.model == ALIAS
    assert recorder.last().principal.alias == "ci" and recorder.last().extra["auth"] == "sigv4_key"
    # the static pair is looked up first: the plugin is not asked for it
    sigv4_client("bedrock-runtime", gw.url).converse(modelId=ALIAS, messages=MESSAGES)
    assert issuer.asked == [ISSUED_ID]


def test_issued_pairs_work_without_static_keys(
    issuer, gateway_factory, make_config, bedrock_simulator
):
    gw = gateway_factory(make_config(keys=[]))
    client = sigv4_client("bedrock-runtime", gw.url, key_id=ISSUED_ID, secret=ISSUED_SECRET)
    client.converse(modelId=ALIAS, messages=MESSAGES)
    with pytest.raises(ClientError) as caught:
        sigv4_client("bedrock-runtime", gw.url, key_id="UNKNOWNKEY", secret=SDK_SECRET).converse(
            modelId=ALIAS, messages=MESSAGES
        )
    assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_refusal_is_aws_shaped_and_not_forwarded(issuer, recorder, gateway, bedrock_simulator):
    client = sigv4_client("bedrock-runtime", gateway.url, key_id=ISSUED_ID, secret=ISSUED_SECRET)
    with pytest.raises(ClientError) as caught:
        client.converse(modelId="cohere.command-r-v1:0", messages=MESSAGES)
    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Error"]["Code"] == "AccessDeniedException"
    assert bedrock_simulator.requests == []
    assert recorder.last().status == 403 and recorder.last().principal.id == "issued-1"


def test_plugin_bearer_key_over_tls(
    issuer, recorder, tls_gateway, tls_files, monkeypatch, bedrock_simulator
):
    client = bearer_client(tls_gateway.url, tls_files["ca"], monkeypatch, token=BEARER)
    client.converse(modelId=ALIAS, messages=MESSAGES)
    assert recorder.last().principal.id == "bearer-1"
    ca = ssl.create_default_context(cafile=tls_files["ca"])
    r = httpx.post(
        tls_gateway.url + f"/bedrock/model/{ALIAS}/converse",
        verify=ca,
        headers={"authorization": "Bearer sk-unknown"},
        json={"messages": MESSAGES},
    )
    assert r.status_code == 403 and r.headers["x-amzn-errortype"].startswith("UnrecognizedClient")
    r = httpx.post(
        tls_gateway.url + f"/bedrock/model/{ALIAS}/converse",
        verify=ca,
        headers={"authorization": f"Bearer {MASTER_KEY}"},
        json={"messages": MESSAGES},
    )
    assert r.status_code == 200 and issuer.admissions[-1].principal.kind == "master_key"
    assert SDK_KEY_ID not in issuer.asked
