"""The core's /v1/embeddings route and its two hooks, with a provider defined here: the order of
answers, base64 encoding, usage and cost, errors and after-call events."""

from __future__ import annotations

import base64
import struct
from urllib.parse import quote

import httpx
import msgspec
import openai
import pytest

import outcrop
from outcrop import EmbeddingCall, EmbeddingResult, ModelRoute, UpstreamRequest, Usage
from outcrop.testing import CallEvents, HttpError
from outcrop.testing.embeddings import vector

TITAN = "amazon.titan-embed-text-v2:0"


class EmbedPlugin:
    """``testemb/{modelId}``: Titan v2 via InvokeModel, one request per input."""

    def __init__(self) -> None:
        self.answers = 0
        self.events = CallEvents()

    @outcrop.hookimpl
    def outcrop_register_models(self, register):
        register(outcrop.ModelPrefix("testemb/", "test embeddings"))

    @outcrop.hookimpl
    def outcrop_parse_route(self, model, params):
        return ModelRoute(
            "testemb",
            "bedrock-runtime",
            "bedrock",
            chat=False,
            embeddings=True,
            data={"model_id": model.removeprefix("testemb/")},
        )

    @outcrop.hookimpl
    def outcrop_translate_embeddings_request(
        self, call: EmbeddingCall
    ) -> list[UpstreamRequest] | None:
        call.model = call.route.data["model_id"]
        url = f"{call.endpoint}/model/{quote(call.model, safe='')}/invoke"
        return [
            UpstreamRequest(
                "POST",
                url,
                {"Content-Type": "application/json"},
                msgspec.json.encode({"inputText": text}),
            )
            for text in call.request.texts()
        ]

    @outcrop.hookimpl
    def outcrop_translate_embeddings_response(
        self, call: EmbeddingCall, body: bytes, headers
    ) -> EmbeddingResult | None:
        self.answers += 1
        data = msgspec.json.decode(body)
        count = data["inputTextTokenCount"]
        return EmbeddingResult([data["embedding"]], Usage(count, 0, count))

    @outcrop.hookimpl
    def outcrop_after_call(self, event):
        self.events.outcrop_after_call(event)


@pytest.fixture
def plugin(outcrop_plugin):
    p = EmbedPlugin()
    outcrop_plugin(p, "testemb")
    return p


@pytest.fixture
def gateway(plugin, gateway_factory, simulator_params):
    return gateway_factory(
        {
            "model_list": [
                {
                    "model_name": "emb",
                    "litellm_params": simulator_params(
                        f"testemb/{TITAN}", input_cost_per_token=1e-6, output_cost_per_token=0.0
                    ),
                }
            ]
        }
    )


@pytest.fixture
def client(gateway):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="none", max_retries=0)


def test_answers_keep_input_order_and_are_priced(plugin, client, bedrock_simulator):
    texts = [f"text {i}" for i in range(20)]
    r = client.embeddings.create(model="emb", input=texts, encoding_format="float")
    assert len(bedrock_simulator.requests) == plugin.answers == 20
    for i, data in enumerate(r.data):
        assert data.index == i and data.embedding == pytest.approx(vector(texts[i], 1024))
    assert r.model == TITAN and r.usage.prompt_tokens == 40
    event = plugin.events.one()
    assert (
        event.surface == "embeddings" and event.status == 200 and event.cost == pytest.approx(40e-6)
    )


def test_base64_is_little_endian_float32(gateway, bedrock_simulator):
    r = httpx.post(
        gateway.url + "/v1/embeddings",
        json={"model": "emb", "input": "hi", "encoding_format": "base64"},
    )
    assert r.status_code == 200 and r.headers["x-outcrop-response-cost"]
    raw = base64.b64decode(r.json()["data"][0]["embedding"])
    assert list(struct.unpack("<1024f", raw)) == vector("hi", 1024)


def test_errors_answer_openai_json_and_emit_one_event(plugin, gateway, client, bedrock_simulator):
    bedrock_simulator.reply(HttpError(403, "AccessDeniedException", "no access"))
    with pytest.raises(openai.PermissionDeniedError):
        client.embeddings.create(model="emb", input="x")
    assert [e.status for e in plugin.events.wait_count(1)] == [403]
    for body, status in [
        ({"model": "emb"}, 400),
        ({"model": "nope/x", "input": "x"}, 400),
        ({"model": "emb", "input": ["x"] * 2049}, 400),
        ({"model": "emb", "input": "x", "encoding_format": "int8"}, 400),
    ]:
        r = httpx.post(gateway.url + "/v1/embeddings", json=body)
        assert r.status_code == status and r.json()["error"]["message"]
    assert [e.surface for e in plugin.events.wait_count(5)] == ["embeddings"] * 5
    r = httpx.post(gateway.url + "/v1/embeddings", content=b"{not json")
    assert r.status_code == 400


def test_a_chat_model_is_not_an_embeddings_model(plugin, gateway_factory, simulator_params):
    gw = gateway_factory(
        {
            "model_list": [
                {
                    "model_name": "chat",
                    "litellm_params": simulator_params("bedrock/amazon.nova-lite-v1:0"),
                }
            ]
        }
    )
    r = httpx.post(gw.url + "/v1/embeddings", json={"model": "chat", "input": "x"})
    assert r.status_code == 400 and "is not an embeddings model" in r.json()["error"]["message"]
