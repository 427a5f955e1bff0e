"""LiteLLM's informational endpoints and the JSON 404: `GET /v1/models/{id}`, `/model/info`,
`/health` (a real one-token call per deployment, through the simulator), and unknown routes
answered in the caller's dialect with a hint."""

from __future__ import annotations

import boto3
import botocore.exceptions
import httpx
import openai
import pytest
from botocore.config import Config

from outcrop.testing import TEST_ACCESS_KEY, TEST_SECRET_KEY
from outcrop.testing.replies import HttpError

from .common import ALIAS, CLAUDE, MASTER_KEY

AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}


def test_get_one_model(client):
    assert client.models.retrieve("nova").id == "nova"
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("no-such-model")
    assert info.value.body["code"] == "model_not_found"


def test_model_info_shows_deployments_without_secrets(gateway):
    r = httpx.get(f"{gateway.url}/model/info", headers=AUTH)
    assert r.status_code == 200
    data = r.json()["data"]
    assert {d["model_name"] for d in data} == {ALIAS, "nova", "profile"}
    first = next(d for d in data if d["model_name"] == ALIAS)
    assert first["litellm_params"]["model"] == f"bedrock/{CLAUDE}"
    assert first["model_info"]["provider"] and first["model_info"]["id"]
    assert TEST_SECRET_KEY not in r.text and TEST_ACCESS_KEY not in r.text
    assert httpx.get(f"{gateway.url}/model/info").status_code == 401


def test_health_calls_each_deployment(gateway, bedrock_simulator):
    def reply(request):
        if "nova" in request.path:
            return HttpError(403, "AccessDeniedException", "no access to nova")
        from outcrop.testing.replies import ConverseReply

        return ConverseReply("p")

    bedrock_simulator.reply(reply)
    r = httpx.get(f"{gateway.url}/health", headers=AUTH, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert {e["model_name"] for e in body["healthy_endpoints"]} == {ALIAS, "profile"}
    (bad,) = body["unhealthy_endpoints"]
    assert bad["model_name"] == "nova" and "AccessDeniedException" in bad["error"]
    assert body["healthy_count"] == 2 and body["unhealthy_count"] == 1
    sent = [r.json() for r in bedrock_simulator.requests if r.operation == "Converse"]
    assert len(sent) == 3 and all(s["inferenceConfig"]["maxTokens"] == 1 for s in sent)
    one = httpx.get(f"{gateway.url}/health", params={"model": ALIAS}, headers=AUTH, timeout=30)
    assert [e["model_name"] for e in one.json()["healthy_endpoints"]] == [ALIAS]
    assert httpx.get(f"{gateway.url}/health").status_code == 401


def test_unknown_route_is_json_in_the_openai_dialect(gateway):
    r = httpx.post(f"{gateway.url}/chat/completion", headers=AUTH, json={})
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["code"] == "not_found" and "/v1/chat/completions" in err["message"]


def test_boto3_without_bedrock_in_endpoint_url_gets_an_aws_error_with_a_hint(gateway):
    client = boto3.session.Session().client(
        "bedrock-runtime",
        region_name="us-west-2",
        endpoint_url=gateway.url,  # forgot /bedrock
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=Config(retries={"total_max_attempts": 1}),
    )
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.converse(modelId=ALIAS, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    error = info.value.response["Error"]
    assert error["Code"] == "UnknownOperationException"
    assert f"{gateway.url}/bedrock" in error["Message"]
