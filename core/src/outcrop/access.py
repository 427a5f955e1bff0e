"""Which names a virtual key's ``models`` list is matched against, and how (docs/keys.md).

One rule for every surface (chat, embeddings, /v1/messages, the pass-through), as the LiteLLM
proxy's ``can_key_call_model``: a call is allowed when a list allows the name the caller sent
or the ``model_name`` it resolved to (a ``model_group_alias``'s target, the configured name
serving a raw Bedrock id). A list allows everything when empty or holding ``*`` or
``all-proxy-models``; otherwise an entry equals a name or is a pattern where only ``*`` is
special (any run of characters): ``bedrock/*``, ``bedrock/anthropic.*``.

LiteLLM's model access groups are names among those matched: a deployment's
``model_info.access_groups: [beta]`` makes ``beta`` one of the names of every call its
``model_name`` serves, so a list holding ``beta`` allows every model of the group.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import Deployment

#: Entries that allow every model.
ALL_MODELS = frozenset({"*", "all-proxy-models"})
#: The provider prefix a raw Bedrock id is also known by (``bedrock/anthropic.*`` allows it).
_PREFIX = "bedrock/"


def model_allowed(patterns: Sequence[str], names: Iterable[str]) -> bool:
    """Whether the ``models`` list ``patterns`` allows one of ``names`` (``access_names``)."""
    if not patterns:
        return True
    names = tuple(names)
    for pattern in patterns:
        if pattern in ALL_MODELS or pattern in names:
            return True
        if "*" in pattern:
            regex = _regex(pattern)
            if any(regex.fullmatch(n) for n in names):
                return True
    return False


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def access_names(
    requested: str,
    resolved: Iterable[str | None],
    configured: Container[str],
    groups: Mapping[str, tuple[str, ...]] | None = None,
) -> tuple[str, ...]:
    """The names a ``models`` list is matched against for a call of ``requested`` (what the
    caller sent) that resolved to ``resolved`` (the ``model_name`` serving it, ``None`` for
    none): each of them, a raw Bedrock id (not a configured name, no ``/``) also with its
    ``bedrock/`` prefix, and the access groups (``groups``: ``model_name`` -> its
    ``model_info.access_groups``) of each."""
    names = dict.fromkeys(n for n in (requested, *resolved) if n)
    for name in list(names):
        if name not in configured and "/" not in name:
            names[_PREFIX + name] = None
        if groups and name in groups:
            names.update(dict.fromkeys(groups[name]))
    return tuple(names)


def access_groups(deployments: Iterable[Deployment]) -> dict[str, tuple[str, ...]]:
    """``model_name`` -> the access groups its deployments name (``model_info.access_groups``,
    LiteLLM's): a ``model_name`` is in a group when any of its deployments is."""
    found: dict[str, dict[str, None]] = {}
    for d in deployments:
        for group in d.model_info.get("access_groups") or ():
            found.setdefault(d.model_name, {})[group] = None
    return {name: tuple(groups) for name, groups in found.items()}
