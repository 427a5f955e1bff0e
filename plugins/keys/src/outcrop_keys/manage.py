"""The key and team operations behind the management API and the CLI (LiteLLM-shaped bodies).

Synchronous: the API runs them in a worker thread, the CLI directly against the database.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Engine

from . import store, tokens
from .durations import aware, next_reset, now, parse_duration
from .unimplemented import KEY_REFUSED, TEAM_REFUSED, ignored_fields

log = structlog.get_logger("outcrop.keys")


class ManageError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class KeyFields(msgspec.Struct, kw_only=True):
    """The key fields ``/key/generate`` and ``/key/update`` take. Other LiteLLM fields are
    refused when they would limit, spend or send, else ignored and named (``unimplemented``)."""

    key_alias: str | None = None
    models: list[str] | None = None
    max_budget: float | None = None
    budget_duration: str | None = None
    duration: str | None = None
    expires: datetime | None = None
    metadata: dict[str, Any] | None = None
    team_id: str | None = None
    tags: list[str] | None = None
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_parallel_requests: int | None = None
    model_rpm_limit: dict[str, int] | None = None
    model_tpm_limit: dict[str, int] | None = None
    allowed_routes: list[str] | None = None
    aliases: dict[str, str] | None = None  # {name the key sends: name served}
    admin: bool | None = None
    blocked: bool | None = None
    aws_sigv4: bool = False
    key: str | None = None  # /key/update, /key/regenerate: which key; /key/generate: a chosen key


class TeamFields(msgspec.Struct, kw_only=True):
    team_id: str | None = None
    team_alias: str | None = None
    models: list[str] | None = None
    max_budget: float | None = None
    budget_duration: str | None = None
    metadata: dict[str, Any] | None = None
    tpm_limit: int | None = None
    rpm_limit: int | None = None
    max_parallel_requests: int | None = None
    blocked: bool | None = None
    model_aliases: dict[str, str] | None = None  # {name the team's keys send: name served}


def decode(body: bytes | dict[str, Any], kind: type[Any]) -> Any:
    try:
        if isinstance(body, dict):
            return msgspec.convert(body, kind, str_keys=True)
        return msgspec.json.decode(body or b"{}", type=kind)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ManageError(f"invalid request body: {exc}") from None


def _check_limits(fields: Any) -> None:
    for name in ("max_budget", "rpm_limit", "tpm_limit", "max_parallel_requests"):
        value = getattr(fields, name)
        if value is not None and value < 0:
            raise ManageError(f"{name}: must be >= 0, got {value}")
    for name in ("model_rpm_limit", "model_tpm_limit"):
        for model, value in (getattr(fields, name, None) or {}).items():
            if value < 0:
                raise ManageError(f"{name}.{model}: must be >= 0, got {value}")
    for name in ("budget_duration", "duration"):
        value = getattr(fields, name, None)
        if value is not None:
            try:
                parse_duration(value, name)
            except ValueError as exc:
                raise ManageError(str(exc)) from None


def _key_values(fields: KeyFields, sent: set[str]) -> dict[str, Any]:
    """The columns ``fields`` sets (only the ones the caller sent, for updates)."""
    _check_limits(fields)
    values: dict[str, Any] = {}
    plain = (
        "key_alias",
        "max_budget",
        "team_id",
        "rpm_limit",
        "tpm_limit",
        "max_parallel_requests",
        "model_rpm_limit",
        "model_tpm_limit",
        "admin",
        "blocked",
        "budget_duration",
    )
    if "aliases" in sent:
        values["aliases"] = _aliases(fields.aliases, "aliases")
    for name in plain:
        if name in sent:
            values[name] = getattr(fields, name)
    for name in ("models", "metadata", "tags", "allowed_routes"):
        if name in sent:
            value = getattr(fields, name)
            values[name] = value if value is not None else ({} if name == "metadata" else [])
    if "budget_duration" in sent:
        values["budget_reset_at"] = next_reset(fields.budget_duration)
    if "duration" in sent:
        values["expires"] = (
            now() + parse_duration(fields.duration, "duration") if fields.duration else None
        )
    elif "expires" in sent:
        values["expires"] = aware(fields.expires)
    return values


def _aliases(value: dict[str, str] | None, field: str) -> dict[str, str] | None:
    """A stored alias map: ``None`` when empty (a key without aliases costs nothing per call)."""
    for name, target in (value or {}).items():
        if not name or not target:
            raise ManageError(f"{field}: names and targets must be non-empty strings")
    return value or None


def _sent(body: bytes | dict[str, Any], refused: Mapping[str, str], known: Any) -> set[str]:
    """The fields the caller sent; refuses an unimplemented one that would limit, spend or
    send (``unimplemented``) and logs the ones it ignores."""
    raw = body if isinstance(body, dict) else json_object(body)
    try:
        ignored = ignored_fields(raw, known.__struct_fields__, refused)
    except ValueError as exc:
        raise ManageError(str(exc)) from None
    if ignored:
        log.warning("management_fields_ignored", fields=ignored)
    return set(raw)


def _with_ignored(out: dict[str, Any], sent: set[str], known: Any) -> dict[str, Any]:
    """``out`` naming the fields the request held that Outcrop ignored."""
    ignored = sorted(sent - set(known.__struct_fields__))
    if ignored:
        out["outcrop_ignored_fields"] = ignored
    return out


def _check_team(engine: Engine, team_id: str | None) -> None:
    if team_id and store.get_team(engine, team_id) is None:
        raise ManageError(f"team_id {team_id!r} does not exist: create it with /team/new", 400)


def _unique_alias(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except sa.exc.IntegrityError:
        raise ManageError("key_alias is already used by another key", 400) from None


# -- keys ----------------------------------------------------------------------------------------


def generate_key(
    engine: Engine, body: bytes | dict[str, Any], *, salt_key: str | None, created_by: str | None
) -> dict[str, Any]:
    fields = decode(body, KeyFields)
    sent = _sent(body, KEY_REFUSED, KeyFields)
    values = _key_values(fields, sent)
    _check_team(engine, fields.team_id)
    key = fields.key or tokens.new_key()
    if not key.startswith(tokens.KEY_PREFIX) or len(key) < 20:
        raise ManageError("key: a chosen key must start with sk- and be at least 20 characters")
    token = tokens.hash_key(key)
    access_key_id = secret = None
    if fields.aws_sigv4:
        if not salt_key:
            raise ManageError(
                "aws_sigv4 needs a salt key to encrypt the secret at rest: set "
                "OUTCROP_SALT_KEY (or LITELLM_SALT_KEY, general_settings.salt_key)"
            )
        access_key_id, secret = tokens.new_access_key_id(), tokens.new_secret_access_key()
        values["aws_access_key_id"] = access_key_id
        values["aws_secret_encrypted"] = tokens.SecretBox(salt_key).seal(access_key_id, secret)
    defaults = {
        "models": [],
        "metadata": {},
        "tags": [],
        "allowed_routes": [],
        "spend": 0.0,
        "admin": False,
        "blocked": False,
    }
    row = {
        **defaults,
        **values,
        "token": token,
        "key_name": tokens.key_name(key),
        "created_by": created_by,
    }
    _unique_alias(store.insert_key, engine, row)
    out = key_response(store.get_key(engine, token) or row)
    out["key"] = key
    if access_key_id:
        out["aws_access_key_id"], out["aws_secret_access_key"] = access_key_id, secret
    return _with_ignored(out, sent, KeyFields)


def update_key(engine: Engine, body: bytes | dict[str, Any]) -> dict[str, Any]:
    fields = decode(body, KeyFields)
    if not fields.key:
        raise ManageError("key: required (the key or its hash)")
    sent = _sent(body, KEY_REFUSED, KeyFields)
    values = _key_values(fields, sent - {"key", "aws_sigv4"})
    if "team_id" in values:
        _check_team(engine, values["team_id"])
    token = tokens.token_ref(fields.key)
    if not _unique_alias(store.update_key, engine, token, values):
        raise ManageError("key not found", 404)
    out = key_response(store.get_key(engine, token))  # type: ignore[arg-type]
    return _with_ignored(out, sent, KeyFields)


def set_blocked(engine: Engine, key: str | None, blocked: bool) -> dict[str, Any]:
    if not key:
        raise ManageError("key: required (the key or its hash)")
    token = tokens.token_ref(key)
    if not store.update_key(engine, token, {"blocked": blocked}):
        raise ManageError("key not found", 404)
    return key_response(store.get_key(engine, token))  # type: ignore[arg-type]


def regenerate_key(
    engine: Engine, body: bytes | dict[str, Any], *, salt_key: str | None
) -> dict[str, Any]:
    fields = decode(body, KeyFields)
    if not fields.key:
        raise ManageError("key: required (the key or its hash)")
    old = tokens.token_ref(fields.key)
    sent = _sent(body, KEY_REFUSED, KeyFields)
    values = _key_values(fields, sent - {"key", "aws_sigv4"})
    key = tokens.new_key()
    new = tokens.hash_key(key)
    values["key_name"] = tokens.key_name(key)
    if not _unique_alias(store.replace_key_token, engine, old, new, values):
        raise ManageError("key not found", 404)
    out = key_response(store.get_key(engine, new))  # type: ignore[arg-type]
    out["key"] = key
    return _with_ignored(out, sent, KeyFields)


def delete_keys(engine: Engine, body: bytes | dict[str, Any]) -> dict[str, Any]:
    raw = body if isinstance(body, dict) else json_object(body)
    refs = [tokens.token_ref(k) for k in raw.get("keys") or []]
    aliases = raw.get("key_aliases") or []
    if aliases:
        refs += store.tokens_for_aliases(engine, aliases)
    if not refs:
        raise ManageError("keys: required (a list of keys or key hashes), or key_aliases")
    deleted = store.delete_keys(engine, refs)
    if not deleted:
        raise ManageError("no such key", 404)
    return {"deleted_keys": raw.get("keys") or deleted}


def key_info(engine: Engine, key: str) -> dict[str, Any]:
    token = tokens.token_ref(key)
    row = store.get_key(engine, token)
    if row is None:
        raise ManageError("key not found", 404)
    return {"key": token, "info": key_response(row)}


def list_keys(
    engine: Engine, *, team_id: str | None, key_alias: str | None, page: int, size: int, full: bool
) -> dict[str, Any]:
    rows, total = store.list_keys(
        engine, team_id=team_id, key_alias=key_alias, page=page, size=size
    )
    return {
        "keys": [key_response(r) for r in rows] if full else [r["token"] for r in rows],
        "total_count": total,
        "current_page": page,
        "total_pages": max((total + size - 1) // size, 1),
    }


def key_response(row: dict[str, Any]) -> dict[str, Any]:
    """A key as the API shows it: never the key, never the SigV4 secret."""
    out = {k: v for k, v in row.items() if k not in ("aws_secret_encrypted", "seq")}
    for name in ("expires", "budget_reset_at", "created_at", "updated_at"):
        out[name] = aware(out.get(name))
    out["token_id"] = out["token"]
    out["user_id"] = None
    out["aliases"] = out.get("aliases") or {}
    return out


def json_object(body: bytes) -> dict[str, Any]:
    try:
        raw = msgspec.json.decode(body or b"{}")
    except msgspec.DecodeError as exc:
        raise ManageError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ManageError("request body must be a JSON object")
    return raw


# -- teams ---------------------------------------------------------------------------------------


def _team_values(fields: TeamFields, sent: set[str]) -> dict[str, Any]:
    _check_limits(fields)
    values: dict[str, Any] = {}
    for name in (
        "team_alias",
        "max_budget",
        "budget_duration",
        "tpm_limit",
        "rpm_limit",
        "max_parallel_requests",
        "blocked",
    ):
        if name in sent:
            values[name] = getattr(fields, name)
    for name in ("models", "metadata"):
        if name in sent:
            value = getattr(fields, name)
            values[name] = value if value is not None else ({} if name == "metadata" else [])
    if "model_aliases" in sent:
        values["model_aliases"] = _aliases(fields.model_aliases, "model_aliases")
    if "budget_duration" in sent:
        values["budget_reset_at"] = next_reset(fields.budget_duration)
    return values


def new_team(engine: Engine, body: bytes | dict[str, Any]) -> dict[str, Any]:
    fields = decode(body, TeamFields)
    sent = _sent(body, TEAM_REFUSED, TeamFields)
    values = _team_values(fields, sent - {"team_id"})
    team_id = fields.team_id or str(uuid.uuid4())
    if store.get_team(engine, team_id) is not None:
        raise ManageError(f"team_id {team_id!r} already exists", 400)
    row = {
        "models": [],
        "metadata": {},
        "spend": 0.0,
        "blocked": False,
        **values,
        "team_id": team_id,
    }
    store.insert_team(engine, row)
    return _with_ignored(team_response(store.get_team(engine, team_id) or row), sent, TeamFields)


def update_team(engine: Engine, body: bytes | dict[str, Any]) -> dict[str, Any]:
    fields = decode(body, TeamFields)
    if not fields.team_id:
        raise ManageError("team_id: required")
    sent = _sent(body, TEAM_REFUSED, TeamFields)
    if not store.update_team(engine, fields.team_id, _team_values(fields, sent - {"team_id"})):
        raise ManageError("team not found", 404)
    out = team_response(store.get_team(engine, fields.team_id))  # type: ignore[arg-type]
    return _with_ignored(out, sent, TeamFields)


def delete_teams(engine: Engine, body: bytes | dict[str, Any]) -> dict[str, Any]:
    raw = body if isinstance(body, dict) else json_object(body)
    ids = raw.get("team_ids") or []
    if not ids:
        raise ManageError("team_ids: required (a list of team ids)")
    deleted = store.delete_teams(engine, ids)
    if not deleted:
        raise ManageError("no such team", 404)
    return {"deleted_teams": deleted}


def team_info(engine: Engine, team_id: str) -> dict[str, Any]:
    row = store.get_team(engine, team_id)
    if row is None:
        raise ManageError("team not found", 404)
    owned, _ = store.list_keys(engine, team_id=team_id, page=1, size=10_000)
    return {
        "team_id": team_id,
        "team_info": team_response(row),
        "keys": [key_response(k) for k in owned],
    }


def list_teams(engine: Engine) -> list[dict[str, Any]]:
    return [team_response(r) for r in store.list_teams(engine)]


def team_response(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k != "seq"}
    for name in ("budget_reset_at", "created_at", "updated_at"):
        out[name] = aware(out.get(name))
    out["model_aliases"] = out.get("model_aliases") or {}
    return out
