"""LiteLLM's pass-through and /converse pages' examples, as written: curl bodies byte for byte (sent with httpx), the /converse page's
config file verbatim, its boto3 snippet, and its load-balancing config across two regions.

AWS is the simulator, reached the way a user would redirect botocore: AWS_ENDPOINT_URL_*.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest
import yaml

from outcrop.eventstream import EventStreamDecoder
from outcrop.testing import TEST_ACCESS_KEY, TEST_SECRET_KEY

from .common import bearer_client

CONVERSE_003 = b"""{
"messages": [
{"role": "user",
"content": [{"text": "Hello"}]
}
]
}"""
GUARDRAIL_003 = b"""{
"contents": [{"text": {"text": "Hello world"}}],
"source": "INPUT"
}"""
RETRIEVE_003 = b"""{
"nextToken": "string",
"retrievalConfiguration": {
"vectorSearchConfiguration": {
"filter": { ... },
"numberOfResults": number,
"overrideSearchType": "string"
}
},
"retrievalQuery": {
"text": "string"
}
}"""

CONFIG_004 = """
model_list:
- model_name: my-bedrock-model
  litellm_params:
    model: bedrock/us.anthropic.claude-3-5-sonnet-20240620-v1:0
    aws_region_name: us-west-2
    aws_access_key_id: os.environ/AWS_ACCESS_KEY_ID # reads from environment
    aws_secret_access_key: os.environ/AWS_SECRET_ACCESS_KEY
    custom_llm_provider: bedrock
"""
LOAD_BALANCING_004 = """
model_list:
  # Deployment 1 - us-west-2
  - model_name: my-bedrock-model
    litellm_params:
      model: bedrock/us.anthropic.claude-3-5-sonnet-20240620-v1:0
      aws_region_name: us-west-2
      aws_access_key_id: os.environ/AWS_ACCESS_KEY_ID
      aws_secret_access_key: os.environ/AWS_SECRET_ACCESS_KEY
      custom_llm_provider: bedrock

  # Deployment 2 - us-east-1
  - model_name: my-bedrock-model
    litellm_params:
      model: bedrock/us.anthropic.claude-3-5-sonnet-20240620-v1:0
      aws_region_name: us-east-1
      aws_access_key_id: os.environ/AWS_ACCESS_KEY_ID
      aws_secret_access_key: os.environ/AWS_SECRET_ACCESS_KEY
      custom_llm_provider: bedrock
"""
CONVERSE_004 = b"""{
"messages": [
{
"role": "user",
"content": [{"text": "Hello, how are you?"}]
}
],
"inferenceConfig": {
"temperature": 0.5,
"maxTokens": 100
}
}"""
STREAM_004 = b"""{
"messages": [
{
"role": "user",
"content": [{"text": "Tell me a short story"}]
}
],
"inferenceConfig": {
"temperature": 0.7,
"maxTokens": 200
}
}"""


@pytest.fixture
def aws_environment(monkeypatch: pytest.MonkeyPatch, bedrock_simulator: Any) -> None:
    """``export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... AWS_REGION_NAME=...``, with
    botocore's endpoint variables sending every data plane to the simulator."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("AWS_REGION_NAME", "us-west-2")
    for service in ("BEDROCK_RUNTIME", "BEDROCK_AGENT_RUNTIME", "BEDROCK_AGENTCORE"):
        monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", bedrock_simulator.url)


def post(url: str, body: bytes, key: str) -> httpx.Response:
    return httpx.post(
        url,
        content=body,
        timeout=10,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )


# -- LiteLLM's pass-through page: `litellm` with AWS keys in the environment, no config ------------------------------


def test_passthrough_page_converse_with_any_bearer(
    aws_environment, gateway_factory, bedrock_simulator, recorder
):
    gw = gateway_factory({})
    for key in ("anything", "sk-anything"):
        r = post(f"{gw.url}/bedrock/model/cohere.command-r-v1:0/converse", CONVERSE_003, key)
        assert r.status_code == 200, r.text
        assert r.json()["output"]["message"]["content"][0]["text"] == "You said: Hello"
        assert float(r.headers["x-outcrop-response-cost"]) > 0
        seen = bedrock_simulator.last("Converse")
        assert seen.body == CONVERSE_003  # byte for byte
        assert seen.raw_path == "/model/cohere.command-r-v1:0/converse"
        assert (seen.access_key, seen.region, seen.error) == (TEST_ACCESS_KEY, "us-west-2", None)
        assert "authorization" in seen.headers and "Bearer" not in seen.headers["authorization"]


def test_passthrough_page_apply_guardrail_as_written_gets_bedrocks_own_answer(
    aws_environment, gateway_factory, bedrock_simulator
):
    gw = gateway_factory({})
    url = f"{gw.url}/bedrock/guardrail/guardrailIdentifier/version/guardrailVersion/apply"
    # The page writes `contents`; Bedrock's field is `content`, and Bedrock says so.
    r = post(url, GUARDRAIL_003, "sk-anything")
    assert r.status_code == 400 and r.headers["x-amzn-errortype"] == "ValidationException"
    assert "'content'" in r.json()["message"]
    assert r.headers["x-amzn-requestid"] == bedrock_simulator.last().request_id
    assert bedrock_simulator.last().body == GUARDRAIL_003
    fixed = GUARDRAIL_003.replace(b'"contents"', b'"content"')
    r = post(url, fixed, "sk-anything")
    assert r.status_code == 200 and r.json()["action"] == "NONE"
    assert bedrock_simulator.last("ApplyGuardrail").params["guardrailVersion"] == "guardrailVersion"


