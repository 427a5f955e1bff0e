"""Plugin manager: defaults, entry points, allow/block lists, check_pending, `outcrop plugins`."""

import pytest
from pluggy import PluginValidationError
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import outcrop
from outcrop.cli import main
from outcrop.errors import ConfigError, OutcropError
from outcrop.plugins import make_plugin_manager, plugin_infos


def names(pm):
    return {n for n, p in pm.list_name_plugin() if p is not None}


def test_defaults_are_registered_through_the_manager():
    pm = make_plugin_manager()
    assert {"outcrop.default_signer", "outcrop.default_logger", "outcrop.default_pricing"} <= names(
        pm
    )


def test_block_list_removes_defaults(monkeypatch):
    monkeypatch.setenv("OUTCROP_DISABLE_PLUGINS", "outcrop.default_logger")
    assert "outcrop.default_logger" not in names(make_plugin_manager())


def test_allow_list_filters_entry_points(monkeypatch):
    monkeypatch.setenv("OUTCROP_PLUGINS", "")
    pm = make_plugin_manager()
    assert all(n.startswith("outcrop.default") for n in names(pm))


def test_allow_list_loads_the_named_entry_point_with_its_distribution(monkeypatch):
    monkeypatch.setenv("OUTCROP_PLUGINS", "bedrock_agent")
    infos = {i.name: i for i in plugin_infos(make_plugin_manager())}
    assert infos["bedrock_agent"].distribution == "outcrop-bedrock-agent"
    assert infos["bedrock_agent"].version
    assert "bedrock_passthrough" not in infos and "bedrock_agentcore" not in infos


def test_block_list_covers_entry_points_and_in_process_plugins(monkeypatch, outcrop_plugin):
    class Extra:
        @outcrop.hookimpl
        def outcrop_register_models(self, register):
            register(outcrop.ModelPrefix("extra/", "blocked test"))

    outcrop_plugin(Extra(), "extra")
    monkeypatch.setenv("OUTCROP_DISABLE_PLUGINS", "bedrock_agent, extra")
    pm = make_plugin_manager()
    assert pm.is_blocked("bedrock_agent") and pm.is_blocked("extra")
    assert {"bedrock_agent", "extra"}.isdisjoint(names(pm))
    assert "bedrock_passthrough" in names(pm)


def test_misspelt_hook_fails_loudly(outcrop_plugin):
    class Typo:
        @outcrop.hookimpl
        def outcrop_parse_rout(self, model, params):  # missing "e"
            return None

    outcrop_plugin(Typo(), "typo")
    with pytest.raises(PluginValidationError, match="outcrop_parse_rout"):
        make_plugin_manager()


def test_plugins_command_lists_hooks(outcrop_plugin, capsys):
    class Lister:
        @outcrop.hookimpl
        def outcrop_register_models(self, register):
            register(outcrop.ModelPrefix("lister/", "listing test"))

    outcrop_plugin(Lister(), "lister")
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "lister" in out and "outcrop_register_models" in out
    infos = {i.name: i for i in plugin_infos(make_plugin_manager())}
    assert infos["lister"].hooks == ["outcrop_register_models"]


def test_register_routes_and_startup_hooks(outcrop_plugin, gateway_factory):
    import httpx

    seen = {}

    class Extra:
        @outcrop.hookimpl
        def outcrop_register_routes(self, register, gateway):
            async def hello(request):
                gateway.authenticate(request.headers)
                return PlainTextResponse("hello from a plugin")

            register(Route("/extra/hello", hello))

        @outcrop.hookimpl
        def outcrop_register_config_sections(self, register):
            register(outcrop.ConfigSection("my_plugin"))

        @outcrop.hookimpl
        def outcrop_startup(self, gateway):
            seen["sections"] = gateway.config.sections

    outcrop_plugin(Extra(), "extra")
    gw = gateway_factory({"my_plugin": {"flag": True}})
    r = httpx.get(gw.url + "/extra/hello")
    assert r.status_code == 200 and r.text == "hello from a plugin"
    assert r.headers["x-request-id"] and "x-outcrop-overhead-ms" in r.headers
    assert seen["sections"] == {"my_plugin": {"flag": True}}


