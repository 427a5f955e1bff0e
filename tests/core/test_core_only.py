"""With nothing but the core: an empty model list and a clear "no plugin claims" error."""

import httpx
import openai
import pytest


@pytest.fixture
def core_only(monkeypatch, gateway_factory):
    monkeypatch.setenv("OUTCROP_PLUGINS", "")  # allow-list with no entry point: only built-ins
    return gateway_factory({})


def test_models_is_empty(core_only):
    r = httpx.get(core_only.url + "/v1/models")
    assert r.status_code == 200 and r.json() == {"data": [], "object": "list"}
    assert httpx.get(core_only.url + "/models").json()["data"] == []


def test_chat_names_the_missing_plugin(core_only):
    client = openai.OpenAI(base_url=core_only.url, api_key="anything", max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="bedrock/agent/L1RT58GYRW/MFPSBCXYTW",
            messages=[{"role": "user", "content": "hi"}],
        )
    msg = info.value.message
    assert "no installed plugin claims model 'bedrock/agent/L1RT58GYRW/MFPSBCXYTW'" in msg
    assert "no provider plugin is installed (docs/providers/ lists them)" in msg
    assert info.value.body["param"] == "model" and info.value.body["code"] == "model_not_found"


def test_health_routes(core_only):
    r = httpx.get(core_only.url + "/health/liveliness")
    assert r.status_code == 200 and r.json() == "I'm alive!"
    r = httpx.get(core_only.url + "/health/readiness")
    assert r.status_code == 200 and r.json()["status"] == "healthy"
    assert r.headers["x-request-id"] and float(r.headers["x-outcrop-overhead-ms"]) >= 0


def test_unclaimed_model_in_config_is_a_startup_error(monkeypatch):
    from outcrop.app import create_app
    from outcrop.errors import ConfigError

    monkeypatch.setenv("OUTCROP_PLUGINS", "")
    with pytest.raises(ConfigError) as info:
        create_app(
            {
                "model_list": [
                    {
                        "model_name": "x",
                        "litellm_params": {
                            "model": "bedrock/agentcore/arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/r"
                        },
                    }
                ]
            }
        )
    err = info.value.errors[0]
    assert err.startswith("model_list[0].litellm_params.model: no installed plugin claims model")
    assert "no provider plugin is installed" in err