def test_passthrough_page_knowledge_base_retrieve(
    aws_environment, gateway_factory, bedrock_simulator
):
    gw = gateway_factory({})
    # curl expands the {knowledgeBaseId} glob to the bare word; the placeholder body is not JSON.
    r = post(
        f"{gw.url}/bedrock/knowledgebases/knowledgeBaseId/retrieve", RETRIEVE_003, "sk-anything"
    )
    assert r.status_code == 400 and r.headers["x-amzn-errortype"] == "ValidationException"
    assert bedrock_simulator.last().body == RETRIEVE_003
    filled = (
        RETRIEVE_003.replace(b'"filter": { ... },\n', b"")
        .replace(b"number,", b"5,")
        .replace(b'"string"\n}\n}', b'"HYBRID"\n}\n}')
    )
    r = post(f"{gw.url}/bedrock/knowledgebases/KB12345678/retrieve", filled, "sk-anything")
    assert r.status_code == 200, r.text
    seen = bedrock_simulator.last("Retrieve")
    assert seen.service == "bedrock-agent-runtime" and seen.body == filled


def test_passthrough_page_with_a_master_key(aws_environment, gateway_factory, bedrock_simulator):
    gw = gateway_factory({"general_settings": {"master_key": "sk-1234"}})
    url = f"{gw.url}/bedrock/model/cohere.command-r-v1:0/converse"
    assert post(url, CONVERSE_003, "sk-1234").status_code == 200
    r = post(url, CONVERSE_003, "sk-anything")
    assert r.status_code == 403 and r.headers["x-amzn-errortype"] == "UnrecognizedClientException"
    assert r.json() == {"message": "The API key included in the request is invalid."}


# -- LiteLLM's /converse page: the config file, curl, boto3, load balancing ---------------------------------------


def test_converse_page_converse_and_converse_stream(
    aws_environment, gateway_factory, bedrock_simulator, recorder
):
    gw = gateway_factory(yaml.safe_load(CONFIG_004))
    r = post(f"{gw.url}/bedrock/model/my-bedrock-model/converse", CONVERSE_004, "sk-1234")
    assert r.status_code == 200, r.text
    assert r.json()["output"]["message"]["content"][0]["text"] == "You said: Hello, how are you?"
    seen = bedrock_simulator.last("Converse")
    assert (
        seen.body == CONVERSE_004
        and seen.params["modelId"] == "us.anthropic.claude-3-5-sonnet-20240620-v1:0"
    )
    assert recorder.last().deployment == "my-bedrock-model#0" and recorder.last().cost > 0

    with httpx.stream(
        "POST",
        f"{gw.url}/bedrock/model/my-bedrock-model/converse-stream",
        content=STREAM_004,
        headers={"Authorization": "Bearer sk-1234", "Content-Type": "application/json"},
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/vnd.amazon.eventstream"
        decoder = EventStreamDecoder()
        events = [m for chunk in r.iter_raw() for m in decoder.feed(chunk)]
    text = "".join(m.json()["delta"]["text"] for m in events if m.event_type == "contentBlockDelta")
    assert text == "You said: Tell me a short story"
    assert events[-1].event_type == "metadata"
    assert bedrock_simulator.last("ConverseStream").body == STREAM_004


def test_converse_page_boto3_snippet_with_a_bearer_token_over_tls(
    aws_environment, monkeypatch, gateway_factory, tls_files, bedrock_simulator
):
    gw = gateway_factory(
        yaml.safe_load(CONFIG_004), certfile=tls_files["cert"], keyfile=tls_files["key"]
    )
    bedrock_runtime = bearer_client(gw.url, tls_files["ca"], monkeypatch, token="sk-1234")
    response = bedrock_runtime.converse(
        modelId="my-bedrock-model",
        messages=[{"role": "user", "content": [{"text": "Hello, how are you?"}]}],
        inferenceConfig={"temperature": 0.5, "maxTokens": 100},
    )
    assert response["output"]["message"]["content"][0]["text"] == "You said: Hello, how are you?"
    assert (
        bedrock_simulator.last("Converse").access_key == TEST_ACCESS_KEY
    )  # re-signed, not "dummy"


def test_converse_page_load_balancing_sends_traffic_to_both_regions(
    aws_environment, gateway_factory, bedrock_simulator
):
    gw = gateway_factory(yaml.safe_load(LOAD_BALANCING_004))
    url = f"{gw.url}/bedrock/model/my-bedrock-model/converse"
    with httpx.Client(headers={"Authorization": "Bearer sk-1234"}) as client:
        for _ in range(40):
            assert client.post(url, content=CONVERSE_004).status_code == 200
    regions = Counter(r.region for r in bedrock_simulator.requests if r.operation == "Converse")
    assert set(regions) == {"us-west-2", "us-east-1"} and sum(regions.values()) == 40
    assert all(r.error is None for r in bedrock_simulator.requests)


def test_weights_share_the_traffic(aws_environment, gateway_factory, bedrock_simulator):
    config = yaml.safe_load(LOAD_BALANCING_004)
    config["model_list"][0]["litellm_params"]["weight"] = 4
    gw = gateway_factory(config)
    url = f"{gw.url}/bedrock/model/my-bedrock-model/count-tokens"
    body = b'{"input": {"converse": {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}}}'
    with httpx.Client(headers={"Authorization": "Bearer sk-1234"}) as client:
        for _ in range(100):
            assert client.post(url, content=body).status_code == 200
    regions = Counter(r.region for r in bedrock_simulator.requests)
    # Expected 80 / 20; these bounds fail with a probability below one in a million.
    assert 60 <= regions["us-west-2"] <= 96 and regions["us-east-1"] == 100 - regions["us-west-2"]
