"""The in-process copy of keys and teams the request path reads (never the database)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
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

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> KeyState:
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
        )


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
        for row in changes.keys:
            key = KeyState.from_row(row)
            old = self.keys.get(key.token)
            if old and old.aws_access_key_id and old.aws_access_key_id != key.aws_access_key_id:
                self.by_access_key.pop(old.aws_access_key_id, None)
            self.keys[key.token] = key
            if key.aws_access_key_id:
                self.by_access_key[key.aws_access_key_id] = key
        for row in changes.teams:
            team = TeamState.from_row(row)
            self.teams[team.team_id] = team
        if changes.keys or changes.teams or changes.deleted_keys:
            resets = [k.budget_reset_at for k in self.keys.values() if k.budget_reset_at]
            resets += [t.budget_reset_at for t in self.teams.values() if t.budget_reset_at]
            self.next_reset = min(resets) if resets else None
        self.seq = max(self.seq, changes.seq)
