"""The in-process copy of keys and teams the request path reads (never the database)."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

from outcrop import Principal

from .durations import aware
from .store import Changes

#: ``Principal.data`` of the keys this plugin issued (other plugins may use the same kinds).
OURS = MappingProxyType({"issuer": "outcrop-keys"})


def allows(patterns: tuple[str, ...], names: tuple[str, ...]) -> bool:
    """``allowed_routes``: an empty list or ``*`` allows every route; otherwise one of
    ``names`` must match one of the ``fnmatch`` patterns. (A key's ``models`` follow
    ``outcrop.model_allowed``.)"""
    if not patterns or "*" in patterns or "all-proxy-models" in patterns:
        return True
    return any(fnmatch.fnmatchcase(n, p) for p in patterns for n in names)


@dataclass(frozen=True, slots=True)
class TeamState:
    team_id: str
    team_alias: str | None
    models: tuple[str, ...]
    max_budget: float | None
    spend: float
    budget_reset_at: datetime | None
    blocked: bool
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_parallel_requests: int | None = None
    #: Any limit or budget: admission asks the counters (else it costs nothing).
    limited: bool = False
    model_aliases: Mapping[str, str] | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> TeamState:
        limits = (row["rpm_limit"], row["tpm_limit"], row["max_parallel_requests"])
        return cls(
            row["team_id"],
            row["team_alias"],
            tuple(row["models"] or ()),
            row["max_budget"],
            float(row["spend"] or 0.0),
            aware(row["budget_reset_at"]),
            bool(row["blocked"]),
            *limits,
            limited=row["max_budget"] is not None or any(v is not None for v in limits),
            model_aliases=row.get("model_aliases") or None,
        )


@dataclass(frozen=True, slots=True)
class KeyState:
    token: str
    key_alias: str | None
    team_id: str | None
    models: tuple[str, ...]
    allowed_routes: tuple[str, ...]
    max_budget: float | None
    spend: float
    budget_reset_at: datetime | None
    expires: datetime | None
    admin: bool
    blocked: bool
    aws_access_key_id: str | None
    aws_secret_encrypted: str | None
    principal: Principal
    sigv4_principal: Principal
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_parallel_requests: int | None = None
    model_rpm_limit: dict[str, int] | None = None
    model_tpm_limit: dict[str, int] | None = None
    #: Any limit or budget: admission asks the counters (else it costs nothing).
    limited: bool = False
    #: The key's own ``aliases``; its principals carry them merged with its team's.
    aliases: Mapping[str, str] | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any], team: TeamState | None = None) -> KeyState:
        limits = (
            row["rpm_limit"],
            row["tpm_limit"],
            row["max_parallel_requests"],
            row.get("model_rpm_limit") or None,
            row.get("model_tpm_limit") or None,
        )
        common = {
            "id": row["token"],
            "alias": row["key_alias"],
            "team_id": row["team_id"],
            "admin": bool(row["admin"]),
            "data": OURS,
            "tags": tuple(row.get("tags") or ()),  # every call of the key carries them
            "model_aliases": model_aliases(row.get("aliases"), team),
        }
        return cls(
            row["token"],
            row["key_alias"],
            row["team_id"],
            tuple(row["models"] or ()),
            tuple(row["allowed_routes"] or ()),
            row["max_budget"],
            float(row["spend"] or 0.0),
            aware(row["budget_reset_at"]),
            aware(row["expires"]),
            bool(row["admin"]),
            bool(row["blocked"]),
            row["aws_access_key_id"],
            row["aws_secret_encrypted"],
            Principal("virtual_key", **common),
            Principal("sigv4_key", **common),
            *limits,
            limited=row["max_budget"] is not None or any(v is not None for v in limits),
            aliases=row.get("aliases") or None,
        )

    def with_team(self, team: TeamState | None) -> KeyState:
        """This key once its team's ``model_aliases`` changed."""
        merged = model_aliases(self.aliases, team)
        if merged == self.principal.model_aliases:
            return self
        return replace(
            self,
            principal=replace(self.principal, model_aliases=merged),
            sigv4_principal=replace(self.sigv4_principal, model_aliases=merged),
        )


def model_aliases(
    key: Mapping[str, str] | None, team: TeamState | None
) -> Mapping[str, str] | None:
    """The one map the core applies to a key's calls (``Principal.model_aliases``), as LiteLLM
    applies a team's ``model_aliases`` and then, on its result, the key's ``aliases``: a name
    both map is served as the team's target (or what the key maps that to); ``None`` for
    neither, so a key without aliases costs nothing per call."""
    team_map = team.model_aliases if team is not None else None
    if not team_map:
        return MappingProxyType(dict(key)) if key else None
    out = {name: (key or {}).get(target, target) for name, target in team_map.items()}
    for name, target in (key or {}).items():
        out.setdefault(name, target)
    return MappingProxyType(out)


class Cache:
    def __init__(self) -> None:
        self.seq = -1
        self.keys: dict[str, KeyState] = {}
        self.by_access_key: dict[str, KeyState] = {}
        self.teams: dict[str, TeamState] = {}
        self.next_reset: datetime | None = None

    def apply(self, changes: Changes) -> None:
        for token in changes.deleted_keys:
            old = self.keys.pop(token, None)
            if old and old.aws_access_key_id:
                self.by_access_key.pop(old.aws_access_key_id, None)
        for team_id in changes.deleted_teams:
            self.teams.pop(team_id, None)
        changed_teams = set(changes.deleted_teams)
        for row in changes.teams:
            team = TeamState.from_row(row)
            old_team = self.teams.get(team.team_id)
            if old_team is None or old_team.model_aliases != team.model_aliases:
                changed_teams.add(team.team_id)
            self.teams[team.team_id] = team
        if changed_teams:  # the keys of a team whose aliases changed: their merged map
            for token, key in list(self.keys.items()):
                if key.team_id in changed_teams:
                    self.keys[token] = key.with_team(self.teams.get(key.team_id))
                    if key.aws_access_key_id:
                        self.by_access_key[key.aws_access_key_id] = self.keys[token]
        for row in changes.keys:
            key = KeyState.from_row(row, self.teams.get(row["team_id"]) if row["team_id"] else None)
            old = self.keys.get(key.token)
            if old and old.aws_access_key_id and old.aws_access_key_id != key.aws_access_key_id:
                self.by_access_key.pop(old.aws_access_key_id, None)
            self.keys[key.token] = key
            if key.aws_access_key_id:
                self.by_access_key[key.aws_access_key_id] = key
        if changes.keys or changes.teams or changes.deleted_keys:
            resets = [k.budget_reset_at for k in self.keys.values() if k.budget_reset_at]
            resets += [t.budget_reset_at for t in self.teams.values() if t.budget_reset_at]
            self.next_reset = min(resets) if resets else None
        self.seq = max(self.seq, changes.seq)
