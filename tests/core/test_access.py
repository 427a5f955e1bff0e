"""``outcrop.model_allowed`` and ``access_names``: the key model rule (docs/keys.md) as LiteLLM
matches a ``models`` list: exact names, ``*`` the only wildcard, the special entries."""

from __future__ import annotations

import pytest

from outcrop import ConfigError, model_allowed, parse_config
from outcrop.access import access_groups, access_names


@pytest.mark.parametrize(
    ("patterns", "names", "allowed"),
    [
        ((), ("anything",), True),
        (("*",), ("anything",), True),
        (("all-proxy-models",), ("anything",), True),
        (("nova",), ("nova",), True),
        (("nova",), ("nova-pro",), False),
        (("bedrock/*",), ("bedrock/us.amazon.nova-micro-v1:0",), True),
        (("bedrock/us.*",), ("bedrock/us.amazon.nova-micro-v1:0",), True),
        (("bedrock/*",), ("bedrockzzzz/us.amazon.nova-micro-v1:0",), False),
        (("bedrock/us.*",), ("bedrock/usXamazon",), False),  # '.' is literal
        (("claude-?",), ("claude-a",), False),  # so is '?'
        (("claude-[ab]",), ("claude-a",), False),  # and '['
        (("claude-[ab]",), ("claude-[ab]",), True),
        (("*-a",), ("sonnet", "claude-a"), True),  # any of the names
        (("a", "b"), (), False),
    ],
)
def test_model_allowed(patterns, names, allowed):
    assert model_allowed(patterns, names) is allowed


def test_access_names():
    configured = frozenset({"claude-a", "sonnet"})
    assert access_names("sonnet", ("claude-a",), configured) == ("sonnet", "claude-a")
    assert access_names("claude-a", ("claude-a", None), configured) == ("claude-a",)
    raw = "us.anthropic.claude-opus-4-5-20251101-v1:0"
    assert access_names(raw, ("claude-a",), configured) == (raw, "claude-a", f"bedrock/{raw}")
    assert access_names("bedrock/x.y", (), configured) == ("bedrock/x.y",)


def test_access_names_with_model_access_groups():
    """LiteLLM's ``model_info.access_groups``: each resolved name's groups are names too, read
    from the deployments (a model_name is in a group when any of its deployments is)."""
    config = parse_config(
        {
            "model_list": [
                {"model_name": "claude-a", "litellm_params": {"model": "bedrock/a"}},
                {
                    "model_name": "claude-a",
                    "litellm_params": {"model": "bedrock/b"},
                    "model_info": {"access_groups": ["claudes", "beta"]},
                },
                {
                    "model_name": "nova",
                    "litellm_params": {"model": "bedrock/n"},
                    "model_info": {"access_groups": ["beta"]},
                },
            ]
        }
    )
    groups = access_groups(config.model_list)
    assert groups == {"claude-a": ("claudes", "beta"), "nova": ("beta",)}
    configured = frozenset({"claude-a", "nova", "sonnet"})
    names = access_names("sonnet", ("claude-a",), configured, groups)
    assert names == ("sonnet", "claude-a", "claudes", "beta")
    assert model_allowed(["claudes"], names) and not model_allowed(["other"], names)
    assert not model_allowed(["claudes"], access_names("nova", ("nova",), configured, groups))


@pytest.mark.parametrize("value", ["beta", [""], [1], {"a": 1}])
def test_access_groups_must_be_a_list_of_names(value):
    entry = {"model_name": "m", "litellm_params": {"model": "bedrock/a"}}
    with pytest.raises(ConfigError) as caught:
        parse_config({"model_list": [{**entry, "model_info": {"access_groups": value}}]})
    assert caught.value.errors == [
        "model_list[0].model_info.access_groups: expected a list of group names"
    ]
