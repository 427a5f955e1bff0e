"""LiteLLM's tag routing beyond plain tags: `!tag` excludes, `&tag` requires, a tag the
model_name knows but cannot serve is refused rather than sent to `default`, a model_name's
`model_info.enable_tag_filtering` overrides the router's, and `tag_regex` matches the caller's
`User-Agent: ...` line (Claude Code's `claude-code/x.y.z`)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from outcrop import ConfigError
from outcrop.config import Deployment, RouterSettings, parse_config
from outcrop.lifecycle import current_call
from outcrop.params import parse_params
from outcrop.routing import Router


def _group(*extra: dict, name: str = "m", info: dict | None = None) -> list[Deployment]:
    return [
        Deployment(
            model_name=name,
            params=parse_params({"model": "bedrock/x", "aws_region_name": "us-east-1", **kw}),
            index=i,
            model_info={"id": f"d{i}", **(info or {})},
        )
        for i, kw in enumerate(extra)
    ]


def _ids(router: Router, tags: list[str] | None, runs: int = 40) -> set[str]:
    picked = (router.pick("m", tags=tags) for _ in range(runs))
    return {d.id if d is not None else None for d in picked}


ON = RouterSettings(enable_tag_filtering=True)


def test_exclude_and_require():
    router = Router(
        _group({"tags": ["eu", "paid"]}, {"tags": ["us", "paid"]}, {"tags": ["default", "us"]}),
        ON,
    )
    assert _ids(router, ["!us"]) == {None}  # what is left of the default deployments: nothing
    assert _ids(router, ["!eu"]) == {"d2"}  # the default deployments, minus the excluded
    assert _ids(router, ["&paid"]) == {"d0", "d1"}  # only the required ones
    assert _ids(router, ["&paid", "!us"]) == {"d0"}
    assert _ids(router, ["paid", "!eu"]) == {"d1"}  # chosen among those not excluded
    assert _ids(router, ["&us", "paid"]) == {"d1"}
    assert _ids(router, ["&nobody"]) == {None}


def test_a_known_tag_that_cannot_be_served_is_refused_not_defaulted():
    router = Router(_group({"tags": ["paid"]}, {"tags": ["default"]}), ON)
    assert _ids(router, ["free"]) == {"d1"}  # unknown here: the default serves
    assert _ids(router, ["paid", "!paid"]) == {None}  # known, but excluded: refused
    strict = Router(
        _group({"tags": ["paid"]}, {"tags": ["default"]}),
        RouterSettings(enable_tag_filtering=True, tag_filtering_match_any=False),
    )
    assert _ids(strict, ["paid", "eu"]) == {None}  # paid is known: no silent default
    assert _ids(strict, ["eu"]) == {"d1"}


def test_model_info_enable_tag_filtering_overrides_the_router():
    on_here = Router(_group({"tags": ["a"]}, {"tags": ["b"]}, info={"enable_tag_filtering": True}))
    assert _ids(on_here, ["a"]) == {"d0"}
    off_here = Router(
        _group({"tags": ["a"]}, {"tags": ["b"]}, info={"enable_tag_filtering": False}), ON
    )
    assert _ids(off_here, ["a"], 60) == {"d0", "d1"}
    config = parse_config(
        {
            "model_list": [
                {
                    "model_name": "m",
                    "litellm_params": {"model": "bedrock/x", "tags": ["a"]},
                    "model_info": {"enable_tag_filtering": True},
                },
                {"model_name": "n", "litellm_params": {"model": "bedrock/x", "tags": ["a"]}},
            ]
        }
    )
    assert config.ignored == [
        "model_list[1].litellm_params.tags: tag routing is off "
        "(router_settings.enable_tag_filtering, or the model_name's "
        "model_info.enable_tag_filtering)"
    ]


@pytest.fixture
def user_agent():
    """Run the test's picks as part of an HTTP call with this User-Agent."""
    tokens = []

    def set_to(value: str | None) -> None:
        tokens.append(current_call.set(SimpleNamespace(user_agent=value)))

    yield set_to
    for token in reversed(tokens):
        current_call.reset(token)


def test_tag_regex_matches_the_user_agent(user_agent):
    router = Router(
        _group({"tag_regex": [r"^User-Agent: claude-code\/"]}, {"tags": ["default"]}), ON
    )
    user_agent("claude-code/2.0.14 (external, cli)")
    assert _ids(router, None) == {"d0"}
    user_agent("python-httpx/0.28")
    assert _ids(router, None) == {"d1"}
    user_agent(None)
    assert _ids(router, None) == {"d1"}
    user_agent("claude-code/2.0.14")
    assert _ids(router, ["&default"]) == {"d1"}  # required tags: the regex does not choose
    # with match-all, a deployment's own tags decide: its regex cannot override them
    strict = Router(
        _group({"tags": ["cc"], "tag_regex": ["claude-code"]}, {"tags": ["default"]}),
        RouterSettings(enable_tag_filtering=True, tag_filtering_match_any=False),
    )
    assert _ids(strict, None) == {"d1"}
    assert _ids(strict, ["cc"]) == {"d0"}


def test_tag_regex_is_checked_and_never_a_provider_parameter():
    params = parse_params({"model": "bedrock/x", "tag_regex": ["^User-Agent: x"]})
    assert params.tag_regex == ["^User-Agent: x"] and params.extra == {}
    with pytest.raises(ConfigError) as caught:
        parse_params({"model": "bedrock/x", "tag_regex": ["(unclosed"]}, "model_list[0]")
    assert caught.value.errors[0].startswith("model_list[0].tag_regex[0]: not a regular expression")
