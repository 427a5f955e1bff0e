"""Caller identity and admission: a plugin names callers the master key does not
(``outcrop_authenticate``), refuses calls before anything goes upstream (``outcrop_admit``),
narrows ``/v1/models`` (``outcrop_allowed_models``), sees who called in ``CallEvent.principal``,
flushes at shutdown (``outcrop_shutdown``) and adds CLI commands (``outcrop_register_commands``)."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest

import outcrop
from outcrop import Admission, OutcropError, Principal
from outcrop.cli import main
from outcrop.testing import CallEvents
from outcrop.testing.replies import ConverseReply

from .converse_plugin import ConversePlugin

MODEL = "testprov/amazon.nova-lite-v1:0"
MASTER = "sk-identity-master"
TEAM_KEY = "sk-team-alpha-0001"
BROKE_KEY = "sk-team-broke-0002"
BLOCKED_KEY = "sk-blocked-0003"


class Identity:
    """Knows three keys; admits `nova` only, refuses the broke key with an async 429."""

    def __init__(self) -> None:
        self.admissions: list[Admission] = []
        self.events = CallEvents()
        self.shutdowns = 0

    @outcrop.hookimpl
    def outcrop_authenticate(self, token: str) -> Principal | None:
        if token == BLOCKED_KEY:
            raise OutcropError("this key is blocked", 403, code="key_blocked")
        if token in (TEAM_KEY, BROKE_KEY):
            return Principal(
                "virtual_key", id=f"id-{token[-4:]}", alias=token[8:13], team_id="alpha"
            )
        return None

    @outcrop.hookimpl
    def outcrop_admit(self, admission: Admission):
        self.admissions.append(admission)
        if admission.principal.kind != "virtual_key":
            return None
        if admission.model != "nova":
            raise OutcropError(f"key may not use {admission.model}", 403, code="model_not_allowed")
        if admission.principal.id == "id-0002":

            async def refuse() -> None:
                await asyncio.sleep(0)
                raise OutcropError("budget exceeded", 429, code="budget_exceeded")

            return refuse()
        return None

    @outcrop.hookimpl
    def outcrop_allowed_models(self, principal: Principal, models: list[str]) -> list[str] | None:
        return [m for m in models if m == "nova"] if principal.kind == "virtual_key" else None

    @outcrop.hookimpl
    def outcrop_after_call(self, event: outcrop.CallEvent) -> None:
        self.events.outcrop_after_call(event)

    @outcrop.hookimpl
    def outcrop_shutdown(self, gateway: outcrop.Gateway):
        async def flush() -> None:
            self.shutdowns += 1

        return flush()


@pytest.fixture
def identity(outcrop_plugin):
    outcrop_plugin(ConversePlugin(), "testprov")
    plugin = Identity()
    outcrop_plugin(plugin, "identity")
    return plugin


@pytest.fixture
def gateway(identity, gateway_factory, simulator_params):
    return gateway_factory(
        {
            "model_list": [
                {"model_name": "nova", "litellm_params": simulator_params(MODEL)},
                {"model_name": "other", "litellm_params": simulator_params(MODEL)},
            ],
            "general_settings": {"master_key": MASTER},
        }
    )


def _client(gateway, key):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)


def test_plugin_key_is_a_principal_on_the_call_event(identity, gateway, bedrock_simulator):
    bedrock_simulator.reply(ConverseReply("hello", usage=(3, 2)))
    answer = _client(gateway, TEAM_KEY).chat.completions.create(
        model="nova", messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.choices[0].message.content == "hello"
    (admission,) = identity.admissions
    assert (admission.surface, admission.path, admission.model) == (
        "chat",
        "/v1/chat/completions",
        "nova",
    )
    assert admission.deployment == "nova#0" and admission.principal.team_id == "alpha"
    event = identity.events.one()
    assert event.principal == admission.principal and event.status == 200
    assert event.client_ip == "127.0.0.1" and event.user_agent.startswith("OpenAI/Python")


def test_master_key_is_the_admin_principal(identity, gateway, bedrock_simulator):
    bedrock_simulator.reply(ConverseReply("ok"))
    _client(gateway, MASTER).chat.completions.create(
        model="other", messages=[{"role": "user", "content": "hi"}]
    )
    principal = identity.admissions[-1].principal
    assert (principal.kind, principal.admin) == ("master_key", True)


def test_refused_admission_never_reaches_upstream(identity, gateway, bedrock_simulator):
    with pytest.raises(openai.PermissionDeniedError) as caught:
        _client(gateway, TEAM_KEY).chat.completions.create(
            model="other", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.body["code"] == "model_not_allowed"
    with pytest.raises(openai.RateLimitError) as caught:  # refused by an awaitable
        _client(gateway, BROKE_KEY).chat.completions.create(
            model="nova", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    assert caught.value.body["code"] == "budget_exceeded"
    assert bedrock_simulator.requests == []
    events = identity.events.wait_count(2)
    assert [e.status for e in events] == [403, 429]
    assert events[1].principal.id == "id-0002"


def test_unknown_and_blocked_keys(identity, gateway):
    r = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={"x-api-key": "sk-nobody"},
        json={"model": "nova", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    r = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {BLOCKED_KEY}"},
        json={"model": "nova", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "key_blocked"
    assert identity.admissions == []


def test_models_lists_only_allowed_names(identity, gateway):
    assert [m.id for m in _client(gateway, TEAM_KEY).models.list()] == ["nova"]
    assert [m.id for m in _client(gateway, MASTER).models.list()] == ["nova", "other"]


def test_a_key_plugin_closes_a_gateway_without_master_key_and_shutdown_hook(
    identity, simulator_params
):
    async def run() -> tuple[Principal, int]:
        gw = outcrop.Gateway(outcrop.parse_config({}))
        await gw.start()
        assert gw.requires_auth and gw.master_key is None
        principal = gw.authenticate({"authorization": f"Bearer {TEAM_KEY}"})
        with pytest.raises(outcrop.OutcropError) as caught:  # a plugin's keys are credentials
            gw.authenticate({})
        assert caught.value.status == 401
        await gw.stop()
        return principal, identity.shutdowns

    principal, shutdowns = asyncio.run(run())
    assert principal.kind == "virtual_key" and not principal.admin
    assert shutdowns == 1


def test_register_commands_hook(outcrop_plugin, capsys):
    class Hello:
        @outcrop.hookimpl
        def outcrop_register_commands(self, subparsers):
            p = subparsers.add_parser("hello", help="say hello")
            p.add_argument("name")
            p.set_defaults(func=lambda args: print(f"hello {args.name}") or 3)

    outcrop_plugin(Hello(), "hello")
    assert main(["hello", "world"]) == 3
    assert capsys.readouterr().out == "hello world\n"
