"""One deployment, two surfaces: a ``bedrock/{modelId}`` entry of ``model_list`` answers on
``/v1/chat/completions`` (the Converse chat provider) and on ``/bedrock/model/{name}/converse``
(the pass-through), each finding it through the routes the core parsed; with one of the two
plugins missing, the other surface names the distribution to install."""

from __future__ import annotations

import httpx
import openai
import pytest

from .common import ALIAS, ALIAS_MODEL_ID, MASTER_KEY, sigv4_client

MESSAGES = [{"role": "user", "content": [{"text": "hi"}]}]


def _chat(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=MASTER_KEY, max_retries=0)


def test_the_same_deployment_answers_on_both_surfaces(
    gateway_factory, make_config, bedrock_simulator, call_events
):
    gw = gateway_factory(make_config())
    answer = _chat(gw.url).chat.completions.create(
        model=ALIAS, messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.choices[0].message.content
    chat = bedrock_simulator.last("Converse")
    assert chat.params["modelId"] == ALIAS_MODEL_ID

    native = sigv4_client("bedrock-runtime", gw.url).converse(modelId=ALIAS, messages=MESSAGES)
    assert native["output"]["message"]["content"][0]["text"]
    relayed = bedrock_simulator.last("Converse")
    assert relayed.params["modelId"] == ALIAS_MODEL_ID and relayed is not chat
    # the same deployment's credentials and region on both
    assert (chat.access_key, chat.region) == (relayed.access_key, relayed.region)
    # the pass-through's event comes once its last byte reached the client: it may lag the call
    events = call_events.wait_count(2)
    assert {e.surface for e in events} == {"chat", "passthrough"}
    assert {e.deployment for e in events} == {events[0].deployment}
    assert {e.provider for e in events} == {"bedrock_converse", "bedrock_passthrough"}


def test_without_the_chat_provider_chat_names_the_distribution(
    gateway_factory, make_config, bedrock_simulator, monkeypatch
):
    monkeypatch.setenv("OUTCROP_DISABLE_PLUGINS", "bedrock_converse")
    gw = gateway_factory(make_config())
    with pytest.raises(openai.BadRequestError) as caught:
        _chat(gw.url).chat.completions.create(
            model=ALIAS, messages=[{"role": "user", "content": "hi"}]
        )
    assert "pip install outcrop-bedrock-converse" in caught.value.message
    # the native surface still serves it
    sigv4_client("bedrock-runtime", gw.url).converse(modelId=ALIAS, messages=MESSAGES)
    assert bedrock_simulator.last("Converse").params["modelId"] == ALIAS_MODEL_ID


def test_without_the_pass_through_the_native_surface_names_the_distribution(
    gateway_factory, simulator_params, bedrock_simulator, monkeypatch
):
    monkeypatch.setenv("OUTCROP_DISABLE_PLUGINS", "bedrock_passthrough")
    config = {
        "model_list": [
            {"model_name": ALIAS, "litellm_params": simulator_params(f"bedrock/{ALIAS_MODEL_ID}")}
        ],
        "general_settings": {"master_key": MASTER_KEY},
    }
    gw = gateway_factory(config)
    r = httpx.post(
        f"{gw.url}/bedrock/model/{ALIAS}/converse",
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        json={"messages": MESSAGES},
    )
    assert r.status_code == 404
    assert "pip install outcrop-bedrock-passthrough" in r.json()["message"]
    assert r.headers["x-amzn-errortype"] == "UnknownOperationException"
    assert bedrock_simulator.requests == []
    # the chat surface still serves it
    _chat(gw.url).chat.completions.create(model=ALIAS, messages=[{"role": "user", "content": "hi"}])
    assert bedrock_simulator.last("Converse").params["modelId"] == ALIAS_MODEL_ID
