"""/v1/embeddings for Titan Text Embeddings v1/v2 and Cohere Embed v3/v4 through the OpenAI SDK,
LangChain and the Python API; every InvokeModel body is checked by the simulator."""

from __future__ import annotations

import base64
import struct

import openai
import pytest
from langchain_openai import OpenAIEmbeddings

import outcrop
from outcrop.testing import TEST_ACCESS_KEY, TEST_SECRET_KEY, HttpError
from outcrop.testing.defaults import DEFAULTS
from outcrop.testing.embeddings import tokens, vector

from .common import MASTER_KEY

MODELS = {
    "titan-v1": "amazon.titan-embed-text-v1",
    "titan-v2": "amazon.titan-embed-text-v2:0",
    "cohere-v3": "cohere.embed-english-v3",
    "cohere-v4": "us.cohere.embed-v4:0",
}
TEXTS = ["The quick brown fox", "jumps over the lazy dog", "again"]


@pytest.fixture
def gateway(gateway_factory, simulator_params, events):
    return gateway_factory(
        {
            "model_list": [
                {"model_name": name, "litellm_params": simulator_params(f"bedrock/{model}")}
                for name, model in MODELS.items()
            ]
            + [
                {
                    "model_name": "chat",
                    "litellm_params": simulator_params("bedrock/amazon.nova-lite-v1:0"),
                }
            ],
            "general_settings": {"master_key": MASTER_KEY},
        }
    )


@pytest.mark.parametrize(
    ("name", "size", "calls"),
    [("titan-v1", 1536, 3), ("titan-v2", 1024, 3), ("cohere-v3", 1024, 1), ("cohere-v4", 1536, 1)],
)
def test_list_input(client, bedrock_simulator, events, name, size, calls):
    r = client.embeddings.create(model=name, input=TEXTS)
    assert [d.index for d in r.data] == [0, 1, 2]
    for data, text in zip(r.data, TEXTS, strict=True):
        assert data.embedding == pytest.approx(vector(text, size))
    expected_tokens = sum(tokens(t) for t in TEXTS)
    assert r.usage.prompt_tokens == r.usage.total_tokens == expected_tokens
    assert len(bedrock_simulator.requests) == calls
    assert all(req.operation == "InvokeModel" for req in bedrock_simulator.requests)
    event = events.wait_count(1)[-1]
    assert event.surface == "embeddings" and event.status == 200 and event.cost is not None


def test_bodies_sent(client, bedrock_simulator):
    client.embeddings.create(
        model="titan-v2", input="hello", dimensions=256, extra_body={"normalize": False}
    )
    assert bedrock_simulator.last().json() == {
        "inputText": "hello",
        "dimensions": 256,
        "normalize": False,
    }
    client.embeddings.create(
        model="cohere-v4",
        input=["a", "b"],
        dimensions=512,
        extra_body={"input_type": "search_query", "truncate": "END"},
    )
    assert bedrock_simulator.last().json() == {
        "texts": ["a", "b"],
        "input_type": "search_query",
        "truncate": "END",
        "embedding_types": ["float"],
        "output_dimension": 512,
    }
    assert bedrock_simulator.last().params["modelId"] == MODELS["cohere-v4"]
    client.embeddings.create(model="cohere-v3", input="x")
    assert bedrock_simulator.last().json() == {"texts": ["x"], "input_type": "search_document"}


def test_cohere_batches_of_96(client, bedrock_simulator):
    texts = [f"text number {i}" for i in range(200)]
    r = client.embeddings.create(model="cohere-v3", input=texts)
    assert [len(req.json()["texts"]) for req in bedrock_simulator.requests] == [96, 96, 8]
    assert r.data[150].embedding == pytest.approx(vector(texts[150], 1024))


def test_base64_encoding(client, bedrock_simulator):
    r = client.embeddings.with_raw_response.create(
        model="titan-v2", input="hi", encoding_format="base64"
    )
    raw = r.http_response.json()["data"][0]["embedding"]
    decoded = struct.unpack("<1024f", base64.b64decode(raw))
    assert list(decoded) == pytest.approx(vector("hi", 1024))
    # the SDK's default (no encoding_format) asks for base64 and decodes it itself
    assert client.embeddings.create(model="titan-v2", input="hi").data[
        0
    ].embedding == pytest.approx(vector("hi", 1024))


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"model": "titan-v1", "input": "x", "dimensions": 256}, "dimensions"),
        ({"model": "titan-v2", "input": "x", "dimensions": 300}, "dimensions"),
        ({"model": "titan-v2", "input": [[1, 2, 3]]}, "input"),
        ({"model": "titan-v2", "input": ""}, "input"),
        ({"model": "titan-v2", "input": []}, "input"),
        (
            {"model": "titan-v2", "input": "x", "extra_body": {"input_type": "search_query"}},
            "input_type",
        ),
        ({"model": "chat", "input": "x"}, "model"),
    ],
)
def test_bad_requests_are_400(client, bedrock_simulator, kwargs, param):
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(**kwargs)
    assert caught.value.body["param"] == param
    assert bedrock_simulator.requests == []


