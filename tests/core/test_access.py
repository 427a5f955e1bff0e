"""``outcrop.model_allowed`` and ``access_names``: the key model rule (docs/keys.md) as LiteLLM
matches a ``models`` list: exact names, ``*`` the only wildcard, the special entries."""

from __future__ import annotations

import pytest

from outcrop import model_allowed
from outcrop.access import access_names


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
