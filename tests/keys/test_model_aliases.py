"""A key's ``aliases`` and its team's ``model_aliases`` (LiteLLM's): the name the caller sends
is served as its target on every surface (OpenAI chat and embeddings, /v1/messages, the
pass-through), through the real clients against the signature-verifying simulator, on both
engines. And the LiteLLM fields Outcrop does not implement: refused when they would limit,
spend or send, else accepted and named."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.clients import sigv4_client

from .conftest import MASTER, Admin, answer_claude_and_converse, wait_for

OPUS = "us.anthropic.claude-opus-4-5-20251101-v1:0"
SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
TITAN = "amazon.titan-embed-text-v2:0"
HI = [{"role": "user", "content": "Hi"}]
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")


@pytest.fixture
def gw(
    gateway_factory: Callable[..., Any],
    simulator_params: Callable[..., dict[str, Any]],
    bedrock_simulator: Any,
    database_url: str,
) -> Any:
    answer_claude_and_converse(bedrock_simulator)
    params = simulator_params(f"bedrock/{OPUS}")
    return gateway_factory(
        {
            "model_list": [
                {"model_name": "opus", "litellm_params": params},
                {"model_name": "sonnet", "litellm_params": simulator_params(f"bedrock/{SONNET}")},
                {"model_name": "titan", "litellm_params": simulator_params(f"bedrock/{TITAN}")},
            ],
            "general_settings": {
                "master_key": MASTER,
                "database_url": database_url,
                "allow_raw_models": True,
            },
            "bedrock_passthrough": {k: v for k, v in params.items() if k != "model"},
        }
    )


class Caller:
    """One key on every surface, each through its own SDK; each call returns the Bedrock model
    id the simulator was asked for."""

    def __init__(self, gw: Any, sim: Any, created: dict[str, Any]) -> None:
        self.sim = sim
        self.openai = openai.OpenAI(base_url=gw.url + "/v1", api_key=created["key"], max_retries=0)
        self.anthropic = anthropic.Anthropic(base_url=gw.url, api_key=created["key"], max_retries=0)
        self.boto3 = sigv4_client(
            "bedrock-runtime",
            gw.url,
            created["aws_access_key_id"],
            created["aws_secret_access_key"],
        )

    def _served(self) -> str:
        return str(self.sim.last().params["modelId"])

    def chat(self, model: str) -> str:
        self.openai.chat.completions.create(model=model, messages=HI)  # type: ignore[arg-type]
        return self._served()

    def embeddings(self, model: str) -> str:
        self.openai.embeddings.create(model=model, input="Hi")
        return self._served()

    def messages(self, model: str) -> str:
        self.anthropic.messages.create(model=model, max_tokens=8, messages=HI)  # type: ignore[arg-type]
        return self._served()

    def passthrough(self, model: str) -> str:
        self.boto3.converse(modelId=model, messages=[{"role": "user", "content": [{"text": "Hi"}]}])
        return self._served()

    def every_surface(self, model: str) -> set[str]:
        return {self.chat(model), self.messages(model), self.passthrough(model)}


def caller(gw: Any, sim: Any, **fields: Any) -> Caller:
    return Caller(gw, sim, Admin(gw.url).generate(aws_sigv4=True, **fields))


def test_a_key_alias_is_served_as_its_target_on_every_surface(
    gw: Any, bedrock_simulator: Any
) -> None:
    aliases = {"my-gpt": "sonnet", "my-embed": "titan", "raw": OPUS}
    created = Admin(gw.url).generate(aws_sigv4=True, aliases=aliases)
    key = Caller(gw, bedrock_simulator, created)
    assert key.every_surface("my-gpt") == {SONNET}
    # an alias of a raw Bedrock id, where the surface takes one
    assert {key.messages("raw"), key.passthrough("raw")} == {OPUS}
    assert key.embeddings("my-embed") == TITAN
    assert key.every_surface("opus") == {OPUS}  # names it does not map are unchanged

    info = Admin(gw.url).get("/key/info", key=created["key"])["info"]
    assert info["aliases"] == aliases

    # another key does not see it: my-gpt is no model of the gateway
    other = caller(gw, bedrock_simulator)
    with pytest.raises(openai.BadRequestError):
        other.chat("my-gpt")
    # an alias the key drops is gone at once
    Admin(gw.url).post("/key/update", {"key": created["key"], "aliases": {}})
    assert wait_for(lambda: _refused(key, "my-gpt"))
    assert Admin(gw.url).get("/key/info", key=created["key"])["info"]["aliases"] == {}


def _refused(key: Caller, model: str) -> bool:
    try:
        key.chat(model)
    except openai.BadRequestError:
        return True
    return False


def test_a_key_models_list_allows_the_alias_or_its_target(gw: Any, bedrock_simulator: Any) -> None:
    """The one access rule (outcrop.access): the name sent or the one it is served as."""
    by_target = caller(gw, bedrock_simulator, models=["sonnet"], aliases={"my-gpt": "sonnet"})
    assert by_target.every_surface("my-gpt") == {SONNET}
    by_alias = caller(gw, bedrock_simulator, models=["my-gpt"], aliases={"my-gpt": "sonnet"})
    assert by_alias.every_surface("my-gpt") == {SONNET}
    with pytest.raises(openai.PermissionDeniedError):
        by_alias.chat("opus")  # an alias is no way around the list
    neither = caller(gw, bedrock_simulator, models=["opus"], aliases={"my-gpt": "sonnet"})
    with pytest.raises(openai.PermissionDeniedError):
        neither.chat("my-gpt")
    with pytest.raises(anthropic.PermissionDeniedError):
        neither.messages("my-gpt")


def test_team_aliases_apply_first_then_the_key_s(gw: Any, bedrock_simulator: Any) -> None:
    """LiteLLM applies the team's ``model_aliases``, then the key's ``aliases`` to the result:
    a name both map is served as the team's target, a key may map the team's target on."""
    admin = Admin(gw.url)
    team = admin.post(
        "/team/new", {"team_alias": "t", "model_aliases": {"shared": "opus", "fast": "team-x"}}
    )
    assert team["model_aliases"] == {"shared": "opus", "fast": "team-x"}
    team_id = team["team_id"]
    info = admin.get("/team/info", team_id=team_id)["team_info"]
    assert info["model_aliases"] == {"shared": "opus", "fast": "team-x"}

    member = caller(
        gw,
        bedrock_simulator,
        team_id=team_id,
        aliases={"shared": "sonnet", "team-x": "sonnet", "mine": "sonnet"},
    )
    assert member.every_surface("shared") == {OPUS}  # the team's alias wins
    assert member.every_surface("fast") == {SONNET}  # team -> team-x, then key -> sonnet
    assert member.every_surface("mine") == {SONNET}
    plain = caller(gw, bedrock_simulator, team_id=team_id)
    assert plain.every_surface("shared") == {OPUS}

    # a team change reaches its existing keys
    admin.post("/team/update", {"team_id": team_id, "model_aliases": {"shared": "sonnet"}})
    assert wait_for(lambda: plain.chat("shared") == SONNET)
    assert plain.every_surface("shared") == {SONNET}


def test_an_unimplemented_field_that_would_limit_is_refused(gw: Any) -> None:
    admin = Admin(gw.url)
    for path, body in [
        ("/key/generate", {"model_max_budget": {"opus": 10}}),
        ("/key/generate", {"enforced_params": ["user"]}),
        ("/key/generate", {"guardrails": ["pii"]}),
        ("/key/generate", {"object_permission": {"mcp_servers": ["a"]}}),
        ("/key/generate", {"allowed_cache_controls": ["no-cache"]}),
        ("/key/generate", {"key_type": "read_only"}),
        ("/team/new", {"team_member_budget": 5}),
        ("/team/new", {"model_rpm_limit": {"opus": 5}}),
    ]:
        name = next(iter(body))
        r = httpx.post(gw.url + path, json=body, headers=admin.headers)
        assert r.status_code == 400, (body, r.text)
        error = r.json()["error"]
        assert error["message"].startswith(f"{name}: not implemented by Outcrop"), error
        assert error["type"] == "invalid_request_error", error
    # nothing was created
    assert admin.get("/key/list")["total_count"] == 0
    assert admin.get("/team/list") == []

    created = admin.generate(models=["opus"])
    r = httpx.post(
        gw.url + "/key/update",
        json={"key": created["key"], "budget_limits": [{"budget_duration": "1d"}]},
        headers=admin.headers,
    )
    assert r.status_code == 400 and "budget_limits" in r.json()["error"]["message"]


def test_a_harmless_unimplemented_field_is_accepted_and_named(
    gw: Any, bedrock_simulator: Any
) -> None:
    admin = Admin(gw.url)
    created = admin.generate(
        aws_sigv4=True,
        soft_budget=5.0,
        send_invite_email=True,
        config={},
        user_id="someone",
        model_max_budget={},  # empty: limits nothing
        key_type="default",
        aliases={"my-gpt": "sonnet"},
    )
    assert created["outcrop_ignored_fields"] == sorted(
        ["soft_budget", "send_invite_email", "config", "user_id", "model_max_budget", "key_type"]
    )
    assert Caller(gw, bedrock_simulator, created).chat("my-gpt") == SONNET
    team = admin.post("/team/new", {"members_with_roles": [], "soft_budget": 1})
    assert team["outcrop_ignored_fields"] == ["members_with_roles", "soft_budget"]
    assert "outcrop_ignored_fields" not in admin.generate(models=["opus"])


@pytest.mark.parametrize(
    "aliases", [{"": "opus"}, {"x": ""}, {"x": 1}, ["x"]], ids=["name", "target", "int", "list"]
)
def test_a_bad_alias_map_is_refused(gw: Any, aliases: Any) -> None:
    r = httpx.post(
        gw.url + "/key/generate", json={"aliases": aliases}, headers=Admin(gw.url).headers
    )
    assert r.status_code == 400, r.text
    assert "aliases" in r.json()["error"]["message"]
