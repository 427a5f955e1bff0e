"""The hooks observability plugins build on: ``outcrop_before_upstream`` (headers added before
signing reach AWS, tied to the call's id and the client's headers), ``outcrop_register_callbacks``
(LiteLLM's ``callbacks`` honoured or refused with what to install), ``outcrop_report_gauges``, and
the ``CallEvent`` fields they read (``first_token_s``, ``error_type``/``error_code``)."""

from __future__ import annotations

import httpx
import pytest

import outcrop
from outcrop.config import parse_config
from outcrop.errors import ConfigError
from outcrop.plugins import make_plugin_manager
from outcrop.testing.replies import ConverseReply, HttpError

from .converse_plugin import ConversePlugin

MODEL = "testprov/amazon.nova-lite-v1:0"
HI = [{"role": "user", "content": "hi"}]
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class Observer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[bytes, bytes]]] = []

    @outcrop.hookimpl
    def outcrop_before_upstream(self, request, request_id, request_headers) -> None:
        self.sent.append((request_id, dict(request_headers)))
        request.headers["traceparent"] = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"


@pytest.fixture
def observer(outcrop_plugin, call_events):
    outcrop_plugin(ConversePlugin(), "testprov")
    obs = Observer()
    outcrop_plugin(obs, "observer")
    return obs


@pytest.fixture
def gateway(observer, simulator_params, gateway_factory):
    return gateway_factory(
        {"model_list": [{"model_name": "m", "litellm_params": simulator_params(MODEL)}]}
    )


@pytest.mark.parametrize("stream", [False, True])
def test_before_upstream_headers_are_signed_and_sent(
    gateway, observer, call_events, bedrock_simulator, stream
):
    bedrock_simulator.reply(ConverseReply("fine", usage=(2, 1)))
    r = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "m", "messages": HI, "stream": stream},
        headers={"traceparent": TRACEPARENT},
    )
    assert r.status_code == 200
    seen = bedrock_simulator.last()
    assert seen.auth == "sigv4" and seen.error is None  # the added header did not break SigV4
    assert seen.headers["traceparent"] == "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    event = call_events.one()
    [(request_id, client_headers)] = observer.sent
    assert request_id == event.request_id
    assert client_headers[b"traceparent"] == TRACEPARENT.encode()
    assert dict(event.request_headers)[b"traceparent"] == TRACEPARENT.encode()
    assert event.finish_reason == "stop"
    assert event.output_text is None  # kept only while gateway.capture_output is on
    if stream:
        assert 0 < event.first_token_s <= event.latency_s
    else:
        assert event.first_token_s is None


def test_the_event_names_the_error_type_and_code(gateway, observer, call_events, bedrock_simulator):
    bedrock_simulator.reply(HttpError(429, "ThrottlingException", "slow down"))
    r = httpx.post(gateway.url + "/v1/chat/completions", json={"model": "m", "messages": HI})
    assert r.status_code == 429
    event = call_events.one()
    assert event.error_type == "ThrottlingException" and event.status == 429
    assert observer.sent  # the hook saw the request that failed too


def test_an_observer_that_raises_does_not_stop_the_request(
    outcrop_plugin, simulator_params, gateway_factory, bedrock_simulator
):
    class Broken:
        @outcrop.hookimpl
        def outcrop_before_upstream(self, request, request_id, request_headers) -> None:
            raise RuntimeError("boom")

    outcrop_plugin(ConversePlugin(), "testprov")
    outcrop_plugin(Broken(), "broken")
    gw = gateway_factory(
        {"model_list": [{"model_name": "m", "litellm_params": simulator_params(MODEL)}]}
    )
    bedrock_simulator.reply(ConverseReply("fine"))
    r = httpx.post(gw.url + "/v1/chat/completions", json={"model": "m", "messages": HI})
    assert r.status_code == 200


def test_without_an_implementation_the_hook_is_not_asked(outcrop_plugin, simulator_params):
    outcrop_plugin(ConversePlugin(), "testprov")
    gw = outcrop.Gateway(
        parse_config(
            {"model_list": [{"model_name": "m", "litellm_params": simulator_params(MODEL)}]}
        ),
        pm=make_plugin_manager(load_entry_points=False),
    )
    assert gw._before_upstream is False


# -- callbacks ---------------------------------------------------------------------------------


class Callbacks:
    @outcrop.hookimpl
    def outcrop_register_callbacks(self, register) -> None:
        register("mine")

    @outcrop.hookimpl
    def outcrop_report_gauges(self, report) -> None:
        report("queue_depth", "items waiting", 3)


def test_callbacks_claimed_by_a_plugin_turn_it_on(outcrop_plugin):
    outcrop_plugin(Callbacks(), "callbacks")
    config = {"litellm_settings": {"callbacks": ["mine"], "success_callback": ["mine"]}}
    gw = outcrop.Gateway(parse_config(config), pm=make_plugin_manager(load_entry_points=False))
    assert gw.callbacks == {"mine"}
    assert gw.gauges() == {"queue_depth": ("items waiting", 3.0)}
    assert outcrop.Gateway(parse_config({})).callbacks == frozenset()


@pytest.mark.parametrize(
    "key, name, hint",
    [
        ("callbacks", "prometheus", "`pip install outcrop-prometheus` implements it"),
        ("success_callback", "otel", "`pip install outcrop-otel` implements it"),
        ("success_callback", "langfuse", "`pip install outcrop-otel` implements it"),
        ("failure_callback", "mien", "installed plugins implement: mine (did you mean `mine`?)"),
    ],
)
def test_a_callback_no_plugin_implements_is_an_error(outcrop_plugin, key, name, hint):
    outcrop_plugin(Callbacks(), "callbacks")
    config = parse_config({"litellm_settings": {key: [name]}})
    with pytest.raises(ConfigError) as info:
        outcrop.Gateway(config, pm=make_plugin_manager(load_entry_points=False))
    assert info.value.errors == [
        f"litellm_settings.{key}: no installed plugin implements callback {name!r}; {hint}"
    ]