def test_check_config_hook_errors_refuse_the_config(outcrop_plugin, tmp_path, capsys):
    class Checker:
        @outcrop.hookimpl
        def outcrop_register_config_sections(self, register):
            register(outcrop.ConfigSection("checker"))

        @outcrop.hookimpl
        def outcrop_check_config(self, config):
            level = config.sections.get("checker", {}).get("level")
            return (
                None
                if isinstance(level, int)
                else [f"checker.level: expected an int, got {level!r}"]
            )

    outcrop_plugin(Checker(), "checker")
    assert outcrop.Gateway(outcrop.parse_config({"checker": {"level": 3}}))
    with pytest.raises(ConfigError) as info:
        outcrop.Gateway(outcrop.parse_config({"checker": {"level": "high"}}))
    assert info.value.errors == ["checker.level: expected an int, got 'high'"]
    cfg = tmp_path / "c.yaml"
    cfg.write_text("checker:\n  level: high\n")
    assert main(["check-config", str(cfg)]) == 2
    assert "checker.level: expected an int, got 'high'" in capsys.readouterr().err


def test_config_sections_nobody_claims_are_errors_until_a_plugin_claims_them(outcrop_plugin):
    config = {"my_section": {"a": 1}, "litellm_settings": {"service_callback": ["mine"]}}
    with pytest.raises(ConfigError) as info:
        outcrop.Gateway(outcrop.parse_config(config))
    assert info.value.errors[0].startswith("my_section: unknown section; ")
    assert info.value.errors[1].startswith(
        "litellm_settings.service_callback: a LiteLLM setting Outcrop does not implement"
    )

    class Claimer:
        @outcrop.hookimpl
        def outcrop_register_config_sections(self, register):
            register(outcrop.ConfigSection("my_section", "a test section"))
            register(outcrop.ConfigSection("litellm_settings.service_callback"))

    outcrop_plugin(Claimer(), "claimer")
    gw = outcrop.Gateway(outcrop.parse_config(config))
    assert gw.config.sections == {
        "my_section": {"a": 1},
        "litellm_settings.service_callback": ["mine"],
    }
    assert not gw.requires_auth  # claiming a section configures no credential by itself
    with pytest.raises(ConfigError) as info:
        outcrop.Gateway(outcrop.parse_config({"my_sectoin": {}}))
    [error] = info.value.errors
    assert error.startswith(
        "my_sectoin: unknown section (did you mean `my_section`?); sections of installed plugins: "
    )
    assert "my_section" in error.rsplit(": ", 1)[1]


def test_a_section_that_configures_client_credentials_closes_the_gateway(outcrop_plugin):
    class Keys:
        @outcrop.hookimpl
        def outcrop_register_config_sections(self, register):
            register(
                outcrop.ConfigSection(
                    "door", client_credentials=lambda raw: bool(raw and raw.get("keys"))
                )
            )

    outcrop_plugin(Keys(), "door")
    assert not outcrop.Gateway(outcrop.parse_config({"door": {"keys": []}})).requires_auth
    gw = outcrop.Gateway(outcrop.parse_config({"door": {"keys": ["k1"]}}))
    assert gw.requires_auth and gw.master_key is None
    with pytest.raises(OutcropError) as info:  # no master key: no bearer token can match
        gw.authenticate({"authorization": "Bearer anything"})
    assert info.value.status == 401


def test_startup_hook_can_refuse_bad_plugin_config(outcrop_plugin):
    import asyncio

    class Strict:
        @outcrop.hookimpl
        def outcrop_startup(self, gateway):
            raise ConfigError(["strict.level: expected an int"])

    outcrop_plugin(Strict(), "strict")
    gw = outcrop.Gateway(outcrop.parse_config({}))
    with pytest.raises(ConfigError, match=r"strict\.level"):
        asyncio.run(gw.start())


def test_map_error_hook_overrides_default_mapping(
    outcrop_plugin, gateway_factory, simulator_params, bedrock_simulator
):
    import openai

    from outcrop.testing.replies import HttpError

    from .converse_plugin import ConversePlugin

    class Mapper(ConversePlugin):
        @outcrop.hookimpl
        def outcrop_map_error(self, call, status, body, headers):
            if headers.get("x-amzn-errortype", "").startswith("ModelNotReadyException"):
                return OutcropError("model is warming up, retry shortly", 503, code="warming")
            return None

    class Bystander:  # maps every error, but never sees another plugin's calls
        @outcrop.hookimpl
        def outcrop_map_error(self, call, status, body, headers):
            raise AssertionError("called for a model it did not claim")

    outcrop_plugin(Mapper(), "testprov")
    outcrop_plugin(Bystander(), "bystander")
    gw = gateway_factory(
        {"model_list": [{"model_name": "m", "litellm_params": simulator_params("testprov/x")}]}
    )
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="none", max_retries=0)
    bedrock_simulator.reply(HttpError(429, "ModelNotReadyException", "not ready"))
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 503 and "warming up" in info.value.message
