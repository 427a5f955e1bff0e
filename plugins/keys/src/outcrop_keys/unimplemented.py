"""LiteLLM key and team fields Outcrop does not implement, and what a request holding one gets.

A field that would limit a key, change what it may spend or send data somewhere Outcrop does
not is refused (400 naming it), so an operator never believes a limit holds that does not; with
an empty value (``null``, ``0``, ``false``, ``[]``, ``{}``) it limits nothing and is accepted.
Any other field the body holds is accepted, logged and named in the answer's
``outcrop_ignored_fields``. The table is in docs/keys.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: Why each refused field is refused (``/key/generate``, ``/key/update``, ``/key/regenerate``).
KEY_REFUSED: Mapping[str, str] = {
    "model_max_budget": "per-model budgets",
    "budget_limits": "per-period budgets",
    "budget_id": "a shared budget's limits",
    "temp_budget_increase": "a temporary budget change",
    "temp_budget_expiry": "a temporary budget change",
    "spend": "a starting spend counted against max_budget",
    "enforced_params": "required request parameters",
    "guardrails": "guardrails",
    "policies": "guardrail policies",
    "prompts": "the prompts a key may use",
    "permissions": "key permissions",
    "object_permission": "MCP server, vector store and agent permissions",
    "allowed_cache_controls": "which cache controls a key may send",
    "allowed_passthrough_routes": "which pass-through routes a key may call",
    "allowed_vector_store_indexes": "which vector stores a key may use",
    "access_group_ids": "model access groups stored in the database",
    "organization_id": "organization budgets and model lists",
    "project_id": "project budgets and model lists",
    "rpm_limit_type": "how rpm_limit is enforced",
    "tpm_limit_type": "how tpm_limit is enforced",
    "router_settings": "per-key routing (fallbacks send calls to other models)",
    "auto_rotate": "automatic key rotation",
    "rotation_interval": "automatic key rotation",
    "key_type": "which routes a key may call (llm_api, management, read_only)",
}

#: Why each refused field is refused (``/team/new``, ``/team/update``).
TEAM_REFUSED: Mapping[str, str] = {
    **{
        name: KEY_REFUSED[name]
        for name in (
            "model_max_budget",
            "budget_limits",
            "budget_id",
            "guardrails",
            "policies",
            "prompts",
            "object_permission",
            "allowed_passthrough_routes",
            "allowed_vector_store_indexes",
            "access_group_ids",
            "organization_id",
            "router_settings",
            "spend",
            "rpm_limit_type",
            "tpm_limit_type",
        )
    },
    "model_rpm_limit": "per-model limits on a team",
    "model_tpm_limit": "per-model limits on a team",
    "tags": "tag routing for a team's calls",
    "allowed_routes": "which routes a team's keys may call",
    "team_member_budget": "per-member budgets",
    "team_member_budget_duration": "per-member budgets",
    "team_member_rpm_limit": "per-member limits",
    "team_member_tpm_limit": "per-member limits",
    "team_member_key_duration": "an expiry for members' keys",
    "team_member_permissions": "what team members may manage",
    "secret_manager_settings": "a team's own secret manager",
}


def _empty(name: str, value: Any) -> bool:
    """Whether ``value`` sets nothing (LiteLLM's defaults: a key_type of ``default``)."""
    return value in (None, False, 0, "", [], {}) or (name == "key_type" and value == "default")


def ignored_fields(
    body: Mapping[str, Any], known: Iterable[str], refused: Mapping[str, str]
) -> list[str]:
    """The fields of ``body`` Outcrop does not implement and ignores; raises ``ValueError``
    naming the first one that would limit, spend or send (``refused``) with a value."""
    known = frozenset(known)
    ignored = []
    for name, value in body.items():
        if name in known:
            continue
        if name in refused and not _empty(name, value):
            raise ValueError(
                f"{name}: not implemented by Outcrop ({refused[name]}); the request was "
                "refused so that no limit is believed to hold that does not. Remove the field "
                "(docs/keys.md lists what Outcrop implements)"
            )
        ignored.append(name)
    return ignored
