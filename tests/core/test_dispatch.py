"""Provider hooks go only to the plugin that claimed the model: the longest registered prefix
routes a model string, and no provider needs to check that a call is its own."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import openai
import pytest

import outcrop
from outcrop import ConfigError, Gateway, ModelPrefix, ModelRoute, parse_config

from .converse_plugin import ConversePlugin

USER = [{"role": "user", "content": "hi"}]


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0)


def test_the_longest_registered_prefix_wins(outcrop_plugin, gateway_factory, simulator_params):
    # neither plugin checks whose call it is: each sees only the calls it claimed
    short, long = ConversePlugin(prefix="ovl/"), ConversePlugin(prefix="ovl/long/")
    outcrop_plugin(long, "ovl-long")
    outcrop_plugin(short, "ovl-short")
    gw = gateway_factory(
        {
            "model_list": [
                {
                    "model_name": "s",
                    "litellm_params": simulator_params("ovl/amazon.nova-lite-v1:0"),
                },
                {
                    "model_name": "l",
                    "litellm_params": simulator_params("ovl/long/amazon.nova-lite-v1:0"),
                },
            ]
        }
    )
    client = _client(gw.url)
    client.chat.completions.create(model="l", messages=USER)
    assert long.calls.count("translate_request") == 1 and "translate_request" not in short.calls
    client.chat.completions.create(model="s", messages=USER)
    client.chat.completions.create(model="s", messages=USER, stream=True)
    assert short.calls.count("translate_request") == 2
    assert short.calls.count("translate_response") == 2
    assert long.calls.count("translate_request") == 1
    # start-up parsed each deployment once, by its owner only
    assert short.calls.count("parse_route") == 1 and long.calls.count("parse_route") == 1
    assert {e.model for e in long.events.wait_count(3)} == {
        "l",
        "s",
    }  # observers still see every call


def test_a_raw_model_string_goes_to_its_owner(outcrop_plugin):
    short, long = ConversePlugin(prefix="ovl/"), ConversePlugin(prefix="ovl/long/")
    outcrop_plugin(short, "ovl-short")
    outcrop_plugin(long, "ovl-long")
    gateway = Gateway(parse_config({}))
    assert gateway.parse_route("ovl/long/x").plugin == "ovl-long"
    assert gateway.parse_route("ovl/longer/x").plugin == "ovl-short"
    assert gateway.parse_route("ovl/x").plugin == "ovl-short"


def test_two_providers_of_one_prefix_are_a_configuration_error(outcrop_plugin):
    outcrop_plugin(ConversePlugin(prefix="same/"), "first")
    outcrop_plugin(ConversePlugin(prefix="same/"), "second")
    with pytest.raises(ConfigError) as caught:
        Gateway(parse_config({}))
    (error,) = caught.value.errors
    assert "'same/'" in error and "'first'" in error and "'second'" in error


class NativeOnly:
    """Serves ``same/`` models on its own routes only (no translate hooks)."""

    def __init__(self) -> None:
        self.parsed: list[str] = []

    @outcrop.hookimpl
    def outcrop_register_models(self, register):
        register(ModelPrefix("same/", "native only"))

    @outcrop.hookimpl
    def outcrop_parse_route(self, model, params):
        self.parsed.append(model)
        return ModelRoute("native", "bedrock-runtime", "bedrock", chat=False, resource=model)


@pytest.mark.parametrize("order", ["provider-first", "native-first"])
def test_a_provider_owns_a_prefix_it_shares_with_a_native_surface(outcrop_plugin, order):
    native, provider = NativeOnly(), ConversePlugin(prefix="same/")
    plugins = [(provider, "provider"), (native, "native")]
    for plugin, name in plugins if order == "provider-first" else plugins[::-1]:
        outcrop_plugin(plugin, name)
    gateway = Gateway(parse_config({}))
    route = gateway.parse_route("same/amazon.nova-lite-v1:0")
    assert route.plugin == "provider" and native.parsed == []


def test_native_surfaces_find_deployments_by_resource(outcrop_plugin, simulator_params):
    outcrop_plugin(NativeOnly(), "native")
    gateway = Gateway(
        parse_config(
            {"model_list": [{"model_name": "n", "litellm_params": simulator_params("same/abc")}]}
        )
    )
    (deployment,) = gateway.deployments("n")
    assert gateway.deployments() == [deployment]
    assert gateway.route(deployment).resource == "same/abc"
    assert gateway.serving("bedrock-runtime", "same/abc") == [deployment]
    assert gateway.serving("bedrock-agentcore", "same/abc") == []
    assert gateway.pick("n") is deployment


def test_a_prefix_without_a_route_names_the_plugin(outcrop_plugin):
    class Declines:
        @outcrop.hookimpl
        def outcrop_register_models(self, register):
            register(ModelPrefix("nope/", "declines everything"))

        @outcrop.hookimpl
        def outcrop_parse_route(self, model, params):
            return None

    outcrop_plugin(Declines(), "declines")
    with pytest.raises(outcrop.OutcropError) as caught:
        Gateway(parse_config({})).parse_route("nope/x")
    assert "registered by plugin 'declines'" in caught.value.message


def test_unclaimed_model_lists_the_registered_prefixes(outcrop_plugin, gateway_factory):
    outcrop_plugin(ConversePlugin(prefix="listed/"), "lister")
    gw = gateway_factory({})
    with pytest.raises(openai.BadRequestError) as caught:
        _client(gw.url).chat.completions.create(model="elsewhere/x", messages=USER)
    assert "no installed plugin claims model 'elsewhere/x'" in caught.value.message
    assert "listed/... (tests)" in caught.value.message


def test_models_lists_the_registered_prefixes_when_raw_models_are_served(
    outcrop_plugin, gateway_factory, simulator_params
):
    outcrop_plugin(ConversePlugin(prefix="listed/"), "lister")
    served = gateway_factory({})  # no model_list: raw model strings are served
    ids = {m["id"]: m["owned_by"] for m in httpx.get(served.url + "/v1/models").json()["data"]}
    assert ids["listed/*"] == "lister"
    only_names = gateway_factory(
        {"model_list": [{"model_name": "m", "litellm_params": simulator_params("listed/x")}]}
    )
    data = httpx.get(only_names.url + "/v1/models").json()["data"]
    assert [(m["id"], m["owned_by"]) for m in data] == [("m", "testprov")]


def test_outcrop_plugins_shows_the_registered_prefixes():
    out = subprocess.run(
        [sys.executable, "-m", "outcrop", "plugins", "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    infos = {i["name"]: i for i in json.loads(out)}
    agent = [m["prefix"] for m in infos["bedrock_agent"]["models"]]
    assert agent == ["bedrock/agent/"]
    text = subprocess.run(
        [sys.executable, "-m", "outcrop", "plugins"], capture_output=True, text=True, check=True
    ).stdout
    assert "serves bedrock/agent/..." in text