def test_chat_on_an_embeddings_model_is_400(client):
    with pytest.raises(openai.BadRequestError, match="is an embeddings model: call /v1/embeddings"):
        client.chat.completions.create(
            model="titan-v2", messages=[{"role": "user", "content": "x"}]
        )


def test_upstream_errors(client, bedrock_simulator, events):
    bedrock_simulator.reply(HttpError(429, "ThrottlingException", "slow down"))
    with pytest.raises(openai.RateLimitError):
        client.embeddings.create(model="cohere-v4", input="x")
    assert events.wait_count(1)[-1].status == 429 and events.events[-1].surface == "embeddings"


def test_langchain_embeddings(gateway, bedrock_simulator):
    lc = OpenAIEmbeddings(
        model="titan-v2",
        base_url=gateway.url + "/v1",
        api_key=MASTER_KEY,
        check_embedding_ctx_length=False,
        max_retries=0,
    )
    assert lc.embed_query("hello") == pytest.approx(vector("hello", 1024))
    a, b = lc.embed_documents(["a", "b"])
    assert a == pytest.approx(vector("a", 1024)) and b == pytest.approx(vector("b", 1024))


def test_python_api(bedrock_simulator):
    r = outcrop.embedding(
        model=f"bedrock/{MODELS['titan-v2']}",
        input=["one", "two"],
        aws_region_name="us-west-2",
        aws_access_key_id=TEST_ACCESS_KEY,
        aws_secret_access_key=TEST_SECRET_KEY,
        api_base=bedrock_simulator.url,
    )
    assert r.data[1].embedding == pytest.approx(vector("two", 1024))
    assert r.usage.prompt_tokens == 2 and r._hidden_params["response_cost"] == pytest.approx(
        2 * 0.02e-6
    )


def test_embeddings_fail_over_across_the_deployments_of_a_name(
    gateway_factory, simulator_params, bedrock_simulator, events
):
    """A 503 in one region moves each upstream request to the alias's other deployment (the
    call translated again for it and re-signed for its region); 400s are never retried."""

    def deployment(region: str) -> dict:
        return {
            "model_name": "embed",
            "litellm_params": simulator_params(
                f"bedrock/{MODELS['titan-v2']}", aws_region_name=region, order=int(region[-1])
            ),
            "model_info": {"id": f"embed-{region}"},
        }

    gw = gateway_factory(
        {
            "model_list": [deployment("us-east-1"), deployment("us-west-2")],
            "general_settings": {"master_key": MASTER_KEY},
            "router_settings": {"num_retries": 1},
        }
    )
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=MASTER_KEY, max_retries=0)

    def reply(request):
        if request.region == "us-east-1":
            return HttpError(503, "ServiceUnavailableException", "unavailable")
        return DEFAULTS["InvokeModel"](request)

    bedrock_simulator.reply(reply)
    raw = client.embeddings.with_raw_response.create(model="embed", input=TEXTS[0])
    answer = raw.parse()
    assert answer.data[0].embedding == pytest.approx(vector(TEXTS[0], 1024))
    assert raw.headers["x-outcrop-attempts"] == "2"
    calls = [(r.region, r.status) for r in bedrock_simulator.requests]
    assert calls == [("us-east-1", 503), ("us-west-2", 200)]
    event = events.wait_count(1)[-1]
    assert event.deployment == "embed-us-west-2"
    assert [a.deployment for a in event.attempts] == ["embed-us-east-1", "embed-us-west-2"]

    bedrock_simulator.requests.clear()  # Titan: one upstream request per input, each fails over
    raw = client.embeddings.with_raw_response.create(model="embed", input=TEXTS)
    assert [d.embedding for d in raw.parse().data] == [
        pytest.approx(vector(t, 1024)) for t in TEXTS
    ]
    assert raw.headers["x-outcrop-attempts"] == "6"
    assert (
        sorted(r.region for r in bedrock_simulator.requests)
        == ["us-east-1"] * 3 + ["us-west-2"] * 3
    )

    bedrock_simulator.reset()
    bedrock_simulator.reply(HttpError(400, "ValidationException", "bad input"))
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="embed", input=TEXTS[0])
    assert len(bedrock_simulator.requests) == 1
