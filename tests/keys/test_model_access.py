"""A key's ``models`` follow one rule on every surface (docs/keys.md): a call is allowed when
the key's (and its team's) list allows the name the caller sent or the ``model_name`` it
resolved to, as LiteLLM's ``can_key_call_model``. Through the real clients: the OpenAI SDK on
/v1/chat/completions, the Anthropic SDK on /v1/messages, boto3 (an issued SigV4 pair) on the
pass-through, against the signature-verifying simulator, on both engines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import openai
import pytest
from botocore.exceptions import ClientError

from tests.clients import sigv4_client

from .conftest import MASTER, Admin, answer_claude_and_converse

SONNET = "us.anthropic.claude-opus-4-5-20251101-v1:0"  # what both model_names call
ANTHROPIC_ID = "claude-opus-4-5"
HI = [{"role": "user", "content": "Hi"}]
OK, REFUSED = "ok", "refused"
#: LiteLLM's model access groups: both Claude names are in ``claudes``.
CLAUDES = {"access_groups": ["claudes"]}
#: The Anthropic SDK warns on every dated Claude id it lists as retiring; the ids are the point.
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")


@pytest.fixture
def gw(
    gateway_factory: Callable[..., Any],
    simulator_params: Callable[..., dict[str, Any]],
    bedrock_simulator: Any,
    database_url: str,
) -> Any:
    answer_claude_and_converse(bedrock_simulator)
    params = simulator_params(f"bedrock/{SONNET}")
    return gateway_factory(
        {
            "model_list": [
                {"model_name": "claude-a", "litellm_params": params, "model_info": CLAUDES},
                {"model_name": "claude-b", "litellm_params": params, "model_info": CLAUDES},
                {
                    "model_name": "titan",
                    "litellm_params": simulator_params("bedrock/amazon.titan-embed-text-v2:0"),
                    "model_info": {"access_groups": ["embedders"]},
                },
            ],
            "router_settings": {"model_group_alias": {"sonnet": "claude-a", "embed": "titan"}},
            "general_settings": {
                "master_key": MASTER,
                "database_url": database_url,
                "allow_raw_models": True,
            },
            "bedrock_passthrough": {k: v for k, v in params.items() if k != "model"},
        }
    )


class Caller:
    """One key on the three surfaces, each through its own SDK."""

    def __init__(self, url: str, created: dict[str, Any]) -> None:
        self.openai = openai.OpenAI(base_url=url + "/v1", api_key=created["key"], max_retries=0)
        self.anthropic = anthropic.Anthropic(base_url=url, api_key=created["key"], max_retries=0)
        self.boto3 = sigv4_client(
            "bedrock-runtime",
            url,
            created["aws_access_key_id"],
            created["aws_secret_access_key"],
        )

    def chat(self, model: str) -> str:
        try:
            self.openai.chat.completions.create(model=model, messages=HI)  # type: ignore[arg-type]
        except openai.PermissionDeniedError as exc:
            assert exc.body["code"] == "model_not_allowed", exc.body  # type: ignore[index]
            return REFUSED
        return OK

    def embeddings(self, model: str) -> str:
        try:
            self.openai.embeddings.create(model=model, input="Hi")
        except openai.PermissionDeniedError as exc:
            assert exc.body["code"] == "model_not_allowed", exc.body  # type: ignore[index]
            return REFUSED
        return OK

    def messages(self, model: str) -> str:
        try:
            self.anthropic.messages.create(model=model, max_tokens=8, messages=HI)  # type: ignore[arg-type]
        except anthropic.PermissionDeniedError as exc:
            assert "may not use model" in str(exc.body), exc.body
            return REFUSED
        return OK

    def passthrough(self, model: str) -> str:
        try:
            self.boto3.converse(
                modelId=model, messages=[{"role": "user", "content": [{"text": "Hi"}]}]
            )
        except ClientError as exc:
            error = exc.response["Error"]
            assert error["Code"] == "AccessDeniedException", error
            assert "may not use model" in error["Message"], error
            return REFUSED
        return OK

    def every_surface(self, model: str) -> set[str]:
        return {self.chat(model), self.messages(model), self.passthrough(model)}


def caller(gw: Any, **fields: Any) -> Caller:
    return Caller(gw.url, Admin(gw.url).generate(aws_sigv4=True, **fields))


def test_the_name_sent_or_the_model_name_it_resolved_to_on_every_surface(
    gw: Any, bedrock_simulator: Any
) -> None:
    alias_only = caller(gw, models=["sonnet"])
    assert alias_only.every_surface("sonnet") == {OK}
    assert alias_only.every_surface("claude-a") == {REFUSED}  # the alias, not its target
    assert alias_only.every_surface("claude-b") == {REFUSED}

    target_only = caller(gw, models=["claude-a"])
    assert target_only.every_surface("sonnet") == {OK}  # the alias resolves to claude-a
    assert target_only.every_surface("claude-a") == {OK}
    assert target_only.every_surface("claude-b") == {REFUSED}
    assert sorted(m.id for m in target_only.openai.models.list()) == ["claude-a", "sonnet"]

    # /v1/embeddings follows the same rule
    assert caller(gw, models=["titan"]).embeddings("embed") == OK
    assert caller(gw, models=["embed"]).embeddings("embed") == OK
    assert caller(gw, models=["embed"]).embeddings("titan") == REFUSED

    # a raw Bedrock id: allowed by its id (with or without bedrock/) or by the name serving it
    by_id = caller(gw, models=[f"bedrock/{SONNET}"])
    assert {by_id.messages(SONNET), by_id.passthrough(SONNET)} == {OK}
    assert by_id.every_surface("claude-a") == {REFUSED}
    by_pattern = caller(gw, models=["bedrock/us.anthropic.*"])
    assert {by_pattern.messages(SONNET), by_pattern.passthrough(SONNET)} == {OK}

    nothing = caller(gw, models=["some-other-model"])
    for name in ("sonnet", "claude-a", "claude-b"):
        assert nothing.every_surface(name) == {REFUSED}, name
    assert {nothing.messages(SONNET), nothing.passthrough(SONNET)} == {REFUSED}
    assert nothing.messages(ANTHROPIC_ID) == REFUSED

    # '*' is the only wildcard: '?' and '.' are literal (LiteLLM's patterns, never wider)
    literal = caller(gw, models=["claude-?", "claude.a"])
    assert literal.every_surface("claude-a") == {REFUSED}


def test_a_team_and_its_key_each_allow_the_sent_or_the_resolved_name(gw: Any) -> None:
    admin = Admin(gw.url)
    team = admin.post("/team/new", {"models": ["claude-a"]})["team_id"]
    key = caller(gw, models=["sonnet"], team_id=team)
    assert key.every_surface("sonnet") == {OK}  # the key by the alias, the team by its target
    assert key.every_surface("claude-a") == {REFUSED}  # the key allows only the alias


@pytest.mark.parametrize("allowed", ["claude-a", "claude-b"])
def test_several_names_serving_one_model_go_to_one_the_key_may_call(gw: Any, allowed: str) -> None:
    """An Anthropic id or a raw Bedrock id both model_names serve: never refused part of
    the time because the other name was picked."""
    key = caller(gw, models=[allowed])
    for _ in range(8):
        assert key.messages(ANTHROPIC_ID) == OK
        assert key.messages(SONNET) == OK
        assert key.passthrough(SONNET) == OK


def test_a_model_access_group_allows_every_model_name_in_it(gw: Any) -> None:
    """LiteLLM's ``model_info.access_groups``: a key or team whose ``models`` name a group may
    call every ``model_name`` of it (an alias through its target, a raw id through the name
    serving it), and nothing else; ``GET /v1/models`` lists them."""
    group = caller(gw, models=["claudes"])
    for name in ("claude-a", "claude-b", "sonnet"):
        assert group.every_surface(name) == {OK}, name
    assert {group.messages(SONNET), group.passthrough(SONNET)} == {OK}
    assert group.embeddings("titan") == REFUSED
    assert group.embeddings("embed") == REFUSED
    assert sorted(m.id for m in group.openai.models.list()) == ["claude-a", "claude-b", "sonnet"]

    admin = Admin(gw.url)
    team = admin.post("/team/new", {"models": ["embedders"]})["team_id"]
    member = caller(gw, team_id=team)  # the key allows everything; its team, one group
    assert member.embeddings("titan") == OK
    assert member.embeddings("embed") == OK
    assert member.every_surface("claude-a") == {REFUSED}

    # a group's name is only a name: another group's does not stand for it
    assert caller(gw, models=["embedders"]).every_surface("claude-b") == {REFUSED}
